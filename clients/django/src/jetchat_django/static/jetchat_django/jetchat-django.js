// jetchat-django's side of @jetchat/client in a Django page: the settings the page carries
// ({% jetchat_client %} writes them, with the import map that names this module and the
// client), and tokens from the package's token view for the signed-in user, asked again by
// the client before each one expires.
import { Client } from '@jetchat/client';

/** What {% jetchat_client %} put in the page: jetchat's address, the token view, the CSRF token
 * and how long before a token's expiry to renew it. */
export function readConfig(id = 'jetchat-config') {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no #${id} in the page: add {% jetchat_client %} to its <head>`);
  return JSON.parse(element.textContent);
}

/** A fresh access token for the signed-in user (the session's), from the token view. Each one
 * is announced as a `jetchat:token` event on `document` (`detail.expiresAt`, epoch seconds). */
export async function fetchToken(config = readConfig()) {
  const response = await fetch(config.tokenUrl, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRFToken': config.csrfToken },
  });
  if (!response.ok) throw new Error(`${config.tokenUrl} answered ${response.status}`);
  const { token, expires_at: expiresAt } = await response.json();
  document.dispatchEvent(new CustomEvent('jetchat:token', { detail: { expiresAt } }));
  return token;
}

/** A Client for the signed-in user, not yet connected (`await client.connect()`): its tokens
 * come from the token view, renewed `TOKEN_RENEW_BEFORE` seconds before they expire (at most
 * half a token's life). `options` go to the Client as they are (`outboxStorage`, ...). */
export function createClient(options = {}) {
  const config = readConfig();
  return new Client({
    url: config.url,
    token: () => fetchToken(config),
    renewBeforeMs: config.renewBeforeMs,
    ...options,
  });
}

export { Client };
