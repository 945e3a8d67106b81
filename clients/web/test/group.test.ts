// A group's panel without the DOM: what each role may do, the members in order, the add field,
// and a refusal's words by its error code.

import { describe, expect, it } from 'vitest';
import { ChangeError, JetchatHttpError, type ChatListEntry } from '@jetchat/client';
import { goneText, groupPermissions, idsToAdd, memberActions, memberRows, refusalText, roleGiven } from '../src/model/group';
import type { Directory } from '../src/model/chats';

/** Knows users 1 to 4; user 5 has no profile. */
const NAMES: Record<number, string> = { 1: 'Ann', 2: 'Bob', 3: 'Cy', 4: 'Dee' };
const directory: Directory = (id) =>
  NAMES[id] ? { user_id: id, display_name: NAMES[id], avatar_url: null, updated_at: '2026-12-01T00:00:00Z' } : undefined;

function group(extra: Partial<ChatListEntry> = {}): ChatListEntry {
  return {
    chat_id: 9, name: 'Team', is_group: true, member_ids: [1, 2, 3, 4, 5], unread: 0, last_message_id: null,
    last_message: null, muted_until: null, unread_mentions: 0, mentions_muted: false, blocked: false, pinned: null, owner_id: 1, admin_ids: [2], settings: { members_can_add: false }, ...extra,
  };
}

describe('groupPermissions', () => {
  it('lets the owner do everything, admins all but delete, members leave', () => {
    expect(groupPermissions('owner', false)).toEqual({ add: true, edit: true, delete: true, leave: true });
    expect(groupPermissions('admin', false)).toEqual({ add: true, edit: true, delete: false, leave: true });
    expect(groupPermissions('member', false)).toEqual({ add: false, edit: false, delete: false, leave: true });
  });

  it('lets members add when the group says so', () => {
    expect(groupPermissions('member', true).add).toBe(true);
    expect(groupPermissions('member', true).edit).toBe(false);
  });

  it('gives nothing in a private chat', () => {
    expect(groupPermissions(null, true)).toEqual({ add: false, edit: false, delete: false, leave: false });
  });
});

describe('memberActions', () => {
  it('lets the owner appoint, dismiss, hand over and remove', () => {
    expect(memberActions('owner', 'member', false)).toEqual(['make_admin', 'make_owner', 'remove']);
    expect(memberActions('owner', 'admin', false)).toEqual(['dismiss_admin', 'make_owner', 'remove']);
  });

  it('lets an admin remove members only', () => {
    expect(memberActions('admin', 'member', false)).toEqual(['remove']);
    expect(memberActions('admin', 'admin', false)).toEqual([]);
    expect(memberActions('admin', 'owner', false)).toEqual([]);
  });

  it('gives members nothing, and nobody anything on themselves or the owner', () => {
    expect(memberActions('member', 'member', false)).toEqual([]);
    expect(memberActions('owner', 'owner', true)).toEqual([]);
    expect(memberActions('admin', 'admin', true)).toEqual([]);
  });

  it('maps actions to the role they give', () => {
    expect(roleGiven('make_admin')).toBe('admin');
    expect(roleGiven('dismiss_admin')).toBe('member');
    expect(roleGiven('make_owner')).toBe('owner');
    expect(roleGiven('remove')).toBeNull();
  });
});

describe('memberRows', () => {
  it('lists the owner, then admins, then members by name, with my actions on each', () => {
    const rows = memberRows(group(), 2, directory);
    expect(rows.map((r) => [r.name, r.role, r.actions])).toEqual([
      ['Ann', 'owner', []],
      ['Bob (you)', 'admin', []],
      ['Cy', 'member', ['remove']],
      ['Dee', 'member', ['remove']],
      ['User 5', 'member', ['remove']],
    ]);
    expect(rows[1]!.self).toBe(true);
    expect(rows[4]!.face.initials).toBe('U5');
  });

  it('follows a handover (the owner id) and a new admin', () => {
    const rows = memberRows(group({ owner_id: 2, admin_ids: [3], member_ids: [2, 3, 4] }), 2, directory);
    expect(rows.map((r) => [r.userId, r.role, r.actions])).toEqual([
      [2, 'owner', []],
      [3, 'admin', ['dismiss_admin', 'make_owner', 'remove']],
      [4, 'member', ['make_admin', 'make_owner', 'remove']],
    ]);
  });
});

describe('idsToAdd', () => {
  it('reads ids, dropping repeats and members', () => {
    expect(idsToAdd('6, 7 6 1', [1, 2])).toEqual([6, 7]);
  });

  it('says what is wrong', () => {
    expect(idsToAdd('', [1])).toMatch(/whole numbers/);
    expect(idsToAdd('bob', [1])).toMatch(/whole numbers/);
    expect(idsToAdd('0', [1])).toMatch(/whole numbers/);
    expect(idsToAdd('2', [1, 2])).toBe('User 2 is already a member.');
    expect(idsToAdd('1 2', [1, 2])).toBe('They are all members already.');
  });
});

describe('refusalText', () => {
  it('says a socket refusal by its code, with the server detail', () => {
    const refused = new ChangeError({ action: 'error', code: 'forbidden', detail: 'removing a member needs the admin role' } as never);
    expect(refusalText(refused)).toBe('Your role in this group does not allow that (removing a member needs the admin role)');
    expect(refusalText(new ChangeError({ action: 'error', code: 'owner_required', detail: '' } as never)))
      .toBe('The group needs its owner: hand it over to someone else first');
    expect(refusalText(new ChangeError({ action: 'error', code: 'not_a_member', detail: 'not a member' } as never)))
      .toBe('Not a member of this group (not a member)');
    expect(refusalText(new ChangeError({ action: 'error', code: 'invalid_role', detail: '' } as never))).toMatch(/not a role/);
  });

  it('says a REST refusal by its code too, and anything else by its message', () => {
    const rest = new JetchatHttpError(403, 'deleting the group needs the owner role', { detail: 'deleting the group needs the owner role', code: 'forbidden' });
    expect(refusalText(rest)).toBe('Your role in this group does not allow that (deleting the group needs the owner role)');
    expect(refusalText(new Error('no answer to add_members within 10000 ms'))).toBe('no answer to add_members within 10000 ms');
    expect(refusalText(new ChangeError({ action: 'error', code: 'something_new', detail: 'what it says' } as never))).toBe('what it says');
  });
});

describe('goneText', () => {
  it('says why a chat went away', () => {
    expect(goneText('deleted', 'Bob')).toBe('Bob deleted this group.');
    expect(goneText('deleted', undefined)).toBe('This group was deleted.');
    expect(goneText('left', undefined)).toBe('You left this group.');
    expect(goneText('removed', 'Bob')).toBe('Bob removed you from this group.');
    expect(goneText('removed', undefined)).toBe('You were removed from this group.');
  });
});
