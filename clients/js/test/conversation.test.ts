// Two users chat through the client against a real jetchat: acks, receipts, history pages,
// an outbox that survives a dropped socket, a reconnect that resumes from its cursor, token
// renewal on the open socket, an upload with progress.

import { describe, expect, it } from 'vitest';
import { ChatList, MemoryOutboxStorage, ResyncRequiredError, type Client, type NewMessage } from '../src/index.js';
import { eventually, useJetchat } from './support/jetchat.js';
import { FlakyProxy } from './support/proxy.js';

const { jetchat: server, client } = useJetchat();

/** Every `new_message` a client is told of, in order. */
function inbox(client: Client): NewMessage[] {
  const messages: NewMessage[] = [];
  client.on('new_message', (message) => messages.push(message));
  return messages;
}

/** The cursor of every stored change a client emits. */
function storedChanges(client: Client): number[] {
  const cursors: number[] = [];
  client.on('frame', (frame) => {
    if ('cursor' in frame && typeof frame.cursor === 'number' && !['unread', 'synced', 'resync_required'].includes(frame.action)) {
      cursors.push(frame.cursor);
    }
  });
  return cursors;
}

async function privateChat(a: Client, other: number): Promise<number> {
  return (await a.rest.createChat({ member_ids: [other], is_group: false })).chat_id;
}

describe('a conversation', () => {
  it('delivers a message, acknowledges it and tells the author it was read', async () => {
    const alice = client(1);
    const bob = client(2);
    const bobChats = new ChatList(bob, 2);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await privateChat(alice, 2);
    const received = bob.next('new_message', (m) => m.chat_id === chatId);
    const accepted = alice.next('message_accepted');

    const { clientMsgId, acked } = alice.send({ chat_id: chatId, content: 'hello bob' });
    expect((await accepted).client_msg_id).toBe(clientMsgId);
    const ack = await acked;
    expect(ack).toMatchObject({ action: 'message_ack', client_msg_id: clientMsgId, chat_id: chatId });
    const message = await received;
    expect(message).toMatchObject({ message_id: ack.message_id, sender_id: 1, content: 'hello bob' });
    expect(alice.outbox.size).toBe(0);
    expect(bobChats.get(chatId)).toMatchObject({ unread: 1, last_message_id: ack.message_id });

    const read = alice.next('status_update', (s) => s.message_id === ack.message_id && s.status === 'read');
    bobChats.read(chatId);
    expect(await read).toMatchObject({ user_id: 2, chat_id: chatId });
    expect(bobChats.get(chatId)?.unread).toBe(0);
    const [summary] = (await bob.rest.chats()).filter((c) => c.chat_id === chatId);
    expect(summary).toMatchObject({ unread_count: 0, last_message: { message_id: ack.message_id } });
  });

  it('reports a refused send once and drops it from the outbox', async () => {
    const alice = client(1);
    await alice.connect();
    const failed = alice.next('send_failed');
    const { acked } = alice.send({ chat_id: 999_999, content: 'into the void' });
    await expect(acked).rejects.toMatchObject({ name: 'SendError', frame: { code: 'forbidden' } });
    expect((await failed).error.code).toBe('forbidden');
    expect(alice.outbox.size).toBe(0);
  });

  it('pages through history with before and after', async () => {
    const carol = client(3);
    await carol.connect();
    const chatId = (await carol.rest.createChat({ member_ids: [4, 5], is_group: true, name: 'pages' })).chat_id;
    const ids: number[] = [];
    for (let i = 0; i < 25; i++) {
      ids.push((await carol.send({ chat_id: chatId, content: `m${i}` }).acked).message_id);
    }
    const pages = [];
    for await (const page of carol.rest.history(chatId, 10)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    const seen = pages.flat().map((m) => m.message_id);
    expect(seen).toEqual([...ids].reverse());
    expect(pages.flat().map((m) => m.content)).toEqual(ids.map((_, i) => `m${i}`).reverse());
    const newer = await carol.rest.messages(chatId, { after: ids[19], limit: 100 });
    expect(newer.map((m) => m.message_id)).toEqual(ids.slice(20).reverse());
  });
});

describe('a flaky network', () => {
  it('resends unacknowledged sends with the same client_msg_id: nothing lost, nothing doubled', async () => {
    const proxy = await FlakyProxy.to(server().port);
    try {
      const alice = client(6, { url: proxy.url });
      const bob = client(7);
      const bobInbox = inbox(bob);
      await Promise.all([alice.connect(), bob.connect()]);
      const chatId = await privateChat(bob, 6);

      // The server hears alice but she hears nothing back: no accepted, no ack.
      proxy.swallowing = true;
      const before = [0, 1, 2].map((i) => alice.send({ chat_id: chatId, content: `before ${i}` }));
      await eventually('bob got the three', () => bobInbox.length === 3);
      expect(alice.outbox.size).toBe(3);
      // The connection drops; two more are sent while alice is offline.
      const reconnected = alice.next('connected');
      proxy.cut();
      proxy.swallowing = false;
      await eventually('alice saw the drop', () => alice.state !== 'open');
      const during = [0, 1].map((i) => alice.send({ chat_id: chatId, content: `offline ${i}` }));
      expect((await reconnected).resumed).toBe(true);

      const acks = await Promise.all([...before, ...during].map((s) => s.acked));
      expect(new Set(acks.map((a) => a.message_id)).size).toBe(5);
      const history = await bob.rest.messages(chatId, { limit: 100 });
      expect(history.map((m) => m.content).sort()).toEqual(
        ['before 0', 'before 1', 'before 2', 'offline 0', 'offline 1'],
      );
      expect(history.map((m) => m.message_id).sort()).toEqual(acks.map((a) => a.message_id).sort());
      await eventually('bob got all five', () => bobInbox.length >= 5);
      expect(bobInbox.map((m) => m.content).sort()).toEqual(history.map((m) => m.content).sort());
      expect(alice.outbox.size).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('resumes from its cursor: what was sent while it was away comes on reconnect, once', async () => {
    const proxy = await FlakyProxy.to(server().port);
    try {
      const alice = client(8);
      const bob = client(9, { url: proxy.url });
      const bobInbox = inbox(bob);
      await Promise.all([alice.connect(), bob.connect()]);
      const chatId = await privateChat(alice, 9);
      await alice.send({ chat_id: chatId, content: 'online' }).acked;
      await eventually('bob got the first', () => bobInbox.length === 1);
      const cursorBefore = bob.resumePoint!.cursor;

      proxy.refusing = true;
      proxy.cut();
      await eventually('bob is away', () => bob.state === 'reconnecting');
      for (const content of ['away 1', 'away 2', 'away 3']) {
        await alice.send({ chat_id: chatId, content }).acked;
      }
      const synced = bob.next('synced');
      const connected = bob.next('connected');
      proxy.refusing = false;

      expect((await connected).resumed).toBe(true);
      // Only what it emitted: the overlap's repeat of 'online' was dropped, not counted.
      expect((await synced).changes).toBe(3);
      expect(bobInbox.map((m) => m.content)).toEqual(['online', 'away 1', 'away 2', 'away 3']);
      expect(bob.resumePoint!.cursor).toBeGreaterThan(cursorBefore);
    } finally {
      await proxy.close();
    }
  });
});

describe('sync on an open socket', () => {
  it('counts in synced only the changes it emitted: the overlap it had is not counted', async () => {
    const alice = client(32);
    const bob = client(33);
    const bobInbox = inbox(bob);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await privateChat(alice, 33);
    await alice.send({ chat_id: chatId, content: 'seen live' }).acked;
    await eventually('bob got it', () => bobInbox.length === 1);
    const changes = storedChanges(bob);
    const synced = bob.next('synced');
    expect(bob.sync()).toBe(true);
    expect((await synced).changes).toBe(changes.length);
    expect(changes).toEqual([]);
    expect(bobInbox.map((m) => m.content)).toEqual(['seen live']);
  });
});

describe('an app restart', () => {
  it('sends what the last run left in a persisted outbox, once', async () => {
    const proxy = await FlakyProxy.to(server().port);
    try {
      const storage = new MemoryOutboxStorage(); // what localStorage is to a page
      const first = client(19, { url: proxy.url, outboxStorage: storage });
      const reader = client(20);
      const readerInbox = inbox(reader);
      await Promise.all([first.connect(), reader.connect()]);
      const chatId = await privateChat(reader, 19);
      proxy.swallowing = true;
      first.send({ chat_id: chatId, content: 'written before the tab closed' });
      await eventually('it reached the server', () => readerInbox.length === 1);
      first.close();
      await first.outbox.flushed();

      const second = client(19, { outboxStorage: storage });
      const acked = second.next('message_ack');
      await second.connect();
      expect((await acked).message_id).toBe(readerInbox[0]!.message_id);
      await eventually('the outbox emptied', () => second.outbox.size === 0);
      const history = await reader.rest.messages(chatId);
      expect(history.map((m) => m.content)).toEqual(['written before the tab closed']);
    } finally {
      await proxy.close();
    }
  });
  it('resumes from a saved resume point without showing the last run\'s changes again', async () => {
    const alice = client(30);
    const bob = client(31);
    const bobInbox = inbox(bob);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await privateChat(alice, 31);
    for (const content of ['one', 'two', 'three']) await alice.send({ chat_id: chatId, content }).acked;
    await eventually('bob got three', () => bobInbox.length === 3);
    // What an app keeps (localStorage, a file) when it quits: plain JSON.
    const saved = JSON.stringify(bob.resumePoint);
    bob.close();
    for (const content of ['four', 'five']) await alice.send({ chat_id: chatId, content }).acked;

    // Without the handled cursors, the catch-up's overlap (SYNC_OVERLAP) shows the last
    // run's messages again: what this test guards against.
    const { cursor, epoch } = JSON.parse(saved);
    const bare = client(31, { resumeFrom: { cursor, epoch } });
    const bareInbox = inbox(bare);
    const bareChanges = storedChanges(bare);
    const bareSynced = bare.next('synced');
    await bare.connect();
    expect((await bareSynced).changes).toBe(bareChanges.length);
    expect(bareInbox.length).toBeGreaterThan(2);
    expect(bareInbox.map((m) => m.content)).toEqual(expect.arrayContaining(['four', 'five']));
    bare.close();

    const restarted = client(31, { resumeFrom: JSON.parse(saved) });
    const restartedInbox = inbox(restarted);
    const synced = restarted.next('synced');
    await restarted.connect();
    expect((await synced).changes).toBe(2);
    expect(restartedInbox.map((m) => m.content)).toEqual(['four', 'five']);
  });
});

describe('resync_required', () => {
  it('tells the app to reload when its resume point belongs to another database, then resumes from the new one', async () => {
    const alice = client(21, { resumeFrom: { cursor: 5, epoch: 'another-database' } });
    const resync = alice.next('resync_required');
    const connected = alice.next('connected');
    await alice.connect();
    const { resumed, unread } = await connected;
    expect(resumed).toBe(true);
    expect(await resync).toMatchObject({ reason: 'other_epoch', epoch: unread.epoch });
    expect(alice.resumePoint?.epoch).toBe(unread.epoch);
  });
});

describe('GET /sync', () => {
  it('pages what a client missed, and says when that cannot be exact', async () => {
    const alice = client(17);
    await alice.connect();
    const { cursor, epoch } = alice.resumePoint!;
    const chatId = await privateChat(alice, 18);
    const ack = await alice.send({ chat_id: chatId, content: 'sync me' }).acked;
    const page = await alice.rest.sync({ since: cursor, epoch });
    expect(page.epoch).toBe(epoch);
    expect(page.cursor).toBeGreaterThan(cursor);
    // Typed frames: narrowed by `action`, no cast.
    const sent = page.changes.find((change) => change.action === 'new_message' && change.message_id === ack.message_id);
    expect(sent?.action === 'new_message' && sent.content).toBe('sync me');
    expect(page.changes.every((change) => typeof change.cursor === 'number')).toBe(true);
    const resync = alice.rest.sync({ since: cursor, epoch: 'another-database' });
    await expect(resync).rejects.toBeInstanceOf(ResyncRequiredError);
    await expect(resync).rejects.toMatchObject({ resync: { reason: 'other_epoch' } });
  });
});

describe('tokens', () => {
  it('renews the token on the open socket before it expires, without reconnecting', async () => {
    const tokens = [server().token(10, 1), server().token(10, 60)];
    let asked = 0;
    const dave = client(10, {
      token: async () => tokens[Math.min(asked++, 1)]!,
      // A 60 s token, renewed half-way (the most `renewBeforeMs` can move it).
      renewBeforeMs: 60_000,
    });
    let connects = 0;
    dave.on('connected', () => connects++);
    await dave.connect();
    const refreshed = await dave.next('token_refreshed');
    expect(refreshed.exp).toBeGreaterThan(Date.now() / 1000 + 30 * 60);
    expect(dave.state).toBe('open');
    expect(connects).toBe(1);
    expect(asked).toBe(2);
  });

  it('stops instead of retrying for ever with a fixed token that expired or is refused', async () => {
    const eve = client(11, { token: server().token(11, -1) });
    await expect(eve.connect()).rejects.toThrow(/token_expired/);
    expect(eve.state).toBe('closed');
    const signedElsewhere = client(11, { token: 'eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxMX0.c2lnbmF0dXJl' });
    await expect(signedElsewhere.connect()).rejects.toThrow(/token_refused/);
  });

  it('asks the provider again when the server refuses its token', async () => {
    const tokens = ['not-a-token', server().token(16)];
    let asked = 0;
    const frank = client(16, { token: async () => tokens[Math.min(asked++, 1)]! });
    const drops: string[] = [];
    frank.on('disconnected', ({ reason }) => drops.push(reason));
    await frank.connect();
    expect(asked).toBe(2);
    expect(drops).toHaveLength(1);
  });
});

describe('uploads', () => {
  it('uploads a voice note with progress, sends it, and the link plays', async () => {
    const alice = client(12);
    const bob = client(13);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await privateChat(alice, 13);
    const wav = wavFile(400_000);
    const progress: { loaded: number; total: number }[] = [];
    const uploaded = await alice.rest.upload(new Blob([wav], { type: 'audio/wav' }), {
      filename: 'note.wav',
      onProgress: (p) => progress.push(p),
    });
    expect(uploaded).toMatchObject({ kind: 'audio', size: wav.byteLength, filename: 'note.wav' });
    expect(progress.length).toBeGreaterThan(3);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.loaded).toBeGreaterThan(progress[i - 1]!.loaded);
    }
    expect(progress.at(-1)!.loaded).toBe(progress.at(-1)!.total);

    const received = bob.next('new_message');
    await alice.send({ chat_id: chatId, file_id: uploaded.file_id }).acked;
    const message = await received;
    expect(message).toMatchObject({ content_type: 'audio', file_id: uploaded.file_id });
    const media = await fetch(new URL(message.file_url!, server().url), { headers: { range: 'bytes=0-99' } });
    expect(media.status).toBe(206);
    expect((await media.arrayBuffer()).byteLength).toBe(100);
  });
});

describe('names and avatars', () => {
  it('answers the co-members\' profiles and tells a new name', async () => {
    const alice = client(31);
    await alice.connect();
    const chatId = await privateChat(alice, 32);
    const seen = await alice.rest.users([33, 32, 31]);
    expect(seen.map((u) => [u.user_id, u.display_name, u.updated_at])).toEqual([
      [31, 'User 31', null],
      [32, 'User 32', null],
    ]);
    const renamed = alice.next('user_updated', (frame) => frame.user.user_id === 32);
    const bob = client(32, { token: server().token(32, 60, 'Bob Example') });
    await bob.connect();
    expect((await renamed).user.display_name).toBe('Bob Example');
    const chats = await alice.rest.chats();
    const names = chats.find((c) => c.chat_id === chatId)!.profiles.map((p) => p.display_name);
    expect(names).toEqual(['User 31', 'Bob Example']);
  });
});

describe('typing and presence', () => {
  it('tells the other member who is typing, and answers presence', async () => {
    const alice = client(14);
    const bob = client(15);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await privateChat(alice, 15);
    const typing = bob.next('typing', (t) => t.state === 'started');
    alice.typing(chatId);
    alice.typing(chatId); // throttled: one frame
    expect(await typing).toMatchObject({ chat_id: chatId, user_id: 14 });
    const stopped = bob.next('typing', (t) => t.state === 'stopped');
    alice.stopTyping(chatId);
    expect((await stopped).user_id).toBe(14);
    const state = await alice.presence(chatId);
    expect(state.members.map((m) => m.user_id).sort()).toEqual([14, 15]);
  });
});

/** A valid PCM WAV file of about `bytes` bytes (silence), which the server sniffs as audio. */
function wavFile(bytes: number): Uint8Array<ArrayBuffer> {
  const data = bytes - 44;
  const buffer = new ArrayBuffer(44 + data);
  const view = new DataView(buffer);
  const ascii = (offset: number, text: string) =>
    [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + data, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, 8000, true);
  view.setUint32(28, 16000, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  ascii(36, 'data');
  view.setUint32(40, data, true);
  return new Uint8Array(buffer);
}
