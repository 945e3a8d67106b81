// How the chat list, a conversation's header and the new-chat form read, without the DOM.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatListEntry, MessageView } from '@jetchat/client';
import { chatFace, chatRows, chatTitle, isMuted, newChatRequest, presenceText, type Directory } from '../src/model/chats';
import { Typers, typingText } from '../src/model/typing';

const ME = 1;
/** Knows user 5 only. */
const directory: Directory = (id) => (id === 5 ? { user_id: 5, display_name: 'Eve Moss', avatar_url: 'https://cdn.example.com/5.png', updated_at: '2026-12-01T00:00:00Z' } : undefined);
const NOW = Date.parse('2026-12-01T12:00:00Z');

function entry(chatId: number, extra: Partial<ChatListEntry> = {}): ChatListEntry {
  return {
    chat_id: chatId,
    name: null,
    is_group: false,
    member_ids: [ME, 2],
    unread: 0,
    unread_mentions: 0,
    last_message_id: null,
    last_message: null,
    muted_until: null,
    mentions_muted: false,
    blocked: false,
    pinned: null,
    owner_id: null,
    admin_ids: [],
    settings: { members_can_add: false },
    ...extra,
  };
}
const last = (sender: number, extra: Partial<MessageView> = {}) =>
  ({ message_id: 1, chat_id: 1, sender_id: sender, content: 'hello', content_type: 'text', timestamp: '', ...extra }) as MessageView;

describe('the chat list', () => {
  it('names a private chat after the other member and a group after its name', () => {
    expect(chatTitle(entry(1), 1, ME, directory)).toBe('User 2');
    expect(chatTitle(entry(1, { member_ids: [ME, 5] }), 1, ME, directory)).toBe('Eve Moss');
    expect(chatTitle(entry(2, { is_group: true, name: 'team', member_ids: [1, 2, 3] }), 2, ME, directory)).toBe('team');
    expect(chatTitle(entry(3, { is_group: true }), 3, ME, directory)).toBe('Group 3');
    expect(chatTitle(undefined, 4, ME, directory)).toBe('Chat 4');
  });

  it("draws a private chat with the other member's avatar or initials, a group with its name's", () => {
    expect(chatFace(entry(1, { member_ids: [ME, 5] }), 1, ME, directory)).toMatchObject({ name: 'Eve Moss', avatarUrl: 'https://cdn.example.com/5.png', initials: 'EM' });
    expect(chatFace(entry(1), 1, ME, directory)).toMatchObject({ name: 'User 2', avatarUrl: null, initials: 'U2' });
    expect(chatFace(entry(2, { is_group: true, name: 'team', member_ids: [1, 2, 3] }), 2, ME, directory)).toMatchObject({ name: 'team', avatarUrl: null, initials: 'TE' });
  });

  it('shows unread counts except for the open chat, mutes, and the newest message', () => {
    const rows = chatRows([
      entry(1, { unread: 3, last_message: last(2) }),
      entry(2, { unread: 2, last_message: last(ME, { content: '', content_type: 'audio' }), muted_until: '2026-12-24T18:00:00Z' }),
      entry(3, { muted_until: '2026-11-30T00:00:00Z', last_message: last(2, { deleted: true, content: '' }) }),
      entry(4),
      entry(6, { is_group: true, name: 'team', member_ids: [ME, 2, 5], last_message: last(5) }),
    ], ME, 2, directory, NOW);
    expect(rows.map((r) => r.chatId)).toEqual([1, 2, 3, 4, 6]); // the SDK's order is kept
    expect(rows[0]).toMatchObject({ unread: 3, current: false, muted: false, preview: 'hello', label: 'User 2, 3 unread' });
    expect(rows[1]).toMatchObject({ unread: 0, current: true, muted: true, preview: 'You: ♪ Voice note', label: 'User 2, muted' });
    expect(rows[2]).toMatchObject({ muted: false, preview: 'message deleted' });
    expect(rows[3]).toMatchObject({ preview: 'No messages yet' });
    expect(rows[4]).toMatchObject({ preview: 'Eve Moss: hello' }); // a group's line names its author
    expect(isMuted(entry(5, { muted_until: '9999-12-31T23:59:59Z' }), NOW)).toBe(true);
  });

  it('shows a mention badge while unread messages mention me, except for the open chat', () => {
    const rows = chatRows([
      entry(1, { is_group: true, name: 'team', unread: 3, unread_mentions: 1 }),
      entry(2, { is_group: true, name: 'club', unread: 4, unread_mentions: 2 }),
      entry(3, { unread: 2, unread_mentions: 2 }),
    ], ME, 3, directory, NOW);
    expect(rows.map((r) => [r.mentions, r.label])).toEqual([
      [1, 'team, 3 unread, 1 mention of you'],
      [2, 'club, 4 unread, 2 mentions of you'],
      [0, 'User 2'],
    ]);
  });

  it("tells a private chat's presence, and how many of a group are online", () => {
    const presence = new Map([[2, 'online'], [3, 'offline']]);
    expect(presenceText(entry(1), ME, presence)).toBe('online');
    expect(presenceText(entry(1, { member_ids: [ME, 4] }), ME, presence)).toBe('');
    expect(presenceText(entry(2, { is_group: true, member_ids: [ME, 2, 3] }), ME, presence)).toBe('3 members, 2 online');
  });
});

describe('the new-chat form', () => {
  it('makes one id a private chat, several or a name a group, and refuses what is not an id', () => {
    expect(newChatRequest('2', '')).toEqual({ is_group: false, member_ids: [2], name: null });
    expect(newChatRequest(' 2, 3 ', '')).toEqual({ is_group: true, member_ids: [2, 3], name: null });
    expect(newChatRequest('2', ' team ')).toEqual({ is_group: true, member_ids: [2], name: 'team' });
    for (const bad of ['', ' , ', '0', '2, x', '1.5']) {
      expect(newChatRequest(bad, '')).toBe('User ids are whole numbers from 1, separated by commas.');
    }
  });
});

describe('typing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets a typer who stopped, and one whose frame expired', () => {
    vi.useFakeTimers();
    let changes = 0;
    const typers = new Typers(() => changes++);
    typers.started(7, 2, 6_000);
    typers.started(7, 3, 2_000);
    typers.started(8, 4);
    expect(typingText(typers.in(7))).toBe('User 2, User 3 are typing…');
    typers.stopped(7, 2);
    expect(typingText(typers.in(7))).toBe('User 3 is typing…');
    vi.advanceTimersByTime(2_000);
    expect(typers.in(7)).toEqual([]);
    expect(typingText(typers.in(7))).toBe('');
    expect(typers.in(8)).toEqual([4]);
    typers.stopped(7, 2); // not typing: no change
    expect(changes).toBe(5);
  });
});
