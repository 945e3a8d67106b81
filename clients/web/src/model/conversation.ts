/** One chat's messages as the app shows them, without the DOM: stored messages by id, my sends
 * waiting for their ack by `client_msg_id`, their order, marks, edits and reactions. */

import type { HistoryMessage, MessageView } from '@jetchat/client';
import { raised, type Mark } from './marks';

/** A reaction as the message shows it. */
export interface Reaction {
  emoji: string;
  count: number;
  me: boolean;
}

/** The quote of an answered message. */
export interface Quote {
  sender_id: number;
  text: string;
}

/** A message on screen: stored (`message_id`), or one of mine waiting for its ack. */
export interface Shown {
  /** `m:<message_id>` once stored, `c:<client_msg_id>` before. */
  key: string;
  chatId: number;
  message_id?: number;
  client_msg_id?: string | null;
  sender_id: number;
  content: string;
  content_type: string;
  file_url?: string | null;
  timestamp?: string;
  /** Set on my messages only. */
  mark?: Mark;
  error?: string;
  edited?: boolean;
  deleted?: boolean;
  reactions: Reaction[];
  /** The members it mentions (`mentions`), ascending; none for a tombstone. */
  mentions: number[];
  reply_quote?: Quote | null;
  forwarded?: boolean;
  /** Its text is being edited here (a refresh leaves it alone). */
  editing?: boolean;
}

/** What a send of mine shows before its ack. */
export interface PendingBody {
  clientMsgId: string;
  content: string;
  content_type?: string;
  file_url?: string;
  reply?: Quote;
  /** The members it mentions. */
  mentions?: number[];
}

/** What storing messages changed: new messages to draw, my sends they settled to redraw. */
export interface Stored {
  added: Shown[];
  settled: Shown[];
}

export class Conversation {
  private readonly byKey = new Map<string, Shown>();
  private readonly byClientId = new Map<string, Shown>();
  /** The oldest message id loaded: the next page of history goes before it. */
  oldest: number | undefined;
  /** History has no older message. */
  complete = false;
  /** A page of history is on its way. */
  loading = false;
  /** The first page of history came. */
  loaded = false;

  constructor(
    readonly chatId: number,
    private readonly me: number,
  ) {}

  /** A send of mine, shown as pending until its ack. */
  pending(body: PendingBody): Shown {
    const shown: Shown = {
      key: `c:${body.clientMsgId}`, chatId: this.chatId, client_msg_id: body.clientMsgId, sender_id: this.me,
      content: body.content, content_type: body.content_type ?? 'text', file_url: body.file_url,
      mark: 'pending', reactions: [], mentions: [...(body.mentions ?? [])], reply_quote: body.reply ?? null,
    };
    this.byKey.set(shown.key, shown);
    this.byClientId.set(body.clientMsgId, shown);
    return shown;
  }

  /** My send of this `client_msg_id`, stored or not. */
  sent(clientMsgId: string): Shown | undefined {
    return this.byClientId.get(clientMsgId);
  }

  /** The stored message of this id, when it is here. */
  message(messageId: number): Shown | undefined {
    return this.byKey.get(`m:${messageId}`);
  }

  /** Stored messages by id; what waits for its ack after all of them, in send order. */
  sorted(): Shown[] {
    return [...this.byKey.values()].sort((a, b) =>
      (a.message_id ?? Number.MAX_SAFE_INTEGER) - (b.message_id ?? Number.MAX_SAFE_INTEGER));
  }

  /** The newest stored message id here (0 for none). */
  newestId(): number {
    return Math.max(0, ...[...this.byKey.values()].map((s) => s.message_id ?? 0));
  }

  /** Keeps stored messages once each (by id); a message that is my pending send settles it. */
  store(messages: (MessageView | HistoryMessage)[]): Stored {
    const stored: Stored = { added: [], settled: [] };
    for (const m of messages) {
      if (this.byKey.has(`m:${m.message_id}`)) continue;
      const pending = m.client_msg_id ? this.byClientId.get(m.client_msg_id) : undefined;
      if (pending && m.sender_id === this.me) {
        if (this.settle(pending, m.message_id, m.timestamp)) stored.settled.push(pending);
        continue;
      }
      const status = (m as HistoryMessage).status as Mark | undefined;
      const shown: Shown = {
        key: `m:${m.message_id}`, chatId: this.chatId, message_id: m.message_id, client_msg_id: m.client_msg_id,
        sender_id: m.sender_id, content: m.content, content_type: m.content_type, file_url: m.file_url,
        timestamp: m.timestamp, mark: m.sender_id === this.me ? (status ?? 'sent') : undefined,
        edited: !!m.edited_at, deleted: !!m.deleted,
        reactions: ((m as HistoryMessage).reactions ?? []).map((r) => ({ ...r })),
        mentions: [...(m.mentions ?? [])],
        reply_quote: m.reply_quote ?? null, forwarded: !!m.forwarded_from,
      };
      this.byKey.set(shown.key, shown);
      if (m.client_msg_id) this.byClientId.set(m.client_msg_id, shown);
      stored.added.push(shown);
    }
    return stored;
  }

  /** A page of older history (newest first, at most `pageSize`): stored, and where the next
   * page starts. */
  older(page: HistoryMessage[], pageSize: number): Stored {
    this.loaded = true;
    if (page.length < pageSize) this.complete = true;
    const stored = this.store(page);
    if (page.length) this.oldest = Math.min(this.oldest ?? Infinity, page[page.length - 1]!.message_id);
    return stored;
  }

  /** My send was stored as `messageId` (its ack, or the message itself): `true` when that
   * changed it. */
  settle(shown: Shown, messageId: number, timestamp: string): boolean {
    if (shown.message_id !== undefined) return false;
    this.byKey.delete(shown.key);
    shown.key = `m:${messageId}`;
    shown.message_id = messageId;
    shown.timestamp = timestamp;
    this.byKey.set(shown.key, shown);
    shown.mark = raised(shown.mark, 'sent');
    return true;
  }

  /** A receipt covers the message and every one of mine before it: those whose mark rose. */
  receipt(messageId: number, status: Mark): Shown[] {
    const raisedOnes: Shown[] = [];
    for (const shown of this.byKey.values()) {
      if (shown.sender_id !== this.me || shown.message_id === undefined || shown.message_id > messageId) continue;
      const mark = raised(shown.mark, status);
      if (mark === shown.mark) continue;
      shown.mark = mark;
      raisedOnes.push(shown);
    }
    return raisedOnes;
  }

  /** The server refused my send for good. */
  failed(shown: Shown, detail: string): void {
    shown.mark = 'failed';
    shown.error = detail;
  }

  edited(shown: Shown, content: string): void {
    shown.content = content;
    shown.edited = true;
  }

  /** A tombstone: no text, file or reactions. */
  deleted(shown: Shown): void {
    shown.deleted = true;
    shown.content = '';
    shown.file_url = null;
    shown.reactions = [];
    shown.mentions = [];
    shown.editing = false;
  }

  reactionAdded(shown: Shown, emoji: string, userId: number): void {
    let reaction = shown.reactions.find((r) => r.emoji === emoji);
    if (!reaction) shown.reactions.push((reaction = { emoji, count: 0, me: false }));
    reaction.count += 1;
    if (userId === this.me) reaction.me = true;
  }

  reactionRemoved(shown: Shown, emoji: string, userId: number): void {
    const reaction = shown.reactions.find((r) => r.emoji === emoji);
    if (!reaction) return;
    reaction.count -= 1;
    if (userId === this.me) reaction.me = false;
    if (reaction.count <= 0) shown.reactions = shown.reactions.filter((r) => r !== reaction);
  }

  /** History's word on a message (after a reconnect that could not resume). */
  refreshed(shown: Shown, m: HistoryMessage): void {
    shown.content = m.content;
    shown.file_url = m.file_url;
    shown.edited = !!m.edited_at;
    shown.deleted = !!m.deleted;
    shown.reactions = m.reactions.map((r) => ({ ...r }));
    shown.mentions = [...(m.mentions ?? [])];
  }
}
