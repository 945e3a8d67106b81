/** Who is signed in, and with which token.
 *
 * Production: the page that opens the app (Django's) hands over the access token it issued,
 * either in the URL fragment (`/#token=...`, removed from the address bar at once and kept in
 * this tab's sessionStorage) or by `postMessage` from the opener: the app posts
 * `{type: "jetchat:ready"}` to `window.opener` and takes `{type: "jetchat:token", token}` only
 * from that window and only from an origin in jetchat's CORS_ALLOWED_ORIGINS (told by
 * `/app-config.json`). A later message renews the token the same way.
 *
 * Development (`DEV_LOGIN=true` only): a "sign in as user N" form gets a token from
 * `POST /dev/token`. */

import type { TokenSource } from '@jetchat/client';
import { describe, h } from './dom';

export interface AppConfig {
  dev_login: boolean;
  user_id_claim: string;
  token_origins: string[];
}

export interface Session {
  userId: number;
  token: TokenSource;
  config: AppConfig;
  signOut(): void;
}

const TOKEN_KEY = 'jetchat.token';
const DEV_USER_KEY = 'jetchat.dev_user';

export async function signIn(root: HTMLElement): Promise<Session> {
  const config = await loadConfig();
  const fromFragment = takeFragmentToken();
  if (fromFragment) sessionStorage.setItem(TOKEN_KEY, fromFragment);
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(DEV_USER_KEY);
    location.reload();
  };

  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored && userOf(stored, config) !== undefined) {
    let latest = stored;
    listenForTokens(config, (token) => {
      latest = token;
      sessionStorage.setItem(TOKEN_KEY, token);
    });
    return { userId: userOf(stored, config)!, token: () => latest, config, signOut };
  }

  const devUser = Number(sessionStorage.getItem(DEV_USER_KEY));
  if (config.dev_login && Number.isSafeInteger(devUser) && devUser > 0) {
    return { userId: devUser, token: () => devToken(devUser), config, signOut };
  }

  // Nothing yet: wait for the opener's token, or (development) the form.
  return new Promise((resolve) => {
    listenForTokens(config, (token) => {
      const userId = userOf(token, config);
      if (userId === undefined) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      let latest = token;
      listenForTokens(config, (next) => (latest = next));
      resolve({ userId, token: () => latest, config, signOut });
    });
    root.replaceChildren(signInPage(config, (userId) => {
      sessionStorage.setItem(DEV_USER_KEY, String(userId));
      resolve({ userId, token: () => devToken(userId), config, signOut });
    }));
  });
}

async function loadConfig(): Promise<AppConfig> {
  const response = await fetch('/app-config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/app-config.json answered ${response.status}`);
  return response.json();
}

function takeFragmentToken(): string | undefined {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (!token) return undefined;
  history.replaceState(null, '', location.pathname + location.search);
  return token;
}

function listenForTokens(config: AppConfig, onToken: (token: string) => void): void {
  const opener = window.opener as Window | null;
  if (!opener) return;
  window.addEventListener('message', (event) => {
    if (event.source !== opener || !config.token_origins.includes(event.origin)) return;
    const data = event.data as { type?: unknown; token?: unknown } | null;
    if (data?.type === 'jetchat:token' && typeof data.token === 'string') onToken(data.token);
  });
  for (const origin of config.token_origins) opener.postMessage({ type: 'jetchat:ready' }, origin);
}

/** The user id in a token's payload (not verified here: the server does that). */
function userOf(token: string, config: AppConfig): number | undefined {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
    const id = Number(payload[config.user_id_claim]);
    return Number.isSafeInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

async function devToken(userId: number): Promise<string> {
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ?? `POST /dev/token answered ${response.status}`);
  return body.token;
}

/** Where a developer reads on: the REST docs and the socket protocol. */
function links(): HTMLElement {
  return h('p', { className: 'muted' },
    h('a', { href: '/docs' }, 'API documentation'), ' · ', h('a', { href: '/protocol' }, 'WebSocket protocol'));
}

function signInPage(config: AppConfig, done: (userId: number) => void): HTMLElement {
  if (!config.dev_login) {
    return h('section', { className: 'signin', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, 'jetchat'),
      h('p', {}, 'Open the chat from your site: it passes your sign-in to this page.'),
      links());
  }
  const error = h('p', { className: 'error', role: 'alert' });
  const input = h('input', { id: 'dev-user', type: 'number', min: 1, step: 1, required: true, value: '1', inputmode: 'numeric' });
  const form = h('form', {
    onsubmit: async (event: SubmitEvent) => {
      event.preventDefault();
      const userId = Number(input.value);
      if (!Number.isSafeInteger(userId) || userId < 1) {
        error.textContent = 'A user id is a whole number from 1.';
        return;
      }
      try {
        await devToken(userId);
        done(userId);
      } catch (e) {
        error.textContent = describe(e);
      }
    },
  },
    h('label', { for: 'dev-user' }, 'User id', input),
    h('button', { type: 'submit', className: 'primary' }, 'Sign in'));
  return h('section', { className: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in as user N'),
    h('p', { className: 'muted' }, 'Development sign-in (DEV_LOGIN=true): any user id, no password.'),
    form, error, links());
}
