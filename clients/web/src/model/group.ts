/** A group's panel without the DOM (docs/protocol.md, "Groups their members run"): its members
 * with their roles, what the signed-in user's role lets them do to the group and to each
 * member, the add-members field read as ids, and a refusal's words by its error `code`. */

import { roleIn, type ChatListEntry, type Role } from '@jetchat/client';
import { userFace, type Face } from './people';
import type { Directory } from './chats';

/** What a role may do to the group itself. */
export interface GroupPermissions {
  /** Add members: admins and the owner; members too when `members_can_add` is on. */
  add: boolean;
  /** Rename the group and change its settings: admins and the owner. */
  edit: boolean;
  /** Delete the group for everyone: the owner. */
  delete: boolean;
  /** Leave: everyone (an owner's group passes to its longest-serving admin, else member). */
  leave: boolean;
}

export function groupPermissions(role: Role | null, membersCanAdd: boolean): GroupPermissions {
  const admin = role === 'admin' || role === 'owner';
  return { add: admin || (role === 'member' && membersCanAdd), edit: admin, delete: role === 'owner', leave: role !== null };
}

/** A change to one member, as the panel offers it. */
export type MemberAction = 'make_admin' | 'dismiss_admin' | 'make_owner' | 'remove';

/** What `me` (with role `mine`) may do to a member with role `theirs`: the owner appoints
 * and dismisses admins, hands the group over and removes anyone; an admin removes members;
 * nobody removes the owner, and nobody acts on themselves here (leaving is its own button). */
export function memberActions(mine: Role | null, theirs: Role, self: boolean): MemberAction[] {
  if (self || theirs === 'owner') return [];
  if (mine === 'owner') return [theirs === 'admin' ? 'dismiss_admin' : 'make_admin', 'make_owner', 'remove'];
  if (mine === 'admin' && theirs === 'member') return ['remove'];
  return [];
}

/** The role a member action gives (`remove` gives none). */
export function roleGiven(action: MemberAction): Role | null {
  return action === 'make_admin' ? 'admin' : action === 'dismiss_admin' ? 'member' : action === 'make_owner' ? 'owner' : null;
}

/** A member action's button text and what a screen reader hears of it. */
export function actionText(action: MemberAction, name: string): { text: string; label: string } {
  switch (action) {
    case 'make_admin': return { text: 'Make admin', label: `Make ${name} an admin` };
    case 'dismiss_admin': return { text: 'Dismiss admin', label: `Dismiss ${name} as admin` };
    case 'make_owner': return { text: 'Make owner', label: `Hand the group over to ${name}` };
    case 'remove': return { text: 'Remove', label: `Remove ${name} from the group` };
  }
}

/** The order roles are listed in. */
const RANK: Record<Role, number> = { owner: 0, admin: 1, member: 2 };

/** One member in the panel. */
export interface MemberRow {
  userId: number;
  name: string;
  face: Face;
  role: Role;
  self: boolean;
  actions: MemberAction[];
}

/** The group's members: the owner, then admins, then members, by name within each; each with
 * what I may do to them. */
export function memberRows(entry: ChatListEntry, me: number, directory: Directory): MemberRow[] {
  const mine = roleIn(entry, me);
  return entry.member_ids
    .map((userId) => {
      const role = roleIn(entry, userId) ?? 'member';
      const self = userId === me;
      const face = userFace(directory(userId), userId);
      return { userId, name: self ? `${face.name} (you)` : face.name, face, role, self, actions: memberActions(mine, role, self) };
    })
    .sort((a, b) => RANK[a.role] - RANK[b.role] || a.name.localeCompare(b.name) || a.userId - b.userId);
}

/** The add-members field as ids (whole numbers from 1, separated by commas or spaces, not
 * already members); a string says what is wrong. */
export function idsToAdd(text: string, members: readonly number[]): number[] | string {
  const ids = text.split(/[\s,]+/).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((id) => !Number.isSafeInteger(id) || id < 1)) {
    return 'User ids are whole numbers from 1, separated by commas.';
  }
  const fresh = [...new Set(ids)].filter((id) => !members.includes(id));
  if (fresh.length === 0) return ids.length === 1 ? `User ${ids[0]} is already a member.` : 'They are all members already.';
  return fresh;
}

/** What a refusal says to the person who tried, by its error code (the server's `detail`
 * after it: for `forbidden`, the role the action needs). */
export function refusalText(error: unknown): string {
  const { code, detail } = codeOf(error);
  const lead = code ? LEADS[code] : undefined;
  if (!lead) return detail;
  return detail && detail !== lead ? `${lead} (${detail})` : lead;
}

const LEADS: Record<string, string> = {
  forbidden: 'Your role in this group does not allow that',
  not_a_member: 'Not a member of this group',
  owner_required: 'The group needs its owner: hand it over to someone else first',
  invalid_role: 'That is not a role (owner, admin or member)',
  not_a_group: 'This is a private chat, not a group',
  invalid_field: 'That is not valid',
  rate_limited: 'Too many changes at once: try again in a moment',
};

/** An error's code and words: a socket refusal (`ChangeError`: `code`, `frame.detail`), a REST
 * one (`JetchatHttpError`: `code`, `detail`), or anything else's message. */
function codeOf(error: unknown): { code: string | undefined; detail: string } {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; detail?: unknown; frame?: { detail?: unknown }; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    const detail = typeof e.frame?.detail === 'string' ? e.frame.detail
      : typeof e.detail === 'string' ? e.detail
      : typeof e.message === 'string' ? e.message : String(error);
    return { code, detail };
  }
  return { code: undefined, detail: String(error) };
}

/** What a page open on a chat says when the chat goes away under it. */
export function goneText(kind: 'deleted' | 'left' | 'removed', by: string | undefined): string {
  if (kind === 'deleted') return by ? `${by} deleted this group.` : 'This group was deleted.';
  if (kind === 'left') return 'You left this group.';
  return by ? `${by} removed you from this group.` : 'You were removed from this group.';
}
