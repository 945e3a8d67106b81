// A page on another origin uses jetchat from a real browser (Debian's chromium driven by
// playwright-core): listed in CORS_ALLOWED_ORIGINS it loads its chats over REST and chats over
// the WebSocket; on an origin that is not listed both are refused.
//
//   JETCHAT_BIN (default ../../target/debug/jetchat), NATS_SERVER_BIN (for the embedded mode)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.JETCHAT_BIN ?? join(root, 'target/debug/jetchat');
const env = { ...process.env, JWT_SECRET: 'browser-test-secret', RUST_LOG: 'warn' };

let jetchat, api, browser, listedSite, otherSite, dir;

/** A static site on its own port (so its own origin) serving one empty page. */
async function site() {
  const server = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>a web app elsewhere</title>');
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

const token = (user) => execFileSync(bin, ['token', String(user)], { env }).toString().trim();

before(async () => {
  listedSite = await site();
  otherSite = await site();
  dir = mkdtempSync(join(tmpdir(), 'jetchat-browser-'));
  const port = await freePort();
  api = `127.0.0.1:${port}`;
  jetchat = spawn(bin, ['serve'], {
    env: {
      ...env,
      BIND_ADDR: api,
      DATA_DIR: join(dir, 'data'),
      MEDIA_DIR: join(dir, 'media'),
      CORS_ALLOWED_ORIGINS: listedSite.origin,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://${api}/healthz`)).ok) break;
    } catch {}
    if (i > 600) throw new Error('jetchat did not become healthy');
    await new Promise((ok) => setTimeout(ok, 100));
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  jetchat?.kill('SIGTERM');
  await new Promise((ok) => (jetchat ? jetchat.on('exit', ok) : ok()));
  listedSite?.server.close();
  otherSite?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page of `origin` in a browser context of its own (one user each). */
async function pageAt(origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(origin);
  return page;
}

// What the page itself runs: REST with a bearer token (a preflighted request), then a socket.
async function createGroup({ api, token, members }) {
  const response = await fetch(`http://${api}/chats/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'browsers', is_group: true, member_ids: members }),
  });
  return { status: response.status, body: await response.json() };
}

function openSocket({ api, token }) {
  return new Promise((ok) => {
    const ws = new WebSocket(`ws://${api}/ws/chat?token=${token}`);
    window.frames_ = [];
    ws.onmessage = (e) => window.frames_.push(JSON.parse(e.data));
    ws.onopen = () => {
      window.ws_ = ws;
      ok('open');
    };
    ws.onclose = (e) => ok(`closed ${e.code}`);
  });
}

const frame = (page, action) =>
  page.waitForFunction((a) => window.frames_.find((f) => f.action === a), action, { timeout: 10_000 })
    .then((handle) => handle.jsonValue());

test('a page on a listed origin loads over REST and chats over the socket', async () => {
  const alice = await pageAt(listedSite.origin);
  const bob = await pageAt(listedSite.origin);

  const created = await alice.evaluate(createGroup, { api, token: token(1), members: [2] });
  assert.equal(created.status, 201);
  const chatId = created.body.chat_id;
  assert.ok(chatId, JSON.stringify(created.body));
  const chats = await bob.evaluate(async ({ api, token }) => {
    const response = await fetch(`http://${api}/chats/`, { headers: { authorization: `Bearer ${token}` } });
    return response.json();
  }, { api, token: token(2) });
  assert.equal(chats.length, 1);

  assert.equal(await alice.evaluate(openSocket, { api, token: token(1) }), 'open');
  assert.equal(await bob.evaluate(openSocket, { api, token: token(2) }), 'open');
  await alice.evaluate((chatId) => window.ws_.send(JSON.stringify({
    action: 'send_message', chat_id: chatId, content: 'hello from a browser', client_msg_id: 'b-1',
  })), chatId);
  const ack = await frame(alice, 'message_ack');
  assert.equal(ack.client_msg_id, 'b-1');
  const received = await frame(bob, 'new_message');
  assert.equal(received.content, 'hello from a browser');
  assert.equal(received.message_id, ack.message_id);
});

test('a page on an origin that is not listed is refused by REST and by the socket', async () => {
  const page = await pageAt(otherSite.origin);

  const fetched = await page.evaluate(async ({ api, token }) => {
    try {
      await fetch(`http://${api}/chats/`, { headers: { authorization: `Bearer ${token}` } });
      return 'read';
    } catch (error) {
      return error.name; // the browser keeps the answer from the page
    }
  }, { api, token: token(3) });
  assert.equal(fetched, 'TypeError');

  // The handshake is refused (403): the browser reports 1006 and never opens the socket.
  assert.equal(await page.evaluate(openSocket, { api, token: token(3) }), 'closed 1006');
});
