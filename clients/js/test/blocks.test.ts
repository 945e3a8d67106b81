// Blocks through the client against a real jetchat: Alice blocks Bob over the socket, Bob's
// private message is refused with `blocked` and so is his adding her to a group, Alice's
// other device hears of it, the REST list shows it, and lifting it over REST lets Bob write.

import { describe, expect, it } from 'vitest';
import { ChangeError, JetchatHttpError, SendError } from '../src/index.js';
import { useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

describe('blocks', () => {
  it('refuses the blocked user and leaves the blocker unchanged', async () => {
    const alice = client(11);
    const aliceElsewhere = client(11);
    const bob = client(12);
    await Promise.all([alice.connect(), aliceElsewhere.connect(), bob.connect()]);
    const chat = await alice.rest.createChat({ is_group: false, member_ids: [12] });

    const told = aliceElsewhere.next('block_changed', (f) => f.user_id === 12);
    await alice.blockUser(12);
    expect(await told).toMatchObject({ user_id: 12, blocked: true });
    expect((await alice.rest.blocks()).map((b) => b.user_id)).toEqual([12]);

    const refused = await bob.send({ chat_id: chat.chat_id, content: 'hello?' }).acked.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SendError);
    expect((refused as SendError).frame.code).toBe('blocked');
    const group = await bob.rest.createChat({ name: 'mine', is_group: true, member_ids: [] });
    const adding = await bob.addMembers(group.chat_id, [11]).catch((e: unknown) => e);
    expect(adding).toBeInstanceOf(ChangeError);
    expect((adding as ChangeError).code).toBe('blocked');
    const rest = await bob.rest.addMembers(group.chat_id, [11]).catch((e: unknown) => e);
    expect(rest).toBeInstanceOf(JetchatHttpError);
    expect(rest).toMatchObject({ status: 403, code: 'blocked' });
    // My own id is refused.
    const self = await alice.blockUser(11).catch((e: unknown) => e);
    expect((self as ChangeError).code).toBe('invalid_field');

    // Alice still writes to Bob; lifted over REST, Bob writes again.
    await alice.send({ chat_id: chat.chat_id, content: 'still mine' }).acked;
    await alice.rest.unblock(12);
    expect(await alice.rest.blocks()).toEqual([]);
    const ack = await bob.send({ chat_id: chat.chat_id, content: 'thanks' }).acked;
    expect(ack.message_id).toBeGreaterThan(0);
  });
});
