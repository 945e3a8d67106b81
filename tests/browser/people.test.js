// Names and avatars in the web app (docs/protocol.md, "Names and avatars"), two users (and a
// third for a group) in browser contexts of their own: the names Django gave (`upsert_user` on
// NATS) in the chat list, the conversation's header and a group's message authors; an avatar
// (from a server of its own, on another origin, asked without a Referer) or initials; a new
// name and a broken avatar told by `user_updated` while the page is open; a big group's
// authors asked for with `GET /users`, each once. Also: the sender's own list shows its newest
// message, and links in messages are links while markup stays text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { chatEntry, mineLocator, say, signIn, startChat, theirs } from './app_page.js';

/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/** My message with this text is stored (its mark is past "sending", whichever it is by now). */
const stored = (page, text) => mineLocator(page, text).locator('.mark:not([data-status="pending"]):not([data-status="failed"])').waitFor();

let jetchat, browser, avatars;
/** The avatar server's requests: path and Referer. */
const asked = [];

before(async () => {
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0' }).start();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
  // Django's avatars, on an origin of their own: /ann.png is an image, anything else a 404.
  avatars = createServer((request, response) => {
    asked.push({ path: request.url, referer: request.headers.referer });
    if (request.url === '/ann.png') response.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    else response.writeHead(404).end();
  });
  await new Promise((ok) => avatars.listen(0, '127.0.0.1', ok));
  avatars.url = `http://127.0.0.1:${avatars.address().port}`;
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
  avatars?.close();
});

test("the sender's chat list shows its newest message in a new private chat", async () => {
  const alice = await signIn(browser, jetchat.url, 11);
  const bob = await signIn(browser, jetchat.url, 12);
  await startChat(alice, '12', 'User 12');
  for (const text of ['first', 'second', 'third']) await say(alice, text);
  await stored(alice, 'third');
  // The receiver's list had it all along; the sender's said "No messages yet".
  await chatEntry(bob, 'User 11').locator('.last', { hasText: 'third' }).waitFor();
  await chatEntry(alice, 'User 12').locator('.last', { hasText: 'You: third' }).waitFor({ timeout: 5_000 });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test('names and avatars in the list, the header and a group; user_updated renames without a reload', async () => {
  await jetchat.upsertUser(1, 'Ann Lee', `${avatars.url}/ann.png`);
  await jetchat.upsertUser(2, 'Bob Ray');
  await jetchat.upsertUser(3, 'Cy <b>Twombly</b>');
  const alice = await signIn(browser, jetchat.url, 1);
  const bob = await signIn(browser, jetchat.url, 2);

  await alice.locator('[data-testid="me"]', { hasText: 'Ann Lee' }).waitFor();

  // Alice opens a private chat with Bob: his name, and his initials in a coloured circle.
  await startChat(alice, '2', 'Bob Ray');
  const bobInAlicesList = chatEntry(alice, 'Bob Ray');
  await bobInAlicesList.locator('.avatar.initials', { hasText: 'BR' }).waitFor();
  await alice.locator('#conversation header .avatar.initials', { hasText: 'BR' }).waitFor();
  const colour = await bobInAlicesList.locator('.avatar').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.notEqual(colour, 'rgba(0, 0, 0, 0)');
  await say(alice, 'hi bob');

  // Bob sees Ann's avatar, an <img> named by her, loaded from Django's server without a Referer.
  const annInBobsList = chatEntry(bob, 'Ann Lee');
  const img = annInBobsList.locator('img.avatar');
  await img.waitFor();
  assert.equal(await img.getAttribute('alt'), 'Ann Lee');
  assert.equal(await img.getAttribute('referrerpolicy'), 'no-referrer');
  await bob.waitForFunction(() => document.querySelector('#chats img.avatar')?.naturalWidth > 0);
  assert.ok(asked.some((r) => r.path === '/ann.png'));
  assert.ok(asked.every((r) => r.referer === undefined), JSON.stringify(asked));
  await annInBobsList.click();
  await bob.locator('#chat-title', { hasText: 'Ann Lee' }).waitFor();
  await theirs(bob, 'hi bob').waitFor();

  // Django renames Bob and gives him an avatar that does not load: Alice's page follows at
  // once (`user_updated`), the broken avatar falls back to initials.
  await jetchat.upsertUser(2, 'Robert Ray', `${avatars.url}/missing.png`);
  await alice.locator('#chat-title', { hasText: 'Robert Ray' }).waitFor();
  const renamed = chatEntry(alice, 'Robert Ray');
  await renamed.locator('.avatar.initials', { hasText: 'RR' }).waitFor();
  await alice.locator('#conversation header .avatar.initials', { hasText: 'RR' }).waitFor();
  assert.ok(asked.some((r) => r.path === '/missing.png'));
  assert.equal(await chatEntry(alice, 'Bob Ray').count(), 0);

  // A group: the authors of others' messages by name and initials, markup in a name is text.
  await startChat(alice, '2, 3', 'team', 'team');
  const cy = await signIn(browser, jetchat.url, 3);
  await chatEntry(cy, 'team').click();
  await say(cy, 'hello team');
  await chatEntry(bob, 'team').click();
  await say(bob, 'hi all');
  const cyInAlice = theirs(alice, 'hello team');
  await cyInAlice.locator('.who', { hasText: 'Cy <b>Twombly</b>' }).waitFor();
  assert.equal(await alice.locator('#messages b').count(), 0);
  await theirs(alice, 'hi all').locator('.who', { hasText: 'Robert Ray' }).waitFor();
  await theirs(alice, 'hi all').locator('.who .avatar.initials', { hasText: 'RR' }).waitFor();
  await chatEntry(cy, 'team').locator('.last', { hasText: 'Robert Ray: hi all' }).waitFor();
  await theirs(cy, 'hi all').locator('.who', { hasText: 'Robert Ray' }).waitFor();
  assert.deepEqual([...alice.errors, ...bob.errors, ...cy.errors], []);
});

test("a big group's authors, whose profiles no chat carries, come from GET /users, each once", async () => {
  await jetchat.upsertUser(31, 'Dee Dee');
  await jetchat.upsertUser(32, 'Eli Oak');
  const alice = await signIn(browser, jetchat.url, 30);
  // Over 100 members: GET /chats/ and chat_created list none of their profiles.
  const members = Array.from({ length: 101 }, (_, i) => 31 + i).join(', ');
  await startChat(alice, members, 'big', 'big');
  const dee = await signIn(browser, jetchat.url, 31);
  await chatEntry(dee, 'big').click();
  await say(dee, 'from dee');
  await say(dee, 'dee again');
  const eli = await signIn(browser, jetchat.url, 32);
  await chatEntry(eli, 'big').click();
  await say(eli, 'from eli');
  await stored(eli, 'from eli');

  // Alice comes back: the list's newest message and the chat's history name their authors,
  // each asked for once (Dee wrote two of the messages), not a request per message.
  const asked = [];
  alice.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/users') asked.push(url.searchParams.get('ids'));
  });
  await alice.reload();
  await alice.locator('.state[data-state="open"]').waitFor();
  await chatEntry(alice, 'big').locator('.last', { hasText: 'Eli Oak: from eli' }).waitFor();
  await chatEntry(alice, 'big').click();
  await theirs(alice, 'from dee').locator('.who', { hasText: 'Dee Dee' }).waitFor();
  await theirs(alice, 'dee again').locator('.who', { hasText: 'Dee Dee' }).waitFor();
  await theirs(alice, 'from eli').locator('.who', { hasText: 'Eli Oak' }).waitFor();
  // (My own name, for the top bar, is asked for too: I am in no small chat.)
  const authors = asked.flatMap((ids) => ids.split(',')).filter((id) => id !== '30').sort();
  assert.deepEqual(authors, ['31', '32'], JSON.stringify(asked));
  assert.deepEqual([...alice.errors, ...dee.errors, ...eli.errors], []);
});

test('links in messages open in a new tab; markup and javascript: stay text', async () => {
  const alice = await signIn(browser, jetchat.url, 21);
  const bob = await signIn(browser, jetchat.url, 22);
  await startChat(alice, '22', 'User 22');
  const hostile = 'see https://example.com/a?b=1&c=2. <img src=x onerror="window.pwned=1"> <a href="javascript:window.pwned=2">x</a> javascript:window.pwned=3';
  await say(alice, hostile);
  await chatEntry(bob, 'User 21').click();
  for (const page of [alice, bob]) {
    const message = page.locator('#messages li.msg', { has: page.locator('.text', { hasText: 'see https://example.com' }) });
    await message.waitFor();
    const links = message.locator('.text a');
    assert.equal(await links.count(), 1);
    assert.equal(await links.getAttribute('href'), 'https://example.com/a?b=1&c=2');
    assert.equal(await links.getAttribute('target'), '_blank');
    assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await message.locator('.text').textContent(), hostile);
    assert.equal(await message.locator('img').count(), 0);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
  }
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
