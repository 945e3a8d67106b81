// jetchat restarts in the middle of a conversation (same data directory, same port): the
// clients reconnect by themselves, the outbox resends what was not acknowledged, the reader
// resumes from its cursor, and no message is lost or doubled.

import { expect, it } from 'vitest';
import type { NewMessage } from '../src/index.js';
import { eventually, useJetchat } from './support/jetchat.js';

const { jetchat: server, client } = useJetchat();

it('keeps a conversation whole across a jetchat restart', async () => {
  const jetchat = server();
  const alice = client(1);
  const bob = client(2);
  const bobInbox: NewMessage[] = [];
  bob.on('new_message', (m) => bobInbox.push(m));
  const aliceDrops: number[] = [];
  alice.on('disconnected', ({ code }) => aliceDrops.push(code));
  await Promise.all([alice.connect(), bob.connect()]);
  const chatId = (await alice.rest.createChat({ member_ids: [2], is_group: false })).chat_id;

  const sends = [];
  for (let i = 0; i < 10; i++) sends.push(alice.send({ chat_id: chatId, content: `before ${i}` }));
  await Promise.all(sends.map((s) => s.acked));
  // Sends in flight while the server goes down, and while it is away.
  for (let i = 0; i < 5; i++) sends.push(alice.send({ chat_id: chatId, content: `during ${i}` }));
  const stopping = jetchat.stop();
  for (let i = 0; i < 5; i++) sends.push(alice.send({ chat_id: chatId, content: `down ${i}` }));
  await stopping;
  await eventually('alice noticed', () => alice.state === 'reconnecting');
  for (let i = 0; i < 5; i++) sends.push(alice.send({ chat_id: chatId, content: `away ${i}` }));
  await jetchat.startAgain();
  for (let i = 0; i < 5; i++) sends.push(alice.send({ chat_id: chatId, content: `after ${i}` }));

  const acks = await Promise.all(sends.map((s) => s.acked));
  const history = await alice.rest.messages(chatId, { limit: 100 });
  const expected = [
    ...[...Array(10).keys()].map((i) => `before ${i}`),
    ...['during', 'down', 'away', 'after'].flatMap((w) => [...Array(5).keys()].map((i) => `${w} ${i}`)),
  ];
  expect(history.map((m) => m.content).sort()).toEqual([...expected].sort());
  expect(new Set(acks.map((a) => a.message_id))).toEqual(new Set(history.map((m) => m.message_id)));
  expect(aliceDrops.length).toBeGreaterThan(0);

  // Bob got every message once: live, or in his catch-up after the restart.
  await eventually('bob has all 30', () => bobInbox.length >= expected.length);
  expect(bobInbox.map((m) => m.content).sort()).toEqual([...expected].sort());
  expect(new Set(bobInbox.map((m) => m.message_id)).size).toBe(expected.length);
});
