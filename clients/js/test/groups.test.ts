// Three users run a group through the client against a real jetchat: the owner adds and
// promotes over REST and the socket, a member is refused with the role it needs, the admin
// removes a member, the owner leaves and the admin takes over, then deletes the group; the
// chat list follows every step.

import { describe, expect, it } from 'vitest';
import { ChangeError, ChatList, JetchatHttpError, roleIn } from '../src/index.js';
import { eventually, useJetchat } from './support/jetchat.js';

const { client } = useJetchat();

describe('a group its members run', () => {
  it('adds, promotes, refuses, removes, hands over and deletes', async () => {
    const alice = client(1);
    const bob = client(2);
    const carol = client(3);
    const bobChats = new ChatList(bob, 2);
    await Promise.all([alice.connect(), bob.connect(), carol.connect()]);

    const group = await alice.rest.createChat({ name: 'team', is_group: true, member_ids: [] });
    expect(group).toMatchObject({ owner_id: 1, admin_ids: [], settings: { members_can_add: false } });
    const view = await alice.rest.addMembers(group.chat_id, [2, 3]);
    expect(view.member_ids).toEqual([1, 2, 3]);
    await eventually("bob's list has the members", () => bobChats.get(group.chat_id)?.member_ids.length === 3);

    const promoted = bob.next('member_role_changed', (f) => f.chat_id === group.chat_id);
    await alice.setMemberRole(group.chat_id, 2, 'admin');
    expect(await promoted).toMatchObject({ user_id: 2, role: 'admin', changed_by: 1 });
    expect(roleIn(bobChats.get(group.chat_id)!, 2)).toBe('admin');

    // A plain member is refused, with the role it needs; over REST too.
    const refused = await carol.updateChat(group.chat_id, { name: 'mine' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ChangeError);
    expect((refused as ChangeError).code).toBe('forbidden');
    expect((refused as ChangeError).message).toContain('admin role');
    const rest = await carol.rest.deleteChat(group.chat_id).catch((e: unknown) => e);
    expect(rest).toMatchObject({ status: 403, code: 'forbidden' });
    expect(rest).toBeInstanceOf(JetchatHttpError);

    await bob.updateChat(group.chat_id, { name: 'renamed', settings: { members_can_add: true } });
    await eventually('the list has the new name and settings', () => bobChats.get(group.chat_id)?.settings.members_can_add);
    expect(bobChats.get(group.chat_id)?.name).toBe('renamed');
    const removed = carol.next('member_removed', (f) => f.user_id === 3);
    await bob.removeMember(group.chat_id, 3);
    expect(await removed).toMatchObject({ removed_by: 2 });

    const handedOver = bob.next('member_role_changed', (f) => f.role === 'owner');
    await alice.leaveChat(group.chat_id);
    expect(await handedOver).toMatchObject({ user_id: 2 });
    await eventually('bob owns the group', () => roleIn(bobChats.get(group.chat_id)!, 2) === 'owner');
    const [summary] = (await bob.rest.chats()).filter((c) => c.chat_id === group.chat_id);
    expect(summary).toMatchObject({ role: 'owner', owner_id: 2 });

    const deleted = bob.next('chat_deleted', (f) => f.chat_id === group.chat_id);
    await bob.deleteChat(group.chat_id);
    expect(await deleted).toMatchObject({ deleted_by: 2 });
    expect(bobChats.get(group.chat_id)).toBeUndefined();
    expect((await bob.rest.chats()).some((c) => c.chat_id === group.chat_id)).toBe(false);
  });

  it('drops a chat left while away when it loads again', async () => {
    const alice = client(4);
    const bob = client(5);
    const aliceChats = new ChatList(alice, 4);
    await Promise.all([alice.connect(), bob.connect()]);
    const group = await bob.rest.createChat({ name: 'brief', is_group: true, member_ids: [4] });
    const kept = await bob.rest.createChat({ name: 'kept', is_group: true, member_ids: [4] });
    await aliceChats.load();
    expect(aliceChats.get(group.chat_id)).toBeDefined();

    alice.close();
    await bob.deleteChat(group.chat_id);
    await aliceChats.load();
    expect(aliceChats.get(group.chat_id)).toBeUndefined();
    expect(aliceChats.get(kept.chat_id)?.name).toBe('kept');
  });
});
