// Changes to messages through the client against a real jetchat: edits, deletes, reactions,
// replies and forwards, mute, search; a refusal rejects with its code; a reconnect replays
// what changed while the socket was away.

import { describe, expect, it } from 'vitest';
import { ChangeError, ChatList, JetchatHttpError, type Client } from '../src/index.js';
import { eventually, useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

async function group(owner: Client, others: number[], name: string): Promise<number> {
  return (await owner.rest.createChat({ member_ids: others, is_group: true, name })).chat_id;
}

describe('changes over the socket', () => {
  it('edits and deletes a message; every member is told', async () => {
    const alice = client(11);
    const bob = client(12);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [12], 'edits');
    const { message_id } = await alice.send({ chat_id: chatId, content: 'teh typo' }).acked;

    const bobSeesEdit = bob.next('message_edited', (f) => f.message_id === message_id);
    const edited = await alice.editMessage(chatId, message_id, 'the typo');
    expect(edited).toMatchObject({ chat_id: chatId, message_id, sender_id: 11, content: 'the typo' });
    expect((await bobSeesEdit).content).toBe('the typo');
    const [shown] = await bob.rest.messages(chatId, { limit: 1 });
    expect(shown).toMatchObject({ message_id, content: 'the typo' });
    expect(shown!.edited_at).toBeTruthy();

    const bobSeesDelete = bob.next('message_deleted', (f) => f.message_id === message_id);
    expect(await alice.deleteMessage(chatId, message_id)).toMatchObject({ chat_id: chatId, message_id });
    await bobSeesDelete;
    const [tombstone] = await bob.rest.messages(chatId, { limit: 1 });
    expect(tombstone).toMatchObject({ message_id, deleted: true, content: '' });

    await expect(alice.editMessage(chatId, message_id, 'too late')).rejects.toMatchObject({
      name: 'ChangeError',
      code: 'message_deleted',
    });
  });

  it("refuses an edit or a delete of someone else's message with forbidden", async () => {
    const alice = client(13);
    const bob = client(14);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [14], 'not yours');
    const { message_id } = await alice.send({ chat_id: chatId, content: 'mine' }).acked;

    const edit = bob.editMessage(chatId, message_id, 'hijacked');
    await expect(edit).rejects.toBeInstanceOf(ChangeError);
    await expect(edit).rejects.toMatchObject({ code: 'forbidden' });
    await expect(bob.deleteMessage(chatId, message_id)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(bob.react(999_999, message_id, '👍')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(bob.mute(999_999)).rejects.toMatchObject({ code: 'forbidden' });
    const [kept] = await alice.rest.messages(chatId, { limit: 1 });
    expect(kept).toMatchObject({ message_id, content: 'mine' });
  });

  it('reacts, counts the reactions and takes one back', async () => {
    const alice = client(15);
    const bob = client(16);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [16], 'reactions');
    const { message_id } = await alice.send({ chat_id: chatId, content: 'react to me' }).acked;

    const aliceSees = alice.next('reaction_added', (f) => f.message_id === message_id);
    expect(await bob.react(chatId, message_id, '👍')).toMatchObject({ user_id: 16, emoji: '👍' });
    expect(await aliceSees).toMatchObject({ user_id: 16, emoji: '👍', chat_id: chatId });
    await alice.react(chatId, message_id, '👍');
    const [both] = await bob.rest.messages(chatId, { limit: 1 });
    expect(both!.reactions).toEqual([{ emoji: '👍', count: 2, me: true }]);

    expect(await bob.unreact(chatId, message_id, '👍')).toMatchObject({ user_id: 16, emoji: '👍' });
    const [after] = await bob.rest.messages(chatId, { limit: 1 });
    expect(after!.reactions).toEqual([{ emoji: '👍', count: 1, me: false }]);
    // An unreact of none is announced to no one: it times out rather than resolving.
    await expect(bob.unreact(chatId, message_id, '👍', { timeoutMs: 500 })).rejects.toMatchObject({
      name: 'ChangeTimeoutError',
    });
  });

  it('sends a reply with its quote and a forward', async () => {
    const alice = client(17);
    const bob = client(18);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [18], 'replies');
    const other = await group(bob, [17], 'elsewhere');
    const question = await alice.send({ chat_id: chatId, content: 'lunch?' }).acked;

    const aliceGets = alice.next('new_message', (m) => m.chat_id === chatId);
    await bob.send({ chat_id: chatId, content: 'yes', replyTo: question.message_id }).acked;
    expect(await aliceGets).toMatchObject({
      content: 'yes',
      reply_to_message_id: question.message_id,
      reply_quote: { sender_id: 17, text: 'lunch?' },
    });

    await bob.send({ chat_id: other, content: 'lunch?', forwardedFrom: question.message_id }).acked;
    const [forward] = await alice.rest.messages(other, { limit: 1 });
    expect(forward!.forwarded_from).toBeTruthy();

    await expect(
      alice.send({ chat_id: other, content: 'wrong chat', replyTo: question.message_id }).acked,
    ).rejects.toMatchObject({ frame: { code: 'invalid_reply' } });
  });

  it('mutes and unmutes a chat; the chat list shows it', async () => {
    const alice = client(19);
    const list = new ChatList(alice, 19);
    await alice.connect();
    const chatId = await group(alice, [20], 'quiet');
    await list.load();
    expect(list.get(chatId)?.muted_until).toBeNull();
    const muted = await alice.mute(chatId, '2099-01-01T00:00:00Z');
    expect(list.get(chatId)?.muted_until).toMatch(/^2099-01-01/);
    expect(muted.muted_until).toMatch(/^2099-01-01/);
    const [summary] = (await alice.rest.chats()).filter((c) => c.chat_id === chatId);
    expect(summary!.muted_until).toMatch(/^2099-01-01/);
    expect((await alice.unmute(chatId)).muted_until ?? null).toBeNull();
    expect(list.get(chatId)?.muted_until).toBeNull();
    await expect(alice.mute(chatId, '2000-01-01T00:00:00Z')).rejects.toMatchObject({ code: 'invalid_field' });
  });

  it('replays an edit and a reaction missed while the socket was away', async () => {
    const alice = client(21);
    const bob = client(22);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [22], 'away');
    const { message_id } = await alice.send({ chat_id: chatId, content: 'before' }).acked;
    await eventually('bob has the message', () => bob.resumePoint);
    const edits: string[] = [];
    const reactions: string[] = [];
    bob.on('message_edited', (f) => f.message_id === message_id && edits.push(f.content));
    bob.on('reaction_added', (f) => f.message_id === message_id && reactions.push(f.emoji));
    bob.close();

    await alice.editMessage(chatId, message_id, 'after');
    await alice.react(chatId, message_id, '🎉');
    const connected = bob.next('connected');
    await bob.connect();
    expect((await connected).resumed).toBe(true);
    await eventually('bob is told of the edit and the reaction', () => edits.length && reactions.length);
    expect(edits).toEqual(['after']);
    expect(reactions).toEqual(['🎉']);
  });
});

describe('changes over REST', () => {
  it('edits, reacts, mutes, deletes and searches', async () => {
    const alice = client(23);
    const bob = client(24);
    await Promise.all([alice.connect(), bob.connect()]);
    const chatId = await group(alice, [24], 'rest');
    const { message_id } = await alice.send({ chat_id: chatId, content: 'a pineapple pizza' }).acked;

    const bobSees = bob.next('message_edited', (f) => f.message_id === message_id);
    const view = await alice.rest.editMessage(chatId, message_id, { content: 'a pineapple <b>pizza</b>' });
    expect(view).toMatchObject({ message_id, content: 'a pineapple <b>pizza</b>' });
    await bobSees;
    await bob.rest.react(chatId, message_id, '❤️');
    await bob.rest.react(chatId, message_id, '❤️'); // again: nothing changes
    const [shown] = await alice.rest.messages(chatId, { limit: 1 });
    expect(shown!.reactions).toEqual([{ emoji: '❤️', count: 1, me: false }]);
    await bob.rest.unreact(chatId, message_id, '❤️');
    expect((await alice.rest.mute(chatId)).muted_until).toMatch(/^9999-12-31/);
    expect((await alice.rest.unmute(chatId)).muted_until ?? null).toBeNull();

    const [hit] = await bob.rest.search({ q: 'pineapple' });
    expect(hit).toMatchObject({ message_id, chat_id: chatId });
    expect(hit!.snippet).toContain('<mark>pineapple</mark>');
    expect(hit!.snippet).not.toContain('<b>');
    await expect(bob.rest.editMessage(chatId, message_id, { content: 'x' })).rejects.toMatchObject({ status: 403 });

    await alice.rest.deleteMessage(chatId, message_id);
    expect(await bob.rest.search({ q: 'pineapple' })).toEqual([]);
    await expect(alice.rest.react(chatId, message_id, '👍')).rejects.toBeInstanceOf(JetchatHttpError);
  });

  it('pages through search hits with before', async () => {
    const carol = client(25);
    await carol.connect();
    const chatId = await group(carol, [26], 'many');
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) ids.push((await carol.send({ chat_id: chatId, content: `walrus ${i}` }).acked).message_id);
    const pages = [];
    for await (const page of carol.rest.searchPages({ q: 'walrus', chat_id: chatId }, 3)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((h) => h.message_id)).toEqual([...ids].reverse());
  });
});
