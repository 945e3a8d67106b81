// Names, initials, colours and the batched GET /users; links cut out of a message's text.

import { describe, expect, it } from 'vitest';
import type { UserProfile } from '@jetchat/client';
import { colourOf, displayName, initials, ProfileRequests, safeAvatarUrl, userFace } from '../src/model/people';
import { linkParts } from '../src/model/links';

describe('people', () => {
  it("shows the directory's name, else the server's fallback", () => {
    expect(displayName({ user_id: 2, display_name: 'Bob Ray', avatar_url: null, updated_at: null }, 2)).toBe('Bob Ray');
    expect(displayName(undefined, 7)).toBe('User 7');
  });

  it('takes initials from the first and last words, whole characters', () => {
    expect(initials('Ann Lee')).toBe('AL');
    expect(initials('ann maria de lee')).toBe('AL');
    expect(initials('Bob')).toBe('BO');
    expect(initials('  Émile   Zola ')).toBe('ÉZ');
    expect(initials('😀 Smile')).toBe('😀S');
    expect(initials('')).toBe('?');
    expect(initials('"Bo" (Smith)')).toBe('BS');
    expect(initials('<b>')).toBe('B');
  });

  it('gives each user a colour of their own, the same every time', () => {
    expect(colourOf(2)).toBe(colourOf(2));
    expect(new Set([1, 2, 3, 4, 5, 6].map(colourOf)).size).toBe(6);
    expect(colourOf(2)).toMatch(/^hsl\(\d+ 55% 38%\)$/);
    expect(colourOf(-2)).not.toBe(colourOf(2)); // a group's (negative keys) is not a user's
    expect(colourOf(-2)).toMatch(/^hsl\(\d+ 55% 38%\)$/);
  });

  it('takes only http(s) avatars', () => {
    expect(safeAvatarUrl('https://cdn.example.com/a.png')).toBe('https://cdn.example.com/a.png');
    expect(safeAvatarUrl('javascript:alert(1)')).toBeNull();
    expect(safeAvatarUrl('data:image/png;base64,AAAA')).toBeNull();
    expect(safeAvatarUrl('not a url')).toBeNull();
    expect(userFace({ user_id: 3, display_name: 'Cy', avatar_url: 'javascript:x', updated_at: null }, 3).avatarUrl).toBeNull();
  });

  it('asks GET /users once for the authors wanted while a page draws, 100 ids a request, each id once', async () => {
    const asked: number[][] = [];
    const got: UserProfile[][] = [];
    let run: (() => void) | undefined;
    const requests = new ProfileRequests(
      async (ids) => {
        asked.push(ids);
        return ids.filter((id) => id !== 4).map((id) => ({ user_id: id, display_name: `N${id}`, avatar_url: null, updated_at: null }));
      },
      (profiles) => got.push(profiles),
      (flush) => (run = flush),
    );
    for (let id = 1; id <= 150; id++) requests.want(id);
    requests.want(3);
    expect(asked).toEqual([]);
    run!();
    await Promise.resolve();
    expect(asked.map((ids) => ids.length)).toEqual([100, 50]);
    expect(got.flat().length).toBe(149);
    run = undefined;
    requests.want(4); // left out by the server: not asked again
    requests.want(2);
    expect(run).toBeUndefined();
  });

  it('asks again for ids whose request failed', async () => {
    let calls = 0;
    let run: (() => void) | undefined;
    const requests = new ProfileRequests(async () => {
      calls += 1;
      throw new Error('offline');
    }, () => {}, (flush) => (run = flush));
    requests.want(9);
    run!();
    await new Promise((ok) => setTimeout(ok, 0));
    run = undefined;
    requests.want(9);
    run!();
    expect(calls).toBe(2);
  });
});

describe('links in a message', () => {
  it('cuts out http(s) links, leaving the punctuation after them as text', () => {
    expect(linkParts('see https://example.com/a?b=1&c=2. ok')).toEqual([
      { text: 'see ' }, { text: 'https://example.com/a?b=1&c=2', href: 'https://example.com/a?b=1&c=2' }, { text: '. ok' },
    ]);
    expect(linkParts('(http://a.example/x_(y)) and HTTPS://B.example')).toEqual([
      { text: '(' }, { text: 'http://a.example/x_(y)', href: 'http://a.example/x_(y)' }, { text: ') and ' },
      { text: 'HTTPS://B.example', href: 'https://b.example/' },
    ]);
  });

  it('leaves everything else text: markup, javascript: and data: URLs, a scheme inside a word', () => {
    const hostile = '<img src=x onerror="alert(1)"> <a href="javascript:alert(2)">x</a> javascript:alert(3) data:text/html,<b>x</b> xhttps://evil.example https://';
    expect(linkParts(hostile)).toEqual([{ text: hostile }]);
    expect(linkParts('<a href="https://evil.example/">x</a>')).toEqual([
      { text: '<a href="' }, { text: 'https://evil.example/', href: 'https://evil.example/' }, { text: '">x</a>' },
    ]);
    expect(linkParts('')).toEqual([]);
  });

  it('gives back the whole text', () => {
    const text = 'a https://x.example/p?q=1#f, b http://y.example c';
    expect(linkParts(text).map((p) => p.text).join('')).toBe(text);
  });
});
