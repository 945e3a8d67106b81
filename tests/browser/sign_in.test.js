// Production sign-in for the web app (no DEV_LOGIN): the Django page that opens the app hands
// over its token by postMessage. Taken from an opener on an origin listed in
// CORS_ALLOWED_ORIGINS; ignored from any other; and the development form and /dev/token are
// absent.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { Jetchat, bin } from './jetchat.js';

let jetchat, browser, listed, unlisted;

/** A site on its own origin whose page opens the app and posts it `token` whenever asked (and,
 * with `eager`, every 50 ms unasked). */
async function opener() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>the Django site</title><script>
      window.openApp = (app, token, eager) => {
        const child = window.open(app);
        addEventListener('message', (e) => {
          if (e.source === child && e.data?.type === 'jetchat:ready') child.postMessage({ type: 'jetchat:token', token }, new URL(app).origin);
        });
        if (eager) setInterval(() => child.postMessage({ type: 'jetchat:token', token }, '*'), 50);
      };
    </script>`);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

before(async () => {
  listed = await opener();
  unlisted = await opener();
  jetchat = await new Jetchat({ DEV_LOGIN: 'false', CORS_ALLOWED_ORIGINS: listed.origin }).start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await jetchat?.remove();
  listed?.server.close();
  unlisted?.server.close();
});

const token = (user) => execFileSync(bin, ['token', String(user)], { env: jetchat.env }).toString().trim();

async function openFrom(site, user, eager = false) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(site.origin);
  const [app] = await Promise.all([
    context.waitForEvent('page'),
    page.evaluate(({ url, token, eager }) => window.openApp(url, token, eager), { url: `${jetchat.url}/`, token: token(user), eager }),
  ]);
  return app;
}

test('the opener on a listed origin signs the app in by postMessage', async () => {
  const app = await openFrom(listed, 5);
  await app.locator('.state[data-state="open"]').waitFor();
  assert.equal(await app.locator('[data-testid="me"]').textContent(), 'User 5');
});

test('a token posted from an origin that is not listed is ignored', async () => {
  const app = await openFrom(unlisted, 6, true);
  await app.getByText('Open the chat from your site').waitFor();
  // The app's listener came first: once this one has seen three messages, so has the app.
  await app.evaluate(() => addEventListener('message', () => (window.seen_ = (window.seen_ ?? 0) + 1)));
  await app.waitForFunction(() => window.seen_ >= 3);
  assert.equal(await app.locator('.state').count(), 0, 'not signed in');
  assert.equal(await app.getByLabel('User id').count(), 0, 'no development form without DEV_LOGIN');
  const devToken = await fetch(`${jetchat.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user_id":1}' });
  assert.equal(devToken.status, 404);
});
