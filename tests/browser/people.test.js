// The web app's chat list as the sender sees it, two users in browser contexts of their own:
// after sending several messages into a new private chat, the sender's own list shows the
// newest (it said "No messages yet": no `new_message` reaches the sending socket).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { chatEntry, mine, say, signIn, startChat } from './app_page.js';

let jetchat, browser;

before(async () => {
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0' }).start();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
});

test("the sender's chat list shows its newest message in a new private chat", async () => {
  const alice = await signIn(browser, jetchat.url, 11);
  const bob = await signIn(browser, jetchat.url, 12);
  await startChat(alice, '12', 'User 12');
  for (const text of ['first', 'second', 'third']) await say(alice, text);
  await mine(alice, 'third', 'sent');
  // The receiver's list had it all along; the sender's said "No messages yet".
  await chatEntry(bob, 'User 11').locator('.last', { hasText: 'third' }).waitFor();
  await chatEntry(alice, 'User 12').locator('.last', { hasText: 'You: third' }).waitFor({ timeout: 5_000 });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
