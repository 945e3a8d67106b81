// The web app jetchat serves at `/`, as people use it: two users (and a third for the group)
// in browser contexts of their own sign in with DEV_LOGIN, chat privately and in a group, see
// their messages' marks go from sent to delivered to read, see each other typing and online,
// send and play a voice note, and keep chatting across a jetchat restart. Every wait is on
// what the page shows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { oggOpus } from './ogg.js';
import { chatEntry, mine, mineLocator, say, signIn as signInAs, startChat, theirs } from './app_page.js';

let jetchat, browser;
const pages = [];

before(async () => {
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0' }).start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required',
      // A fake microphone (a beep) that needs no permission prompt, for MediaRecorder.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
});

/** A user signed in, kept in `pages` for the tests that follow. */
async function signIn(userId) {
  const page = await signInAs(browser, jetchat.url, userId);
  pages.push(page);
  return page;
}

test('two users chat privately: unread count, receipts, typing, presence', async () => {
  const alice = await signIn(1);
  const bob = await signIn(2);

  await startChat(alice, '2', 'User 2');
  await say(alice, 'hello bob');
  // Bob is online: the server marks it delivered as it reaches his socket.
  await mine(alice, 'hello bob', 'delivered');

  // Bob's list shows the chat with its unread count and last message.
  const entry = chatEntry(bob, 'User 1');
  await entry.locator('[data-testid="unread"]', { hasText: '1' }).waitFor();
  assert.match(await entry.locator('.last').textContent(), /hello bob/);
  await entry.click();
  await theirs(bob, 'hello bob').waitFor();
  await mine(alice, 'hello bob', 'read');
  await entry.locator('[data-testid="unread"]').waitFor({ state: 'detached' });

  // Presence and typing.
  await alice.locator('[data-testid="presence"]', { hasText: 'online' }).waitFor();
  await bob.getByRole('textbox', { name: 'Message' }).pressSequentially('hi al');
  await alice.locator('[data-testid="typing"]', { hasText: 'User 2 is typing' }).waitFor();
  await bob.getByRole('textbox', { name: 'Message' }).press('Enter');
  await theirs(alice, 'hi al').waitFor();
  await alice.locator('[data-testid="typing"]:empty').waitFor();
  await mine(bob, 'hi al', 'read');

  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test('a group of three: everyone sees every message once', async () => {
  const [alice, bob] = pages;
  const carol = await signIn(3);
  await startChat(alice, '2, 3', 'team', 'team');
  await say(alice, 'welcome, team');
  await mine(alice, 'welcome, team', 'delivered');
  for (const page of [bob, carol]) {
    await chatEntry(page, 'team').click();
    await theirs(page, 'welcome, team').waitFor();
  }
  await mine(alice, 'welcome, team', 'read');
  await say(carol, 'thanks!');
  await theirs(alice, 'thanks!').waitFor();
  await theirs(bob, 'thanks!').waitFor();
  assert.equal(await theirs(bob, 'welcome, team').count(), 1);
  assert.equal(await alice.locator('#chat-presence').textContent(), '3 members, 3 online');
});

test('history loads as you scroll up', async () => {
  const [alice, bob] = pages;
  // 70 messages from a socket of Alice's own (faster than typing them), then Bob opens the group.
  await alice.evaluate(async () => {
    const { token } = await (await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user_id":1}' })).json();
    const chats = await (await fetch('/chats/', { headers: { authorization: `Bearer ${token}` } })).json();
    const team = chats.find((c) => c.name === 'team');
    const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/ws/chat?token=${token}`);
    let acked = 0;
    await new Promise((done) => {
      ws.onmessage = (e) => {
        const frame = JSON.parse(e.data);
        if (frame.action === 'unread') {
          for (let i = 1; i <= 70; i++) ws.send(JSON.stringify({ action: 'send_message', chat_id: team.chat_id, content: `old ${i}`, client_msg_id: `old-${i}` }));
        } else if (frame.action === 'message_ack' && ++acked === 70) done();
      };
    });
    ws.close();
  });
  await bob.reload();
  await chatEntry(bob, 'team').click();
  await theirs(bob, 'old 70').waitFor();
  assert.equal(await theirs(bob, 'old 1').count(), 0, 'the first page is the newest messages only');
  const list = bob.locator('#messages');
  while ((await theirs(bob, 'old 1').count()) === 0) {
    // Scrolled to the top, the page before is fetched and put above (the view stays put).
    const shown = await bob.locator('#messages li.msg').count();
    await list.evaluate((el) => el.scrollTo(0, 0));
    await bob.waitForFunction((n) => document.querySelectorAll('#messages li.msg').length > n, shown);
  }
  const texts = await bob.locator('#messages li.msg .text').allTextContents();
  const old = texts.filter((t) => t.startsWith('old '));
  assert.deepEqual(old, Array.from({ length: 70 }, (_, i) => `old ${i + 1}`));
});

test('a voice note: picked, uploaded, played from a Range request', async () => {
  const [alice, bob] = pages;
  await chatEntry(alice, 'User 2').click();
  await chatEntry(bob, 'User 1').click();
  const ranged = bob.waitForResponse((r) => r.url().includes('/media/') && r.status() === 206);
  await alice.locator('#attach').setInputFiles({ name: 'note.ogg', mimeType: 'audio/ogg', buffer: oggOpus(1) });
  await alice.locator('#messages li.msg.mine audio').waitFor();
  const audio = bob.locator('#messages li.msg:not(.mine) audio[aria-label="Voice note"]');
  await audio.waitFor();
  const response = await ranged;
  assert.match(response.request().headers().range ?? '', /^bytes=/);
  const played = await audio.evaluate(async (el) => {
    await el.play();
    await new Promise((ok, fail) => {
      el.addEventListener('ended', ok, { once: true });
      el.addEventListener('error', () => fail(new Error(`media error ${el.error?.code}`)), { once: true });
    });
    return el.duration;
  });
  assert.ok(played > 0.9 && played < 1.1, `duration ${played}`);
});

test('a voice note recorded in the browser (MediaRecorder) reaches the other user', async () => {
  const [alice, bob] = pages;
  const notes = () => bob.locator('#messages li.msg:not(.mine) audio').count();
  const before = await notes();
  const record = alice.getByRole('button', { name: 'Record a voice note' });
  await record.click();
  await alice.locator('button[aria-pressed="true"]', { hasText: 'Stop' }).waitFor();
  await alice.locator('[data-testid="recording"]', { hasText: '0:01' }).waitFor();
  await alice.getByRole('button', { name: 'Stop recording and send' }).click();
  await bob.waitForFunction((n) => document.querySelectorAll('#messages li.msg:not(.mine) audio').length > n, before);
  const src = await bob.locator('#messages li.msg:not(.mine) audio').last().getAttribute('src');
  assert.match(src, /\/media\//);
  const upload = await (await fetch(new URL(src, jetchat.url), { headers: { range: 'bytes=0-3' } }));
  assert.equal(upload.status, 206);
  assert.match(upload.headers.get('content-type'), /^audio\/(webm|ogg)/);
});

test('production sign-in: a token in the URL fragment, then removed from the address bar', async () => {
  const { token } = await (await fetch(`${jetchat.url}/dev/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user_id":4}',
  })).json();
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${jetchat.url}/#token=${token}`);
  await page.locator('.state[data-state="open"]').waitFor();
  assert.equal(await page.locator('[data-testid="me"]').textContent(), 'User 4');
  assert.ok(!page.url().includes(token), page.url());
  // A token that is no JWT of a user signs in nobody: the page waits for its opener.
  const other = await (await browser.newContext()).newPage();
  await other.goto(`${jetchat.url}/#token=garbage%00${'x'.repeat(5000)}`);
  await other.getByRole('heading', { name: 'Sign in as user N' }).waitFor();
  assert.ok(!other.url().includes('garbage'));
});

test('chatting goes on across a jetchat restart: nothing lost or doubled', async () => {
  const [alice, bob] = pages;
  await jetchat.stop();
  await alice.locator('.state[data-state="reconnecting"]').waitFor();
  await say(alice, 'sent while the server was down');
  await mine(alice, 'sent while the server was down', 'pending');

  await jetchat.start(); // the same port and data directory
  await alice.locator('.state[data-state="open"]').waitFor();
  await bob.locator('.state[data-state="open"]').waitFor();
  await mine(alice, 'sent while the server was down', 'read');
  await theirs(bob, 'sent while the server was down').waitFor();
  await say(bob, 'back again');
  await theirs(alice, 'back again').waitFor();

  for (const [page, text] of [[bob, 'sent while the server was down'], [alice, 'back again']]) {
    assert.equal(await theirs(page, text).count(), 1, text);
  }
  // Reloading shows the same history, each message once.
  await bob.reload();
  await bob.locator('.state[data-state="open"]').waitFor();
  await chatEntry(bob, 'User 1').click();
  await theirs(bob, 'sent while the server was down').waitFor();
  assert.equal(await theirs(bob, 'sent while the server was down').count(), 1);
  assert.equal(await mineLocator(bob, 'back again').count(), 1);
});
