// A socket closed with 4010 (the user was erased, docs/protocol.md) is not reopened: the
// client stops with `user_erased`. jetchat's side (an erasure closes the user's sockets with
// 4010) is tested in tests/api/erase.rs; here a WebSocket server that closes every socket so
// counts how often the client comes back.

import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Client } from '../src/index.js';

it('stops reconnecting once told the user was erased', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  let sockets = 0;
  server.on('connection', (ws) => {
    sockets += 1;
    ws.close(4010, 'the user was erased; do not reconnect');
  });
  const { port } = server.address() as AddressInfo;
  const client = new Client({
    url: `http://127.0.0.1:${port}`,
    token: 'e30.eyJ1c2VyX2lkIjoxfQ.sig',
    WebSocket,
    backoff: { initialMs: 10, maxMs: 20 },
  });
  const stopped = new Promise((resolve) => client.once('stopped', ({ reason }) => resolve(reason)));
  await expect(client.connect()).rejects.toThrow(/user_erased/);
  expect(await stopped).toBe('user_erased');
  // Long past the backoff's delays: it did not come back.
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(sockets).toBe(1);
  expect(client.state).toBe('closed');
  await new Promise((resolve) => server.close(resolve));
});
