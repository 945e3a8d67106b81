// Pictures of the web app for docs/screenshots/ (scripts/screenshots.sh runs this): a real
// jetchat with DEV_LOGIN, two users and a group (named by Django's `upsert_user`), a few
// messages and a voice note, then the sign-in page, the chat list with a conversation, and
// both at a phone's width (375 px).

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { oggOpus } from './ogg.js';
import { say as sayIt, signIn, startChat } from './app_page.js';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');
mkdirSync(out, { recursive: true });

const jetchat = await new Jetchat().start();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking'],
});
try {
  const open = (userId, viewport = { width: 1100, height: 720 }) =>
    signIn(browser, jetchat.url, userId, {
      viewport,
      beforeSubmit: userId === 1 ? (page) => page.screenshot({ path: join(out, 'signin.png') }) : undefined,
    });
  const start = startChat;
  const say = async (page, text) => {
    await sayIt(page, text);
    await page.locator('#messages li.msg.mine .mark:not([data-status="pending"])').last().waitFor();
  };
  await jetchat.upsertUser(1, 'Ann Lee');
  await jetchat.upsertUser(2, 'Bob Ray');
  await jetchat.upsertUser(3, 'Carol Diaz');
  const alice = await open(1);
  const bob = await open(2);
  const carol = await open(3);
  await start(alice, '2, 3', 'team', 'team');
  await say(alice, 'Stand-up in 5 minutes?');
  await start(carol, '1', 'Ann Lee');
  await say(carol, 'Can you review my change today?');
  await start(alice, '2', 'Bob Ray');
  await say(alice, 'Hi Bob! Did the release go out?');
  await bob.locator('#chats button', { hasText: 'Ann Lee' }).click();
  await bob.locator('#messages li.msg:not(.mine)').first().waitFor();
  await say(bob, 'Yes, an hour ago. All green.');
  await say(bob, 'Here is the voice note from the call:');
  await bob.locator('#attach').setInputFiles({ name: 'note.ogg', mimeType: 'audio/ogg', buffer: oggOpus(3) });
  await alice.locator('#messages li.msg:not(.mine) audio').waitFor();
  await say(alice, 'Great, thanks!');
  await alice.locator('#messages li.msg.mine .mark[data-status="read"]').last().waitFor();
  await bob.getByRole('textbox', { name: 'Message' }).pressSequentially('See y');
  await alice.locator('[data-testid="typing"]', { hasText: 'typing' }).waitFor();
  await alice.screenshot({ path: join(out, 'conversation.png') });

  const phone = await open(1, { width: 375, height: 740 });
  await phone.screenshot({ path: join(out, 'phone-chat-list.png') });
  await phone.locator('#chats button', { hasText: 'Bob Ray' }).click();
  await phone.locator('#messages li.msg audio').waitFor();
  await phone.screenshot({ path: join(out, 'phone-conversation.png') });
  console.log(`screenshots written to ${out}`);
} finally {
  await browser.close();
  await jetchat.remove();
}
