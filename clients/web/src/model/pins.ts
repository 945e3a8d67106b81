/** A conversation's pinned messages without the DOM (docs/protocol.md, "Pins"): who may pin
 * and unpin, and the lines shown at the top of the conversation. */

import { roleIn, type ChatListEntry, type PinnedMessage } from '@jetchat/client';
import { messagePreview } from './chats';

/** Whether `me` may pin and unpin in the chat: a group's admins and owner, either member of
 * a private chat. */
export function canPin(entry: ChatListEntry | undefined, me: number): boolean {
  if (!entry || !entry.member_ids.includes(me)) return false;
  const role = roleIn(entry, me);
  return role === null || role === 'admin' || role === 'owner';
}

/** One pinned message at the top of a conversation. */
export interface PinRow {
  messageId: number;
  /** Its author's name, then its text in one line. */
  author: string;
  preview: string;
  /** What a screen reader hears of it. */
  label: string;
}

/** The pinned messages' lines, newest pin first (as the server and the SDK keep them). */
export function pinRows(pinned: readonly PinnedMessage[], name: (userId: number) => string): PinRow[] {
  return pinned.map((m) => {
    const author = name(m.sender_id);
    const preview = messagePreview(m);
    return { messageId: m.message_id, author, preview, label: `Pinned: ${author}: ${preview}` };
  });
}

/** The ids of the pinned messages, to tell a message's menu "Pin" from "Unpin". */
export function pinnedIds(entry: ChatListEntry | undefined): ReadonlySet<number> {
  return new Set((entry?.pinned ?? []).map((m) => m.message_id));
}
