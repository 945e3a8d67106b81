// Pins through the client against a real jetchat: the owner pins over the socket, a member
// is refused with the role it needs, every member hears of it, `GET /chats/{id}` lists the
// pinned message, and an unpin over REST takes it off.

import { describe, expect, it } from 'vitest';
import { ChangeError } from '../src/index.js';
import { useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

describe('pins', () => {
  it('pins, refuses a member, lists and unpins', async () => {
    const alice = client(31);
    const bob = client(32);
    await Promise.all([alice.connect(), bob.connect()]);
    const group = await alice.rest.createChat({ name: 'p', is_group: true, member_ids: [32] });
    const ack = await alice.send({ chat_id: group.chat_id, content: 'the rules' }).acked;

    const told = bob.next('message_pinned', (f) => f.message_id === ack.message_id);
    await alice.pinMessage(group.chat_id, ack.message_id);
    expect(await told).toMatchObject({ chat_id: group.chat_id, by: 31 });
    const refused = await bob.unpinMessage(group.chat_id, ack.message_id).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ChangeError);
    expect((refused as ChangeError).code).toBe('forbidden');

    const detail = await bob.rest.chat(group.chat_id);
    expect(detail.pinned.map((p) => [p.message_id, p.content, p.pinned_by])).toEqual([[ack.message_id, 'the rules', 31]]);

    const unpinned = bob.next('message_unpinned', (f) => f.message_id === ack.message_id);
    await alice.rest.unpin(group.chat_id, ack.message_id);
    await unpinned;
    expect((await alice.rest.chat(group.chat_id)).pinned).toEqual([]);
  });
});
