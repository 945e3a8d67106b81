/** Who people are on screen, without the DOM: a user's name and avatar from the directory
 * (docs/protocol.md, "Names and avatars"), initials and a colour of their own when there is no
 * avatar, and the batched `GET /users` for authors the chat list has no profile of. */

import type { UserProfile } from '@jetchat/client';

/** How a person (or a group) is drawn: a name, and an avatar or initials on a colour. */
export interface Face {
  name: string;
  /** An http(s) avatar, else `null` (initials). */
  avatarUrl: string | null;
  initials: string;
  /** The circle behind the initials, the same for the same key on every screen. */
  colour: string;
}

/** The most ids `GET /users` takes at once. */
export const USERS_PER_REQUEST = 100;

/** The name shown for a user: the directory's, else what the server calls an unknown user. */
export function displayName(profile: UserProfile | undefined, userId: number): string {
  return profile?.display_name || `User ${userId}`;
}

/** Letters, digits and emoji: what initials are made of (not brackets or quotes). */
const INITIAL = /[\p{L}\p{N}\p{Extended_Pictographic}]/u;

/** Up to two letters: the first of the first word and of the last ("Ann Lee" → "AL"), or the
 * first two of a single word; whole characters, so an emoji or an accented letter stays one. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/)
    .map((w) => Array.from(w).filter((c) => INITIAL.test(c)))
    .filter((w) => w.length > 0);
  if (words.length === 0) return '?';
  const first = words[0]!;
  const letters = words.length === 1 ? first.slice(0, 2) : [first[0]!, words[words.length - 1]![0]!];
  return letters.join('').toLocaleUpperCase();
}

/** A colour of the key's own (a user id, or a chat's for a group): hues spread by the golden
 * angle, dark enough for white initials. */
export function colourOf(key: number): string {
  const hue = Math.round((((key * 137.508) % 360) + 360) % 360) % 360;
  return `hsl(${hue} 55% 38%)`;
}

/** An avatar URL fit for an `<img>`: only http(s) links (the server checks them too). */
export function safeAvatarUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A user's face from their profile (or their id alone). */
export function userFace(profile: UserProfile | undefined, userId: number): Face {
  const name = displayName(profile, userId);
  return { name, avatarUrl: safeAvatarUrl(profile?.avatar_url), initials: initials(name), colour: colourOf(userId) };
}

/** A group's face: its name's initials on a colour of the chat's own. */
export function groupFace(name: string, chatId: number): Face {
  return { name, avatarUrl: null, initials: initials(name), colour: colourOf(-chatId - 1) };
}

/**
 * The profiles of users the app has none of (the authors of a big group's messages), asked
 * for in batches: every id wanted while a page draws goes in one `GET /users` (100 ids at
 * most each), each id once. An id the server leaves out (no chat shared any more) is not
 * asked again; one whose request failed is asked again the next time it is wanted.
 */
export class ProfileRequests {
  private readonly asked = new Set<number>();
  private waiting = new Set<number>();
  private scheduled = false;

  constructor(
    private readonly fetchUsers: (ids: number[]) => Promise<UserProfile[]>,
    private readonly got: (profiles: UserProfile[]) => void,
    private readonly schedule: (run: () => void) => void = (run) => setTimeout(run, 0),
  ) {}

  /** The user's profile is wanted: asked for with the others wanted meanwhile. */
  want(userId: number): void {
    if (this.asked.has(userId) || !Number.isSafeInteger(userId) || userId < 1) return;
    this.asked.add(userId);
    this.waiting.add(userId);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const ids = [...this.waiting];
    this.waiting = new Set();
    for (let i = 0; i < ids.length; i += USERS_PER_REQUEST) {
      const batch = ids.slice(i, i + USERS_PER_REQUEST);
      this.fetchUsers(batch).then(
        (profiles) => this.got(profiles),
        () => {
          for (const id of batch) this.asked.delete(id);
        },
      );
    }
  }
}
