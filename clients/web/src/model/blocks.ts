/** Blocks in a private chat without the DOM (docs/protocol.md, "Blocks"): the other member,
 * and what the composer says when I block them or they refused my message. */

import type { ChatListEntry } from '@jetchat/client';

/** The other member of a private chat, `undefined` for a group. */
export function otherMember(entry: ChatListEntry | undefined, me: number): number | undefined {
  if (!entry || entry.is_group) return undefined;
  return entry.member_ids.find((id) => id !== me);
}

/** What the composer of a private chat says of a block, `''` for nothing: I block the other
 * member (`entry.blocked`; my messages still go), or a message of mine was refused with
 * `blocked` (they block me: the server tells nothing else). */
export function blockNote(entry: ChatListEntry | undefined, name: string, refusedByThem: boolean): string {
  if (!entry || entry.is_group) return '';
  if (entry.blocked) return `You blocked ${name}: they cannot send you messages or add you to groups. Unblock them in the header.`;
  if (refusedByThem) return `${name} does not accept messages from you.`;
  return '';
}
