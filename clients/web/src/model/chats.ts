/** What the chat list, a conversation's header and the new-chat form show, without the DOM.
 * The list's order and unread counts are the SDK's `ChatList`; this decides how they read. */

import type { ChatListEntry, CreateChatRequest, MessageView, UserProfile } from '@jetchat/client';
import { displayName, groupFace, userFace, type Face } from './people';

/** The profiles the app knows, by user id (the SDK's `ChatList.profile`). */
export type Directory = (userId: number) => UserProfile | undefined;

/** A chat's name: a group's name, the other member's name in a private chat. */
export function chatTitle(entry: ChatListEntry | undefined, chatId: number, me: number, directory: Directory): string {
  if (!entry) return `Chat ${chatId}`;
  if (entry.is_group) return entry.name || `Group ${chatId}`;
  const other = entry.member_ids.find((id) => id !== me);
  return other !== undefined ? displayName(directory(other), other) : entry.name || `Chat ${chatId}`;
}

/** A chat's picture: the other member's in a private chat, the name's initials for a group. */
export function chatFace(entry: ChatListEntry | undefined, chatId: number, me: number, directory: Directory): Face {
  const other = entry && !entry.is_group ? entry.member_ids.find((id) => id !== me) : undefined;
  if (other !== undefined) return userFace(directory(other), other);
  return groupFace(chatTitle(entry, chatId, me, directory), chatId);
}

/** A message in one line: its text, or what kind of file it is. */
export function messagePreview(m: Pick<MessageView, 'content' | 'content_type' | 'deleted'>): string {
  if (m.deleted) return 'message deleted';
  if (m.content) return m.content;
  return m.content_type === 'audio' ? '♪ Voice note' : m.content_type === 'video' ? '▶ Video' : `[${m.content_type}]`;
}

/** Whether the chat is muted at `now`. */
export function isMuted(entry: ChatListEntry | undefined, now = Date.now()): boolean {
  return !!entry?.muted_until && Date.parse(entry.muted_until) > now;
}

/** One line of the chat list. */
export interface ChatRow {
  chatId: number;
  name: string;
  face: Face;
  /** The newest message (`You: ` before mine, its author's name before others' in a group). */
  preview: string;
  /** The badge: none for the open chat, which is being read. */
  unread: number;
  /** How many of the unread mention me (an `@` badge); none for the open chat. */
  mentions: number;
  muted: boolean;
  current: boolean;
  /** What a screen reader says of the entry. */
  label: string;
}

/** The list's lines, in the order of `entries` (the SDK's, newest message first). */
export function chatRows(entries: ChatListEntry[], me: number, open: number | undefined, directory: Directory, now = Date.now()): ChatRow[] {
  return entries.map((entry) => {
    const last = entry.last_message;
    const face = chatFace(entry, entry.chat_id, me, directory);
    const name = face.name;
    const unread = entry.chat_id === open ? 0 : entry.unread;
    const mentions = entry.chat_id === open ? 0 : entry.unread_mentions;
    const muted = isMuted(entry, now);
    return {
      chatId: entry.chat_id,
      name,
      face,
      preview: last ? `${author(entry, last.sender_id, me, directory)}${messagePreview(last)}` : 'No messages yet',
      unread,
      mentions,
      muted,
      current: entry.chat_id === open,
      label: `${name}${muted ? ', muted' : ''}${unread ? `, ${unread} unread` : ''}${mentions ? `, ${mentions === 1 ? '1 mention' : `${mentions} mentions`} of you` : ''}`,
    };
  });
}

/** Who wrote a chat's newest message, as its line starts: `You: `, a group member's name, or
 * nothing in a private chat (the chat's name says who). */
function author(entry: ChatListEntry, senderId: number, me: number, directory: Directory): string {
  if (senderId === me) return 'You: ';
  return entry.is_group ? `${displayName(directory(senderId), senderId)}: ` : '';
}

/** Under a conversation's title: the other member's presence in a private chat, how many are
 * online in a group (me included). */
export function presenceText(entry: ChatListEntry | undefined, me: number, presence: ReadonlyMap<number, string>): string {
  const others = (entry?.member_ids ?? []).filter((id) => id !== me);
  if (!entry?.is_group && others.length === 1) return presence.get(others[0]!) ?? '';
  const online = others.filter((id) => presence.get(id) === 'online').length;
  return `${others.length + 1} members, ${online + 1} online`;
}

/** The new-chat form's fields as a request: one id is a private chat, several or a name a
 * group; a string says what is wrong. */
export function newChatRequest(members: string, name: string): CreateChatRequest | string {
  const ids = members.split(/[\s,]+/).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((id) => !Number.isSafeInteger(id) || id < 1)) {
    return 'User ids are whole numbers from 1, separated by commas.';
  }
  const group = ids.length > 1 || name.trim() !== '';
  return { is_group: group, member_ids: ids, name: group ? name.trim() || null : null };
}
