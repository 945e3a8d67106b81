/** `@` mentions without the DOM (docs/protocol.md, "Mentions"): the name being typed after an
 * `@` at the caret, the members it matches, the text with the chosen name put in, the members
 * a text names when it is sent, and a message's text cut into plain text, links and the
 * mentions it carries. The server never parses the text: a message's `mentions` are the ids
 * the sender's app gave, and the `@name` drawn is the directory's name for each. */

import { linkParts } from './links';

/** A member who can be mentioned, by the name the app shows. */
export interface Candidate {
  userId: number;
  name: string;
}

/** What is typed after an `@`: where the `@` is, and the text from it to the caret. */
export interface MentionQuery {
  start: number;
  query: string;
}

/** How many members the suggestions list at most. */
export const MAX_SUGGESTIONS = 8;
/** A name typed after an `@` is at most this long (names may hold spaces: "Ann Lee"). */
const MAX_QUERY = 40;

/** The `@` being typed before `caret`: one at the start or after a space, with no line break
 * and at most 40 characters between it and the caret; `undefined` when there is none. */
export function mentionQuery(text: string, caret: number): MentionQuery | undefined {
  const before = text.slice(0, caret);
  const start = before.lastIndexOf('@');
  if (start < 0 || caret - start - 1 > MAX_QUERY) return undefined;
  if (start > 0 && !/\s/.test(before[start - 1]!)) return undefined; // an address: ann@example.com
  const query = before.slice(start + 1);
  if (/[\n\r]/.test(query) || /^\s/.test(query)) return undefined;
  return { start, query };
}

/** The members whose name, or a word of it, starts with `query` (any case), those whose name
 * starts with it first, then by name; all of them for an empty query. At most 8. */
export function suggestions(query: string, members: readonly Candidate[]): Candidate[] {
  const q = query.toLocaleLowerCase();
  const ranked = members
    .map((member) => {
      const name = member.name.toLocaleLowerCase();
      const rank = name.startsWith(q) ? 0 : name.split(/\s+/).some((word) => word.startsWith(q)) ? 1 : -1;
      return { member, rank };
    })
    .filter(({ rank }) => rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.member.name.localeCompare(b.member.name) || a.member.userId - b.member.userId);
  return ranked.slice(0, MAX_SUGGESTIONS).map(({ member }) => member);
}

/** The text with the `@query` at `at` replaced by `@<name> `, and where the caret goes. */
export function applyMention(text: string, at: MentionQuery, name: string): { text: string; caret: number } {
  const inserted = `@${name} `;
  const after = text.slice(at.start + 1 + at.query.length).replace(/^ /, '');
  return { text: text.slice(0, at.start) + inserted + after, caret: at.start + inserted.length };
}

/** A name found after an `@` at `index`: the longest member name that follows it as a whole
 * (not followed by a letter or digit), so "@Ben Lee" is Ben Lee, not Ben. */
function nameAt(text: string, index: number, members: readonly Candidate[]): Candidate | undefined {
  let found: Candidate | undefined;
  for (const member of members) {
    if (!member.name || (found && found.name.length >= member.name.length)) continue;
    const end = index + 1 + member.name.length;
    if (text.slice(index + 1, end).toLocaleLowerCase() !== member.name.toLocaleLowerCase()) continue;
    if (end < text.length && /[\p{L}\p{N}_]/u.test(text[end]!)) continue;
    found = member;
  }
  return found;
}

/** Each `@` that starts a word, with the member it names. */
function named(text: string, members: readonly Candidate[]): { index: number; member: Candidate }[] {
  const found: { index: number; member: Candidate }[] = [];
  for (let index = text.indexOf('@'); index >= 0; index = text.indexOf('@', index + 1)) {
    if (index > 0 && !/\s|[([{"']/.test(text[index - 1]!)) continue;
    const member = nameAt(text, index, members);
    if (!member) continue;
    found.push({ index, member });
    index += member.name.length;
  }
  return found;
}

/** The ids of the members `text` names with `@<name>` (typed or picked), ascending, each once:
 * what a message sends as its `mentions`. */
export function mentionIds(text: string, members: readonly Candidate[]): number[] {
  return [...new Set(named(text, members).map(({ member }) => member.userId))].sort((a, b) => a - b);
}

/** A part of a message's text: plain, a link, or a mention of a member (`me`: of the reader). */
export type MessagePart =
  | { text: string }
  | { text: string; href: string }
  | { text: string; mention: number; me: boolean };

/** The message's text cut into parts, in order (their texts joined are the text again): the
 * `@<name>` of each member it mentions (`mentioned`: those of its `mentions`, by the names
 * shown), and links in the rest. */
export function messageParts(content: string, mentioned: readonly Candidate[], me: number): MessagePart[] {
  const parts: MessagePart[] = [];
  let at = 0;
  for (const { index, member } of named(content, mentioned)) {
    if (index > at) parts.push(...linkParts(content.slice(at, index)));
    const end = index + 1 + member.name.length;
    parts.push({ text: content.slice(index, end), mention: member.userId, me: member.userId === me });
    at = end;
  }
  if (at < content.length) parts.push(...linkParts(content.slice(at)));
  return parts;
}
