// Changes to messages in the web app, two users in browser contexts of their own: alice edits
// and deletes her message and bob sees both; bob reacts and replies and alice sees the count
// and the quote; a search finds a message and opens its chat; a chat muted shows so in the
// list. The app is the one jetchat embeds (clients/web/dist, built into the binary).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { chatEntry, mineLocator, say, signIn, startChat, theirs } from './app_page.js';

let jetchat, browser;

before(async () => {
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0' }).start();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
});

test('edit, delete, react, reply, search and mute between two users', async () => {
  const alice = await signIn(browser, jetchat.url, 1);
  const bob = await signIn(browser, jetchat.url, 2);

  await startChat(alice, '2', 'User 2');
  await say(alice, 'lunch at noon?');
  await say(alice, 'oops, wrong chat');
  await mineLocator(alice, 'oops, wrong chat').locator('.mark[data-status="delivered"]').waitFor();
  await chatEntry(bob, 'User 1').click();
  await theirs(bob, 'lunch at noon?').waitFor();

  // Alice edits her first message from the keyboard: Edit, the new text, Enter.
  await mineLocator(alice, 'lunch at noon?').getByRole('button', { name: 'Edit message' }).click();
  const editor = alice.getByRole('textbox', { name: 'Edit message text' });
  await editor.fill('lunch at one?');
  await editor.press('Enter');
  await mineLocator(alice, 'lunch at one?').locator('[data-testid="edited"]').waitFor();
  await theirs(bob, 'lunch at one?').locator('[data-testid="edited"]').waitFor();
  assert.equal(await theirs(bob, 'lunch at noon?').count(), 0);

  // ... and deletes the second: a tombstone on both sides.
  await mineLocator(alice, 'oops, wrong chat').getByRole('button', { name: 'Delete message' }).click();
  await bob.locator('#messages [data-testid="tombstone"]', { hasText: 'message deleted' }).waitFor();
  await alice.locator('#messages [data-testid="tombstone"]').waitFor();
  assert.equal(await theirs(bob, 'oops, wrong chat').count(), 0);

  // Bob reacts; alice sees the count, bob his own highlighted; again takes it back.
  const bobsView = theirs(bob, 'lunch at one?');
  await bobsView.getByRole('button', { name: 'React with 👍' }).click();
  const aliceChip = mineLocator(alice, 'lunch at one?').locator('.reaction[data-emoji="👍"]');
  await aliceChip.filter({ hasText: '👍 1' }).waitFor();
  assert.equal(await aliceChip.getAttribute('aria-pressed'), 'false');
  const bobChip = bobsView.locator('.reaction[data-emoji="👍"]');
  await bobChip.and(bob.locator('[aria-pressed="true"]')).waitFor();
  await bobsView.getByRole('button', { name: 'React with 🎉' }).click();
  await mineLocator(alice, 'lunch at one?').locator('.reaction[data-emoji="🎉"]', { hasText: '🎉 1' }).waitFor();
  await bobsView.locator('.reaction[data-emoji="🎉"]').click();
  await mineLocator(alice, 'lunch at one?').locator('.reaction[data-emoji="🎉"]').waitFor({ state: 'detached' });
  await aliceChip.filter({ hasText: '👍 1' }).waitFor();

  // Bob replies: the quote above his composer, then in the message on both sides.
  await bobsView.getByRole('button', { name: 'Reply' }).click();
  await bob.locator('#replying [data-testid="quote"]', { hasText: 'lunch at one?' }).waitFor();
  await say(bob, 'one works');
  await bob.locator('#replying').waitFor({ state: 'hidden' });
  const reply = theirs(alice, 'one works');
  await reply.locator('[data-testid="quote"]', { hasText: 'lunch at one?' }).waitFor();
  assert.match(await reply.locator('[data-testid="quote"]').textContent(), /User 1/);
  await mineLocator(bob, 'one works').locator('[data-testid="quote"]', { hasText: 'lunch at one?' }).waitFor();

  // A search from another chat finds the message, with the match marked, and opens its chat.
  await startChat(alice, '3', 'User 3');
  await alice.getByRole('searchbox', { name: 'Search messages' }).fill('works');
  await alice.getByRole('searchbox', { name: 'Search messages' }).press('Enter');
  const hit = alice.locator('#search-results button', { has: alice.locator('mark', { hasText: 'works' }) });
  await hit.waitFor();
  await hit.click();
  await alice.locator('#chat-title', { hasText: 'User 2' }).waitFor();
  await theirs(alice, 'one works').waitFor();

  // A snippet is drawn as HTML only for its <mark>: markup in a message stays text.
  await say(bob, 'bring <i>snacks</i>');
  await theirs(alice, 'bring <i>snacks</i>').waitFor();
  await alice.getByRole('searchbox', { name: 'Search messages' }).fill('snacks');
  await alice.getByRole('searchbox', { name: 'Search messages' }).press('Enter');
  const snippet = alice.locator('#search-results .snippet', { has: alice.locator('mark', { hasText: 'snacks' }) });
  await snippet.waitFor();
  assert.match(await snippet.textContent(), /<i>/);
  assert.equal(await alice.locator('#search-results i').count(), 0);

  // Alice mutes the chat: the list says so; unmuting clears it.
  await alice.getByRole('button', { name: 'Mute this chat' }).click();
  await chatEntry(alice, 'User 2').locator('[data-testid="muted"]').waitFor();
  await alice.getByRole('button', { name: 'Unmute this chat' }).click();
  await chatEntry(alice, 'User 2').locator('[data-testid="muted"]').waitFor({ state: 'detached' });

  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
