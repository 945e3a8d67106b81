// Mentions, pins and blocks without the DOM: the `@` being typed and the members it
// suggests, the name put in, the ids a text names when sent, a message's text cut into
// mentions and links (nothing else interpreted); who may pin and the pinned lines; what the
// composer says of a block.

import { describe, expect, it } from 'vitest';
import type { ChatListEntry, PinnedMessage } from '@jetchat/client';
import { applyMention, mentionIds, mentionQuery, messageParts, suggestions, type Candidate } from '../src/model/mentions';
import { canPin, pinnedIds, pinRows } from '../src/model/pins';
import { blockNote, otherMember } from '../src/model/blocks';

const ME = 1;
const MEMBERS: Candidate[] = [
  { userId: 2, name: 'Ben' },
  { userId: 3, name: 'Ben Lee' },
  { userId: 4, name: 'Cat Moss' },
  { userId: 5, name: 'Abe' },
];

function entry(extra: Partial<ChatListEntry> = {}): ChatListEntry {
  return {
    chat_id: 7, name: null, is_group: false, member_ids: [ME, 2], unread: 0, unread_mentions: 0, last_message_id: null,
    last_message: null, muted_until: null, mentions_muted: false, blocked: false, pinned: null, owner_id: null,
    admin_ids: [], settings: { members_can_add: false }, ...extra,
  };
}

describe('typing a mention', () => {
  it('finds the @ before the caret at the start of a word, not in an address or across a line', () => {
    expect(mentionQuery('@', 1)).toEqual({ start: 0, query: '' });
    expect(mentionQuery('hi @be', 6)).toEqual({ start: 3, query: 'be' });
    expect(mentionQuery('hi @Ben Le', 10)).toEqual({ start: 3, query: 'Ben Le' });
    expect(mentionQuery('hi @be and more', 6)).toEqual({ start: 3, query: 'be' }); // the caret decides
    expect(mentionQuery('mail ann@example.com', 20)).toBeUndefined();
    expect(mentionQuery('no at here', 10)).toBeUndefined();
    expect(mentionQuery('@ ben', 5)).toBeUndefined();
    expect(mentionQuery(`@${'x'.repeat(41)}`, 42)).toBeUndefined();
  });

  it('suggests members whose name or a word of it starts with the query, the name first', () => {
    expect(suggestions('', MEMBERS).map((m) => m.userId)).toEqual([5, 2, 3, 4]);
    expect(suggestions('be', MEMBERS).map((m) => m.userId)).toEqual([2, 3]);
    expect(suggestions('MO', MEMBERS).map((m) => m.userId)).toEqual([4]);
    expect(suggestions('lee', MEMBERS).map((m) => m.userId)).toEqual([3]);
    expect(suggestions('zed', MEMBERS)).toEqual([]);
    const many = Array.from({ length: 20 }, (_, i) => ({ userId: i + 10, name: `User ${i + 10}` }));
    expect(suggestions('us', many)).toHaveLength(8);
  });

  it('puts the chosen name in place of what was typed, the caret after it', () => {
    expect(applyMention('hi @be', { start: 3, query: 'be' }, 'Ben Lee')).toEqual({ text: 'hi @Ben Lee ', caret: 12 });
    expect(applyMention('@c how are you', { start: 0, query: 'c' }, 'Cat Moss')).toEqual({ text: '@Cat Moss how are you', caret: 10 });
  });

  it('sends the ids the text names, the longest name winning, each once', () => {
    expect(mentionIds('@Ben Lee and @ben, and @Cat Moss again @Cat Moss', MEMBERS)).toEqual([2, 3, 4]);
    expect(mentionIds('@Benjamin is not Ben; mail ben@x.org', MEMBERS)).toEqual([]);
    expect(mentionIds('(@Abe)', MEMBERS)).toEqual([5]);
    expect(mentionIds('no one', MEMBERS)).toEqual([]);
  });
});

describe("a message's mentions", () => {
  it('cuts the text into the mentioned names (mine marked), links and plain text', () => {
    const parts = messageParts('@Ben Lee see https://a.example/x, @Ann <b>now</b> @Cat Moss', [{ userId: 3, name: 'Ben Lee' }, { userId: ME, name: 'Ann' }], ME);
    expect(parts).toEqual([
      { text: '@Ben Lee', mention: 3, me: false },
      { text: ' see ' },
      { text: 'https://a.example/x', href: 'https://a.example/x' },
      { text: ', ' },
      { text: '@Ann', mention: ME, me: true },
      { text: ' <b>now</b> @Cat Moss' }, // not among the mentions: plain text, like the markup
    ]);
    expect(parts.map((p) => p.text).join('')).toBe('@Ben Lee see https://a.example/x, @Ann <b>now</b> @Cat Moss');
  });

  it('leaves a text without mentions as its links and text', () => {
    expect(messageParts('plain', [], ME)).toEqual([{ text: 'plain' }]);
    expect(messageParts('@Ben hi', [], ME)).toEqual([{ text: '@Ben hi' }]);
  });
});

describe('pins', () => {
  const pinned = (message_id: number, sender_id: number, content: string): PinnedMessage =>
    ({ message_id, chat_id: 7, sender_id, client_msg_id: `c${message_id}`, content, content_type: 'text', timestamp: 't', pinned_at: 't', pinned_by: 1 }) as PinnedMessage;

  it("lets a group's admins and owner pin, and either member of a private chat", () => {
    expect(canPin(entry(), ME)).toBe(true);
    const group = entry({ is_group: true, member_ids: [1, 2, 3], owner_id: 2, admin_ids: [3] });
    expect([canPin(group, 1), canPin(group, 2), canPin(group, 3)]).toEqual([false, true, true]);
    expect(canPin(group, 9)).toBe(false); // not a member
    expect(canPin(undefined, ME)).toBe(false);
  });

  it('lists the pinned messages newest pin first with their authors, and their ids', () => {
    const e = entry({ pinned: [pinned(42, 2, 'the rules'), pinned(40, ME, '')] });
    const rows = pinRows(e.pinned!, (id) => (id === 2 ? 'Ben' : `User ${id}`));
    expect(rows).toEqual([
      { messageId: 42, author: 'Ben', preview: 'the rules', label: 'Pinned: Ben: the rules' },
      { messageId: 40, author: 'User 1', preview: '[text]', label: 'Pinned: User 1: [text]' },
    ]);
    expect([...pinnedIds(e)]).toEqual([42, 40]);
    expect([...pinnedIds(entry())]).toEqual([]);
  });
});

describe('blocks', () => {
  it("says in a private chat's composer that I block the other member, or that they refused me", () => {
    expect(otherMember(entry(), ME)).toBe(2);
    expect(otherMember(entry({ is_group: true }), ME)).toBeUndefined();
    expect(blockNote(entry({ blocked: true }), 'Ben', false)).toBe('You blocked Ben: they cannot send you messages or add you to groups. Unblock them in the header.');
    expect(blockNote(entry(), 'Ben', true)).toBe('Ben does not accept messages from you.');
    expect(blockNote(entry(), 'Ben', false)).toBe('');
    expect(blockNote(entry({ is_group: true, blocked: true }), 'Ben', true)).toBe('');
  });
});
