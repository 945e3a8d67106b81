// Unit tests of the parts that need no server: backoff, token renewal times, the outbox, the
// cursor tracker, the chat list fed by a client's events.

import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { ChatList, newerProfile, newestFirst, roleIn, type ChatListEntry } from '../src/chat_list.js';
import type { Client, ClientEvents } from '../src/client.js';
import { Emitter } from '../src/emitter.js';
import { CursorTracker, RESUME_HANDLED } from '../src/cursor.js';
import { MemoryOutboxStorage, Outbox } from '../src/outbox.js';
import { TokenKeeper, tokenExp } from '../src/token.js';

const jwt = (claims: object) =>
  `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('backoff', () => {
  it('grows exponentially up to the cap, with jitter in the upper half', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0.999 });
    for (const ceiling of [100, 200, 400, 800, 1_000]) {
      const delay = high.next();
      expect(delay).toBeLessThan(ceiling);
      expect(delay).toBeGreaterThanOrEqual(ceiling * 0.99);
    }
  });

  it('starts small again after a reset', () => {
    const backoff = new Backoff({ initialMs: 100, random: () => 0 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });
});

describe('tokens', () => {
  it('reads exp from a JWT and nothing from garbage', () => {
    expect(tokenExp(jwt({ exp: 1_796_400_000, user_id: 1 }))).toBe(1_796_400_000);
    for (const garbage of ['', 'abc', 'a.!!!.c', jwt({ exp: '1' }), jwt({})]) {
      expect(tokenExp(garbage)).toBeUndefined();
    }
  });

  it('renews before exp, at most half-way through a short life', async () => {
    const now = 1_000_000_000_000;
    const provider = new TokenKeeper(async () => 'x', { renewBeforeMs: 60_000, now: () => now });
    expect(provider.renewalDelay(jwt({ exp: now / 1000 + 3600 }))).toBe(3_540_000);
    expect(provider.renewalDelay(jwt({ exp: now / 1000 + 20 }))).toBe(10_000);
    expect(provider.renewalDelay(jwt({ exp: now / 1000 - 5 }))).toBe(0);
    expect(provider.renewalDelay('no-exp')).toBeUndefined();
    const fixed = new TokenKeeper(jwt({ exp: now / 1000 + 3600 }), { now: () => now });
    expect(fixed.renewable).toBe(false);
    expect(fixed.renewalDelay(jwt({ exp: now / 1000 + 3600 }))).toBeUndefined();
  });

  it('asks the provider once for concurrent requests, and again when the token expired', async () => {
    let now = 1_000_000_000_000;
    let calls = 0;
    const keeper = new TokenKeeper(
      async () => {
        calls += 1;
        return jwt({ exp: now / 1000 + 60, n: calls });
      },
      { now: () => now },
    );
    const [a, b] = await Promise.all([keeper.current(), keeper.current()]);
    expect(a).toBe(b);
    expect(calls).toBe(1);
    expect(await keeper.current()).toBe(a);
    now += 61_000;
    expect(await keeper.current()).not.toBe(a);
    expect(calls).toBe(2);
  });
});

describe('outbox', () => {
  it('keeps a send under one client_msg_id until it is removed, across restores', async () => {
    const storage = new MemoryOutboxStorage();
    const outbox = new Outbox(storage);
    const entry = outbox.add({ action: 'send_message', chat_id: 7, content: 'hi' });
    expect(entry.frame.client_msg_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(outbox.add({ ...entry.frame, content: 'other' })).toBe(entry);
    outbox.accepted(entry.frame.client_msg_id, 7);
    await outbox.flushed();

    const again = new Outbox(storage);
    await again.restore();
    expect(again.waiting().map((e) => [e.frame.client_msg_id, e.accepted])).toEqual([
      [entry.frame.client_msg_id, true],
    ]);
    again.remove(entry.frame.client_msg_id);
    await again.flushed();
    const empty = new Outbox(storage);
    await empty.restore();
    expect(empty.size).toBe(0);
  });

  it('is due on a new socket, and on the same socket only after resendAfterMs', () => {
    const outbox = new Outbox();
    const entry = outbox.add({ action: 'send_message', chat_id: 1, content: 'x' });
    expect(outbox.due(1_000, 10_000, 999)).toEqual([entry]);
    outbox.sent(entry, 1_000);
    expect(outbox.due(5_000, 10_000, 999)).toEqual([]);
    expect(outbox.due(11_000, 10_000, 999)).toEqual([entry]);
    expect(outbox.due(5_000, 10_000, 4_999)).toEqual([entry]);
    expect(entry.attempts).toBe(1);
  });
});

describe('cursors', () => {
  it('drops a change handled already and resumes from the newest', () => {
    const cursors = new CursorTracker();
    expect(cursors.resumePoint).toBeUndefined();
    cursors.advance(10, 'e1');
    expect(cursors.handle(12)).toBe(true);
    expect(cursors.handle(11)).toBe(true);
    expect(cursors.handle(12)).toBe(false);
    expect(cursors.resumePoint).toEqual({ cursor: 12, epoch: 'e1', handled: [12, 11] });
    cursors.reset(3, 'e2');
    expect(cursors.resumePoint).toEqual({ cursor: 3, epoch: 'e2', handled: [] });
    expect(cursors.handle(12)).toBe(true);
  });

  it('carries the newest handled cursors in its resume point, and a new tracker drops them', () => {
    const first = new CursorTracker({ cursor: 0, epoch: 'e1' });
    for (let c = 1; c <= 600; c++) first.handle(c);
    const saved = JSON.parse(JSON.stringify(first.resumePoint));
    expect(saved.cursor).toBe(600);
    expect(saved.handled).toHaveLength(RESUME_HANDLED);
    expect(saved.handled.slice(0, 2)).toEqual([600, 599]);
    expect(saved.handled.at(-1)).toBe(600 - RESUME_HANDLED + 1);

    const next = new CursorTracker(saved);
    expect(next.handle(600)).toBe(false);
    expect(next.handle(101)).toBe(false);
    expect(next.handle(100)).toBe(true); // older than what the point carries: taken as new
    expect(next.handle(601)).toBe(true);
    expect(next.resumePoint).toMatchObject({ cursor: 601, epoch: 'e1' });
    // A point's cursors above its own cursor are not taken (a hand-made or damaged point).
    expect(new CursorTracker({ cursor: 5, handled: [9, 5] }).handle(9)).toBe(true);
  });

  it('remembers a bounded number of cursors', () => {
    const cursors = new CursorTracker(undefined, 3);
    for (const c of [1, 2, 3, 4]) cursors.handle(c);
    expect(cursors.handle(1)).toBe(true);
    expect(cursors.handle(4)).toBe(false);
  });
});

describe('chat list order', () => {
  const chat = (chat_id: number, last_message_id: number | null): ChatListEntry =>
    ({
      chat_id,
      name: null,
      is_group: false,
      member_ids: [],
      unread: 0,
      unread_mentions: 0,
      last_message_id,
      last_message: null,
      muted_until: null,
      mentions_muted: false,
      blocked: false,
      pinned: null,
      owner_id: null,
      admin_ids: [],
      settings: { members_can_add: false },
    });

  it('puts the newest message first, chats without messages last, the newer chat first among equals', () => {
    const sorted = [chat(1, 10), chat(2, null), chat(3, 42), chat(4, null), chat(5, 10)].sort(newestFirst);
    expect(sorted.map((c) => c.chat_id)).toEqual([3, 5, 1, 4, 2]);
  });
});

/** A client that emits what a test tells it to (no socket). */
class FakeClient extends Emitter<ClientEvents> {
  tell<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    this.emit(event, value);
  }
}

describe('chat list events', () => {
  const profile = (user_id: number, display_name: string, updated_at: string | null) =>
    ({ user_id, display_name, avatar_url: null, updated_at });

  it("takes my stored message as the chat's newest, which no new_message tells the sending socket", () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 1);
    client.tell('chat_created', { action: 'chat_created', chat: { chat_id: 7, name: null, is_group: false, created_by: 1, created_at: 't', member_ids: [1, 2] }, profiles: [] });
    const ack = { action: 'message_ack' as const, client_msg_id: 'c1', message_id: 42, chat_id: 7, timestamp: '2026-12-07T10:00:00Z' };
    client.tell('message_ack', ack);
    client.tell('message_sent', { ack, frame: { action: 'send_message', chat_id: 7, content: 'hello', client_msg_id: 'c1' } });
    const entry = list.get(7)!;
    expect(entry.last_message_id).toBe(42);
    expect(entry.last_message).toMatchObject({ message_id: 42, sender_id: 1, content: 'hello', content_type: 'text' });
    expect(entry.unread).toBe(0);
  });

  it('keeps the newest profile from chat_created, member_added and user_updated', () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 1);
    const changes: unknown[] = [];
    list.on('change', (c) => changes.push(c));
    client.tell('chat_created', { action: 'chat_created', chat: { chat_id: 7, name: null, is_group: false, created_by: 1, created_at: 't', member_ids: [1, 2] }, profiles: [profile(2, 'Bob', '2026-12-07T10:00:00Z')] });
    expect(list.profile(2)?.display_name).toBe('Bob');
    client.tell('user_updated', { action: 'user_updated', user: profile(2, 'Robert', '2026-12-07T10:01:00Z') });
    expect(list.profile(2)?.display_name).toBe('Robert');
    expect(changes).toHaveLength(2);
    // An older profile (a late answer of GET /users) and the "User 2" fallback change nothing.
    expect(list.remember([profile(2, 'Bob', '2026-12-07T10:00:00Z'), profile(2, 'User 2', null)])).toBe(false);
    expect(list.profile(2)?.display_name).toBe('Robert');
    expect(list.profile(3)).toBeUndefined();
  });

  it('follows who runs a group: roles, a handover, settings, a deletion', () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 3);
    client.tell('chat_created', {
      action: 'chat_created',
      chat: { chat_id: 7, name: 'team', is_group: true, created_by: 1, created_at: 't', member_ids: [1, 2, 3], owner_id: 1, admin_ids: [], settings: { members_can_add: false } },
      profiles: [],
    });
    const entry = list.get(7)!;
    expect([roleIn(entry, 1), roleIn(entry, 2), roleIn(entry, 3)]).toEqual(['owner', 'member', 'member']);
    client.tell('member_role_changed', { action: 'member_role_changed', chat_id: 7, user_id: 2, role: 'admin', changed_by: 1, cursor: 5 });
    expect(roleIn(entry, 2)).toBe('admin');
    // A handover: the former owner becomes an admin, the new one is no longer listed as one.
    client.tell('member_role_changed', { action: 'member_role_changed', chat_id: 7, user_id: 1, role: 'admin', changed_by: 1, cursor: 6 });
    client.tell('member_role_changed', { action: 'member_role_changed', chat_id: 7, user_id: 2, role: 'owner', changed_by: 1, cursor: 7 });
    expect([entry.owner_id, entry.admin_ids]).toEqual([2, [1]]);
    client.tell('chat_updated', { action: 'chat_updated', chat_id: 7, name: 'renamed', settings: { members_can_add: true }, cursor: 8 });
    expect([entry.name, entry.settings.members_can_add]).toEqual(['renamed', true]);
    client.tell('chat_deleted', { action: 'chat_deleted', chat_id: 7, deleted_by: 2, cursor: 9 });
    expect(list.get(7)).toBeUndefined();
  });

  it('counts the unread messages that mention me until I read them', () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 2);
    const message = (message_id: number, sender_id: number, mentions?: number[]) => ({
      action: 'new_message' as const, chat_id: 7, message_id, sender_id, client_msg_id: `c${message_id}`,
      content: 'hi', content_type: 'text' as const, status: 'sent' as const, timestamp: 't', cursor: message_id,
      ...(mentions ? { mentions } : {}),
    });
    client.tell('new_message', message(40, 1, [2]));
    client.tell('new_message', message(41, 1));
    client.tell('new_message', message(42, 1, [3]));
    client.tell('new_message', message(43, 1, [2, 3]));
    // A repeat of an older message counts nothing.
    client.tell('new_message', message(40, 1, [2]));
    const entry = list.get(7)!;
    expect([entry.unread, entry.unread_mentions]).toEqual([4, 2]);
    // Another device read some: never more mentions than unread messages.
    client.tell('unread', { action: 'unread', chats: [{ chat_id: 7, unread: 1, last_message_id: 43 }], cursor: 50, epoch: 'e' });
    expect([entry.unread, entry.unread_mentions]).toEqual([1, 1]);
    client.tell('unread', { action: 'unread', chats: [{ chat_id: 7, unread: 0, last_message_id: 43 }], cursor: 51, epoch: 'e' });
    expect(entry.unread_mentions).toBe(0);
  });

  it("takes a resumed socket's catch-up as the newest messages without counting them twice", () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 2);
    const message = (message_id: number, mentions?: number[]) => ({
      action: 'new_message' as const, chat_id: 7, message_id, sender_id: 1, client_msg_id: `c${message_id}`,
      content: `m${message_id}`, content_type: 'text' as const, status: 'sent' as const, timestamp: 't', cursor: message_id,
      ...(mentions ? { mentions } : {}),
    });
    client.tell('new_message', message(10));
    // Away, then back: `unread` counts what came meanwhile, the catch-up brings it after.
    client.tell('unread', { action: 'unread', chats: [{ chat_id: 7, unread: 3, last_message_id: 12 }], cursor: 20, epoch: 'e' });
    client.tell('new_message', message(11, [2]));
    client.tell('new_message', message(12));
    const entry = list.get(7)!;
    expect([entry.unread, entry.unread_mentions, entry.last_message_id, entry.last_message?.content]).toEqual([3, 1, 12, 'm12']);
    // A live one after it counts.
    client.tell('new_message', message(13, [2]));
    expect([entry.unread, entry.unread_mentions, entry.last_message?.content]).toEqual([4, 2, 'm13']);
  });

  it('marks a private chat blocked while I block its other member, never a group', () => {
    const client = new FakeClient();
    const list = new ChatList(client as unknown as Client, 1);
    client.tell('chat_created', { action: 'chat_created', chat: { chat_id: 7, name: null, is_group: false, created_by: 1, created_at: 't', member_ids: [1, 2] }, profiles: [] });
    client.tell('chat_created', { action: 'chat_created', chat: { chat_id: 8, name: 'g', is_group: true, created_by: 1, created_at: 't', member_ids: [1, 2] }, profiles: [] });
    const changes: unknown[] = [];
    list.on('change', (c) => changes.push(c));
    client.tell('block_changed', { action: 'block_changed', user_id: 2, blocked: true, cursor: 3 });
    expect([list.isBlocked(2), list.get(7)!.blocked, list.get(8)!.blocked]).toEqual([true, true, false]);
    expect(list.blockedUsers()).toEqual([2]);
    client.tell('block_changed', { action: 'block_changed', user_id: 2, blocked: false, cursor: 4 });
    expect([list.isBlocked(2), list.get(7)!.blocked]).toEqual([false, false]);
    expect(changes).toHaveLength(2);
  });

  it('orders profiles by updated_at, a real one over the fallback', () => {
    expect(newerProfile(undefined, profile(2, 'User 2', null))).toBe(true);
    expect(newerProfile(profile(2, 'User 2', null), profile(2, 'Bob', '2026-12-07T10:00:00Z'))).toBe(true);
    expect(newerProfile(profile(2, 'Bob', '2026-12-07T10:00:00Z'), profile(2, 'User 2', null))).toBe(false);
    expect(newerProfile(profile(2, 'Bob', '2026-12-07T10:00:00Z'), profile(2, 'Rob', '2026-12-07T09:00:00Z'))).toBe(false);
  });
});
