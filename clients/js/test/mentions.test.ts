// Mentions through the client against a real jetchat: Alice mentions Bob (and a stranger, who
// is dropped) in a group; Bob's new_message carries the mention, his chat list counts it
// unread until he reads it; a mute that spares mentions and one that does not.

import { describe, expect, it } from 'vitest';
import { eventually, useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

describe('mentions', () => {
  it('carries mentions, counts them unread and mutes them on request', async () => {
    const alice = client(21);
    const bob = client(22);
    await Promise.all([alice.connect(), bob.connect()]);
    const group = await alice.rest.createChat({ name: 'm', is_group: true, member_ids: [22] });

    const arrived = bob.next('new_message', (f) => f.chat_id === group.chat_id);
    const ack = await alice.send({ chat_id: group.chat_id, content: '@bob hi', mentions: [22, 99, 22] }).acked;
    const frame = await arrived;
    expect(frame.mentions).toEqual([22]);
    const [entry] = (await bob.rest.messages(group.chat_id)).filter((m) => m.message_id === ack.message_id);
    expect(entry?.mentions).toEqual([22]);
    await eventually('bob has an unread mention', async () => {
      const [summary] = (await bob.rest.chats()).filter((c) => c.chat_id === group.chat_id);
      return summary?.unread_mentions === 1;
    });

    const muted = await bob.mute(group.chat_id, undefined, { muteMentions: true });
    expect(muted.mentions_muted).toBe(true);
    const rest = await bob.rest.mute(group.chat_id, {});
    expect(rest.mentions_muted).toBe(false);

    bob.markRead(ack.message_id, group.chat_id);
    await eventually('read: no unread mention', async () => {
      const [summary] = (await bob.rest.chats()).filter((c) => c.chat_id === group.chat_id);
      return summary?.unread_mentions === 0;
    });
  });
});
