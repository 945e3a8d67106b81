// What a user does in the web app, for the browser tests and the screenshots: sign in with
// the development form, start a chat, say something; and where to look for messages.

/** A user signed in through the development form (DEV_LOGIN), in a browser context of their own. */
export async function signIn(browser, url, userId, { viewport = { width: 1000, height: 700 }, beforeSubmit } = {}) {
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(error));
  await page.goto(url);
  await page.getByLabel('User id').fill(String(userId));
  await beforeSubmit?.(page);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.state[data-state="open"]').waitFor();
  return page;
}

/** Starts a chat from the form; it opens under `title`. */
export async function startChat(page, members, title, name = '') {
  await page.getByLabel('New chat with user ids').fill(members);
  await page.getByLabel('Group name').fill(name);
  await page.getByRole('button', { name: 'Start' }).click();
  await page.locator('#chat-title', { hasText: title }).waitFor();
}

export async function say(page, text) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
}

const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** My messages with exactly this text. */
export const mineLocator = (page, text) =>
  page.locator('#messages li.msg.mine', { has: page.locator('.text', { hasText: exactly(text) }) });

/** My message with this text, once its mark says `status`. */
export const mine = (page, text, status) => mineLocator(page, text).locator(`.mark[data-status="${status}"]`).waitFor();

/** Messages from someone else with exactly this text, in the open conversation. */
export const theirs = (page, text) =>
  page.locator('#messages li.msg:not(.mine)', { has: page.locator('.text', { hasText: exactly(text) }) });

/** The chat list's entry whose name is `name`. */
export const chatEntry = (page, name) => page.locator('#chats button', { has: page.locator('.name', { hasText: name }) });
