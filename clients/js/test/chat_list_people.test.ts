// The chat list against a real jetchat keeps what an app draws of pins, mentions and blocks
// without asking again: a chat's pinned messages once loaded (a pin, an edit, an unpin and a
// delete followed), the unread messages that mention me (counted live, cleared by reading,
// the same as GET /chats/ says), and the users I block (from GET /users/me/blocks, then
// block_changed on every device of mine).

import { describe, expect, it } from 'vitest';
import { ChatList } from '../src/index.js';
import { eventually, useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

describe('the chat list follows pins, mentions and blocks', () => {
  it("keeps a chat's pinned messages current once loaded", async () => {
    const alice = client(51);
    const bob = client(52);
    const bobChats = new ChatList(bob, 52);
    await Promise.all([alice.connect(), bob.connect()]);
    const group = await alice.rest.createChat({ name: 'pins', is_group: true, member_ids: [52] });
    const rules = await alice.send({ chat_id: group.chat_id, content: 'the rules' }).acked;
    const later = await alice.send({ chat_id: group.chat_id, content: 'later' }).acked;
    await bobChats.load();
    expect(bobChats.get(group.chat_id)?.pinned).toBeNull();
    await alice.pinMessage(group.chat_id, rules.message_id);
    expect(await bobChats.loadPins(group.chat_id)).toMatchObject([{ message_id: rules.message_id, content: 'the rules', pinned_by: 51 }]);

    // A new pin is listed first; an edit shows in the pins; an unpin and a delete take them off.
    await alice.pinMessage(group.chat_id, later.message_id);
    await eventually('two pins', () => bobChats.get(group.chat_id)?.pinned?.length === 2);
    expect(bobChats.get(group.chat_id)!.pinned!.map((m) => m.message_id)).toEqual([later.message_id, rules.message_id]);
    await alice.editMessage(group.chat_id, rules.message_id, 'the new rules');
    await eventually('the pin edited', () => bobChats.get(group.chat_id)?.pinned?.[1]?.content === 'the new rules');
    await alice.unpinMessage(group.chat_id, later.message_id);
    await eventually('one pin left', () => bobChats.get(group.chat_id)?.pinned?.length === 1);
    await alice.deleteMessage(group.chat_id, rules.message_id);
    await eventually('no pin left', () => bobChats.get(group.chat_id)?.pinned?.length === 0);
    expect((await bob.rest.chat(group.chat_id)).pinned).toEqual([]);
  });

  it('counts the unread messages that mention me, as GET /chats/ does, until I read', async () => {
    const alice = client(61);
    const bob = client(62);
    const bobChats = new ChatList(bob, 62);
    await Promise.all([alice.connect(), bob.connect()]);
    const group = await alice.rest.createChat({ name: 'calls', is_group: true, member_ids: [62, 63] });
    await bobChats.load();
    await alice.send({ chat_id: group.chat_id, content: '@bob look', mentions: [62] }).acked;
    await alice.send({ chat_id: group.chat_id, content: 'no one' }).acked;
    await alice.send({ chat_id: group.chat_id, content: '@carol', mentions: [63] }).acked;
    await eventually('three unread, one mention', () => {
      const entry = bobChats.get(group.chat_id);
      return entry?.unread === 3 && entry.unread_mentions === 1;
    });
    const [summary] = (await bob.rest.chats()).filter((c) => c.chat_id === group.chat_id);
    expect(summary?.unread_mentions).toBe(1);

    bobChats.read(group.chat_id);
    expect(bobChats.get(group.chat_id)?.unread_mentions).toBe(0);
    // The server agrees: a fresh list of Bob's says the same.
    await eventually('read on the server', async () => {
      const fresh = new ChatList(bob, 62);
      await fresh.load();
      fresh.dispose();
      return fresh.get(group.chat_id)?.unread_mentions === 0 && fresh.get(group.chat_id)?.unread === 0;
    });
  });

  it('knows whom I block, from GET /users/me/blocks and from block_changed on my other device', async () => {
    const alice = client(71);
    const aliceElsewhere = client(71);
    const bob = client(72);
    await Promise.all([alice.connect(), aliceElsewhere.connect(), bob.connect()]);
    const chat = await bob.rest.createChat({ is_group: false, member_ids: [71] });
    const elsewhere = new ChatList(aliceElsewhere, 71);
    await elsewhere.load();
    expect(elsewhere.get(chat.chat_id)?.blocked).toBe(false);

    await alice.blockUser(72);
    await eventually('the other device hears of it', () => elsewhere.get(chat.chat_id)?.blocked);
    expect(elsewhere.isBlocked(72)).toBe(true);
    const fresh = new ChatList(alice, 71);
    await fresh.load();
    expect([fresh.blockedUsers(), fresh.get(chat.chat_id)?.blocked]).toEqual([[72], true]);
    // Bob's own list knows nothing of it: the blocked user is never told.
    const bobChats = new ChatList(bob, 72);
    await bobChats.load();
    expect([bobChats.blockedUsers(), bobChats.get(chat.chat_id)?.blocked]).toEqual([[], false]);

    await alice.unblockUser(72);
    await eventually('lifted on the other device', () => elsewhere.get(chat.chat_id)?.blocked === false);
    for (const list of [elsewhere, fresh, bobChats]) list.dispose();
  });
});
