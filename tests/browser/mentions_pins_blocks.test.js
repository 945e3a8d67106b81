// Three users in browser contexts of their own run a group and call each other by name
// (docs/protocol.md, "Groups their members run", "Mentions", "Pins", "Blocks"): the owner
// makes a member an admin, the admin adds two and removes one; a member who muted the group is
// mentioned through the composer's `@` suggestions: her list shows the `@` badge, and while
// she is away Django hears a `push_needed` flagged `mentioned` for her (a core-NATS
// subscription, as Django's) and the badge is there when she comes back; her name is
// highlighted in the message, more than others'. The owner pins a message: it shows at the top
// for everyone, with "Unpin" only for those allowed. The owner hands over, the member leaves.
// Then a block from a private chat's header: the blocker's composer says so, the blocked
// user's message is refused and her composer says why, and once lifted she writes again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { chatEntry, mine, mineLocator, say, signIn, startChat, theirs } from './app_page.js';

let jetchat, browser;

before(async () => {
  // Pushes a second after a message reached none of a member's sockets.
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0', PUSH_AFTER: '1s' }).start();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
});

/** The group panel's line for a member. */
const member = (page, userId) => page.locator(`#group-members li[data-user-id="${userId}"]`);
const hasRole = (page, userId, role) => member(page, userId).locator('[data-testid="role"]', { hasText: new RegExp(`^${role}$`) }).waitFor();
const composer = (page) => page.getByRole('textbox', { name: 'Message' });
/** My message with this text, once stored (its mark past "sending": sent, or further already). */
const stored = (page, text) => mineLocator(page, text).locator('.mark:not([data-status="pending"]):not([data-status="failed"])').waitFor();
/** A message (anyone's) of the open conversation whose text contains `text`. */
const message = (page, text) => page.locator('#messages li.msg', { has: page.locator('.text', { hasText: text }) });

async function openPanel(page) {
  await page.locator('#group-button').click();
  await page.locator('#group-panel').waitFor();
}

async function closePanel(page) {
  await page.locator('#group-button').click();
  await page.locator('#group-panel').waitFor({ state: 'hidden' });
}

test('a group run by three: add, remove, a mention through a mute, a pin for all, a handover, a leave', async () => {
  for (const [id, name] of [[51, 'Ann'], [52, 'Ben'], [53, 'Cat'], [54, 'Dan']]) await jetchat.upsertUser(id, name);
  const pushes = await jetchat.subscribe('chat.events.*.push_needed');
  const ann = await signIn(browser, jetchat.url, 51);
  const ben = await signIn(browser, jetchat.url, 52);
  let cat = await signIn(browser, jetchat.url, 53);

  // Ann makes the group with Ben, and Ben an admin.
  await startChat(ann, '52', 'Club', 'Club');
  await openPanel(ann);
  await ann.getByRole('button', { name: 'Make Ben an admin' }).click();
  await hasRole(ann, 52, 'admin');

  // Ben, an admin, adds Cat and Dan, then removes Dan.
  await chatEntry(ben, 'Club').click();
  await openPanel(ben);
  await ben.getByLabel('Add members by user id').fill('53, 54');
  await ben.getByRole('button', { name: 'Add', exact: true }).click();
  await hasRole(ann, 54, 'member');
  await chatEntry(cat, 'Club').waitFor();
  await ben.getByRole('button', { name: 'Remove Dan from the group' }).click();
  await member(ann, 54).waitFor({ state: 'detached' });
  await ann.locator('#group-members-heading', { hasText: 'Members (3)' }).waitFor();
  await closePanel(ann);

  // Cat mutes the group and turns to a private chat with Ann.
  await chatEntry(cat, 'Club').click();
  await cat.getByRole('button', { name: 'Mute this chat' }).click();
  await chatEntry(cat, 'Club').locator('[data-testid="muted"]').waitFor();
  await startChat(cat, '51', 'Ann');

  // Ann calls Cat by name: `@Ca` suggests her, Enter takes the suggestion.
  await composer(ann).fill('@Ca');
  const suggestion = ann.getByRole('option', { name: '@Cat' });
  await suggestion.waitFor();
  assert.equal(await ann.getByRole('listbox', { name: 'Members to mention' }).getByRole('option').count(), 1);
  await composer(ann).press('Enter');
  assert.equal(await composer(ann).inputValue(), '@Cat ');
  await composer(ann).pressSequentially('the rules: be kind');
  await composer(ann).press('Enter');
  await stored(ann, '@Cat the rules: be kind');
  await message(ann, 'the rules').locator('.mention[data-user-id="53"]', { hasText: '@Cat' }).waitFor();

  // Cat's list: the muted group shows the mention badge.
  await chatEntry(cat, 'Club').locator('[data-testid="mentions"]').waitFor();
  assert.match(await chatEntry(cat, 'Club').getAttribute('aria-label'), /1 mention of you/);

  // Away, Cat is pushed for the next mention even though she muted the group.
  await cat.context().close();
  await say(ann, '@Cat are you there?');
  // The text was typed, not picked: the name still makes it a mention.
  await message(ann, 'are you there?').locator('.mention[data-user-id="53"]').waitFor();
  const push = await pushes.next((p) => p.user_id === 53);
  assert.equal(push.mentioned, true);
  assert.equal(push.count, 1, 'muted: only the message that mentions her');
  pushes.close();

  // Back, the badge is there; the group opened, both mentions of her are highlighted as hers.
  cat = await signIn(browser, jetchat.url, 53);
  await chatEntry(cat, 'Club').locator('[data-testid="mentions"]').waitFor();
  await chatEntry(cat, 'Club').click();
  await cat.locator('#messages .mention.me').nth(1).waitFor();
  assert.equal(await cat.locator('#messages li.msg.mentions-me').count(), 2);
  await chatEntry(cat, 'Club').locator('[data-testid="mentions"]').waitFor({ state: 'detached' });

  // Ann pins her first message: at the top for everyone; Unpin for Ann and Ben (admin), not Cat.
  await message(ann, 'the rules').getByRole('button', { name: 'Pin message' }).click();
  for (const page of [ann, ben, cat]) {
    await page.locator('#pinned li', { hasText: 'Ann: @Cat the rules: be kind' }).waitFor();
    await message(page, 'the rules').locator('[data-testid="pinned"]').waitFor();
  }
  assert.equal(await ben.locator('#pinned').getByRole('button', { name: /^Unpin/ }).count(), 1);
  assert.equal(await cat.locator('#pinned').getByRole('button', { name: /^Unpin/ }).count(), 0);
  assert.equal(await message(cat, 'the rules').getByRole('button', { name: /pin message/i }).count(), 0);
  // A pinned line shows its message.
  await cat.locator('#pinned .pin-line').click();
  await message(cat, 'the rules').and(cat.locator('.revealed')).waitFor();

  // Ann hands the group over to Ben, and stays an admin.
  await openPanel(ann);
  await ann.getByRole('button', { name: 'Hand the group over to Ben' }).click();
  await ann.getByRole('button', { name: 'Hand over to Ben' }).click();
  await hasRole(ann, 52, 'owner');
  await hasRole(ann, 51, 'admin');

  // Cat leaves: gone from her list and from the others' panels.
  await openPanel(cat);
  await cat.getByRole('button', { name: 'Leave group' }).click();
  await cat.locator('#chat-gone', { hasText: 'You left this group.' }).waitFor();
  await chatEntry(cat, 'Club').waitFor({ state: 'detached' });
  await member(ann, 53).waitFor({ state: 'detached' });

  // Ben, the owner now, unpins it: gone from the top of every page still in the group.
  await ben.locator('#pinned').getByRole('button', { name: /^Unpin/ }).click();
  for (const page of [ann, ben]) await page.locator('#pinned').waitFor({ state: 'hidden' });

  assert.deepEqual([...ann.errors, ...ben.errors, ...cat.errors], []);
});

test("a block from a private chat's header: the blocked user's message is refused, then allowed again", async () => {
  await jetchat.upsertUser(61, 'Eve');
  await jetchat.upsertUser(62, 'Fox');
  const eve = await signIn(browser, jetchat.url, 61);
  const fox = await signIn(browser, jetchat.url, 62);
  await startChat(fox, '61', 'Eve');
  await say(fox, 'hi Eve');
  await chatEntry(eve, 'Fox').click();
  await theirs(eve, 'hi Eve').waitFor();

  // Eve blocks Fox: her header and composer say so; she may still write.
  await eve.getByRole('button', { name: 'Block Fox' }).click();
  await eve.getByRole('button', { name: 'Unblock Fox' }).waitFor();
  await eve.locator('#composer-note', { hasText: 'You blocked Fox' }).waitFor();
  await say(eve, 'please stop');
  await stored(eve, 'please stop');
  await theirs(fox, 'please stop').waitFor();
  // Fox's page shows no block: he is never told.
  assert.equal(await fox.locator('#block').getAttribute('aria-pressed'), 'false');

  // Fox's message is refused: marked not sent, and his composer says why.
  await say(fox, 'why?');
  await mine(fox, 'why?', 'failed');
  await mineLocator(fox, 'why?').getByRole('alert').filter({ hasText: 'Not sent: Eve does not accept messages from you.' }).waitFor();
  await fox.locator('#composer-note', { hasText: 'Eve does not accept messages from you.' }).waitFor();
  assert.equal(await theirs(eve, 'why?').count(), 0);

  // Lifted: Fox writes again, and his composer's note goes with the message stored.
  await eve.getByRole('button', { name: 'Unblock Fox' }).click();
  await eve.getByRole('button', { name: 'Block Fox' }).waitFor();
  await eve.locator('#composer-note').waitFor({ state: 'hidden' });
  await say(fox, 'thanks');
  await theirs(eve, 'thanks').waitFor();
  await fox.locator('#composer-note').waitFor({ state: 'hidden' });

  assert.deepEqual([...eve.errors, ...fox.errors], []);
});
