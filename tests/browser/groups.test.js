// A group its members run (docs/protocol.md, "Groups their members run"), three users in
// browser contexts of their own driving the web app's group panel: the owner makes a member an
// admin; the admin removes the third member, whose page says so and loses the chat; the owner
// leaves and the group passes to the admin, whose panel says "owner"; the new owner deletes
// the group and it is gone from every page. Then: a rename, "members can add" and a member
// adding by id, a handover by the owner (confirmed), a member leaving; and a refusal shown by
// its error code.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Jetchat } from './jetchat.js';
import { chatEntry, signIn, startChat } from './app_page.js';

let jetchat, browser;

before(async () => {
  jetchat = await new Jetchat({ RATE_MESSAGES_PER_SEC: '0' }).start();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
});

/** The group panel's line for a member. */
const member = (page, userId) => page.locator(`#group-members li[data-user-id="${userId}"]`);
/** Waits until the member's line shows `role`. */
const hasRole = (page, userId, role) => member(page, userId).locator('[data-testid="role"]', { hasText: new RegExp(`^${role}$`) }).waitFor();

async function openPanel(page) {
  const button = page.locator('#group-button');
  await button.click();
  await page.locator('#group-panel').waitFor();
  assert.equal(await button.getAttribute('aria-expanded'), 'true');
}

test('three users run a group: promote, remove, leave (the group passes on), delete', async () => {
  await jetchat.upsertUser(21, 'Ann');
  await jetchat.upsertUser(22, 'Ben');
  await jetchat.upsertUser(23, 'Cat');
  const ann = await signIn(browser, jetchat.url, 21);
  const ben = await signIn(browser, jetchat.url, 22);
  const cat = await signIn(browser, jetchat.url, 23);

  // Ann makes the group; Ben and Cat open it from their lists.
  await startChat(ann, '22, 23', 'Crew', 'Crew');
  for (const page of [ben, cat]) {
    await chatEntry(page, 'Crew').click();
    await page.locator('#chat-title', { hasText: 'Crew' }).waitFor();
  }

  // Ann's panel: she owns it; she may do everything to the others.
  await openPanel(ann);
  await ann.locator('#group-members-heading', { hasText: 'Members (3)' }).waitFor();
  await hasRole(ann, 21, 'owner');
  await hasRole(ann, 22, 'member');
  assert.equal(await member(ann, 21).locator('.name').textContent(), 'Ann (you)');
  assert.ok(await ann.getByRole('button', { name: 'Delete group' }).isVisible());

  // Cat, a plain member, sees the roles and no way to change them.
  await openPanel(cat);
  await hasRole(cat, 21, 'owner');
  assert.equal(await cat.locator('#group-members button').count(), 0);
  assert.equal(await cat.getByLabel('Add members by user id').isVisible(), false);
  assert.equal(await cat.getByRole('button', { name: 'Delete group' }).isVisible(), false);
  assert.ok(await cat.getByRole('button', { name: 'Leave group' }).isVisible());

  // Ann makes Ben an admin: every open panel follows.
  await ann.getByRole('button', { name: 'Make Ben an admin' }).click();
  await hasRole(ann, 22, 'admin');
  await hasRole(cat, 22, 'admin');
  await openPanel(ben);
  await hasRole(ben, 22, 'admin');
  assert.ok(await ben.getByLabel('Add members by user id').isVisible());
  assert.equal(await ben.getByRole('button', { name: 'Delete group' }).isVisible(), false);
  // An admin may remove members, not the owner.
  assert.equal(await member(ben, 21).locator('button').count(), 0);

  // Ben removes Cat: her page says who did and her list loses the chat.
  await ben.getByRole('button', { name: 'Remove Cat from the group' }).click();
  await cat.locator('#chat-gone', { hasText: 'Ben removed you from this group.' }).waitFor();
  await chatEntry(cat, 'Crew').waitFor({ state: 'detached' });
  await ann.locator('#group-members-heading', { hasText: 'Members (2)' }).waitFor();
  await member(ben, 23).waitFor({ state: 'detached' });

  // Ann leaves: the group passes to Ben, its longest-serving admin.
  await ann.getByRole('button', { name: 'Leave group' }).click();
  await ann.locator('#chat-gone', { hasText: 'You left this group.' }).waitFor();
  await chatEntry(ann, 'Crew').waitFor({ state: 'detached' });
  await hasRole(ben, 22, 'owner');
  await ben.locator('#group-members-heading', { hasText: 'Members (1)' }).waitFor();
  const deleteButton = ben.getByRole('button', { name: 'Delete group' });
  await deleteButton.waitFor();

  // Ben deletes it, once he confirms: gone from every page.
  await deleteButton.click();
  await ben.getByRole('alertdialog').getByText('Delete this group and its whole history for everyone?').waitFor();
  assert.ok(await chatEntry(ben, 'Crew').isVisible(), 'nothing is deleted before the confirmation');
  await ben.getByRole('button', { name: 'Delete for everyone' }).click();
  await ben.locator('#chat-gone', { hasText: 'This group was deleted.' }).waitFor();
  for (const page of [ann, ben, cat]) await chatEntry(page, 'Crew').waitFor({ state: 'detached' });

  // A page loaded afresh does not bring it back.
  await ben.reload();
  await ben.locator('.state[data-state="open"]').waitFor();
  await ben.locator('#chats li').first().waitFor();
  assert.equal(await chatEntry(ben, 'Crew').count(), 0);

  assert.deepEqual([...ann.errors, ...ben.errors, ...cat.errors], []);
});

test('rename, let members add, a member adds by id, the owner hands over, a member leaves', async () => {
  await jetchat.upsertUser(41, 'Fay');
  await jetchat.upsertUser(42, 'Gus');
  await jetchat.upsertUser(43, 'Hal');
  await jetchat.upsertUser(44, 'Ivy');
  const fay = await signIn(browser, jetchat.url, 41);
  const gus = await signIn(browser, jetchat.url, 42);
  const hal = await signIn(browser, jetchat.url, 43);
  const ivy = await signIn(browser, jetchat.url, 44);
  await startChat(fay, '42, 43', 'Band', 'Band');
  await chatEntry(gus, 'Band').click();
  await openPanel(fay);
  await openPanel(gus);
  assert.equal(await gus.getByLabel('Add members by user id').isVisible(), false);

  // Fay renames the group: Gus's header and list follow.
  await fay.getByLabel('Rename the group').fill('Big Band');
  await fay.getByRole('button', { name: 'Rename' }).click();
  await gus.locator('#chat-title', { hasText: 'Big Band' }).waitFor();
  await chatEntry(hal, 'Big Band').waitFor();

  // Fay lets members add: Gus, a member, adds Ivy by her id; her list shows the group.
  await fay.getByLabel('Members can add others').check();
  await gus.getByLabel('Add members by user id').waitFor();
  await gus.getByLabel('Add members by user id').fill('44');
  await gus.getByRole('button', { name: 'Add', exact: true }).click();
  await chatEntry(ivy, 'Big Band').waitFor();
  await hasRole(fay, 44, 'member');
  await fay.locator('#group-members-heading', { hasText: 'Members (4)' }).waitFor();
  assert.equal(await gus.getByLabel('Add members by user id').inputValue(), '');
  // Someone already in is not asked for.
  await gus.getByLabel('Add members by user id').fill('43');
  await gus.getByRole('button', { name: 'Add', exact: true }).click();
  await gus.locator('#group-error', { hasText: 'User 43 is already a member.' }).waitFor();

  // Fay hands the group over to Gus, once she confirms; she stays on as an admin.
  await fay.getByRole('button', { name: 'Hand the group over to Gus' }).click();
  await fay.getByRole('button', { name: 'Hand over to Gus' }).click();
  await hasRole(fay, 42, 'owner');
  await hasRole(fay, 41, 'admin');
  await hasRole(gus, 42, 'owner');
  await gus.getByRole('button', { name: 'Delete group' }).waitFor();
  assert.equal(await fay.getByRole('button', { name: 'Delete group' }).isVisible(), false);

  // Hal, a member, leaves: gone from his list, and from the others' panels.
  await chatEntry(hal, 'Big Band').click();
  await openPanel(hal);
  await hal.getByRole('button', { name: 'Leave group' }).click();
  await hal.locator('#chat-gone', { hasText: 'You left this group.' }).waitFor();
  await chatEntry(hal, 'Big Band').waitFor({ state: 'detached' });
  await member(gus, 43).waitFor({ state: 'detached' });
  await fay.locator('#group-members-heading', { hasText: 'Members (3)' }).waitFor();

  assert.deepEqual([...fay.errors, ...gus.errors, ...hal.errors, ...ivy.errors], []);
});

test('a refusal shows in the panel by its error code: an admin whose role was taken unseen', async () => {
  await jetchat.upsertUser(31, 'Dora');
  await jetchat.upsertUser(32, 'Eli');
  const dora = await signIn(browser, jetchat.url, 31);
  // Eli's page can be kept from hearing of role changes: its panel then offers what his role
  // no longer allows, and the server refuses it.
  let hideRoleChanges = false;
  const eli = await signIn(browser, jetchat.url, 32, {
    beforeSubmit: (page) => page.routeWebSocket(/\/ws\//, (socket) => {
      const server = socket.connectToServer();
      socket.onMessage((frame) => server.send(frame));
      server.onMessage((frame) => {
        if (hideRoleChanges && String(frame).includes('"member_role_changed"')) return;
        socket.send(frame);
      });
    }),
  });
  await startChat(dora, '32, 33', 'Stale', 'Stale');
  await openPanel(dora);
  await dora.getByRole('button', { name: 'Make Eli an admin' }).click();
  await hasRole(dora, 32, 'admin');

  await chatEntry(eli, 'Stale').click();
  await openPanel(eli);
  await hasRole(eli, 32, 'admin');
  hideRoleChanges = true;
  await dora.getByRole('button', { name: 'Dismiss Eli as admin' }).click();
  await hasRole(dora, 32, 'member');

  await eli.getByRole('button', { name: 'Remove User 33 from the group' }).click();
  await eli.locator('#group-error', { hasText: /^Your role in this group does not allow that \(.*admin.*\)$/ }).waitFor();
  await member(dora, 33).waitFor();
  assert.equal(await dora.locator('#group-members-heading').textContent(), 'Members (3)');
  assert.deepEqual([...dora.errors, ...eli.errors], []);
});
