// A conversation's messages without the DOM: their order, my sends settled by their ack or by
// the message itself, receipts that only raise a mark, edits, tombstones and reactions.

import { describe, expect, it } from 'vitest';
import type { HistoryMessage, MessageView } from '@jetchat/client';
import { Conversation } from '../src/model/conversation';
import { raised } from '../src/model/marks';

const ME = 1;
const BOB = 2;

function message(id: number, sender = BOB, extra: Partial<HistoryMessage> = {}): HistoryMessage {
  return {
    message_id: id, chat_id: 7, sender_id: sender, content: `m${id}`, content_type: 'text',
    timestamp: `2026-12-01T10:00:${String(id).padStart(2, '0')}Z`, reactions: [], ...extra,
  } as HistoryMessage;
}

describe('a conversation', () => {
  it('orders stored messages by id, my unacknowledged sends after them in send order', () => {
    const conv = new Conversation(7, ME);
    conv.pending({ clientMsgId: 'a', content: 'first unsent' });
    conv.store([message(5), message(3)]);
    conv.pending({ clientMsgId: 'b', content: 'second unsent' });
    conv.store([message(4)]);
    expect(conv.sorted().map((s) => s.message_id ?? s.content)).toEqual([3, 4, 5, 'first unsent', 'second unsent']);
    expect(conv.newestId()).toBe(5);
  });

  it('keeps a message once, and settles my send when its ack or the message itself comes', () => {
    const conv = new Conversation(7, ME);
    const mine = conv.pending({ clientMsgId: 'c1', content: 'hi' });
    expect(mine.mark).toBe('pending');
    expect(conv.settle(mine, 10, '2026-12-01T10:00:10Z')).toBe(true);
    expect(mine).toMatchObject({ key: 'm:10', message_id: 10, mark: 'sent' });
    // The same message again (live after the ack, or in a history page): nothing new.
    expect(conv.store([message(10, ME, { client_msg_id: 'c1' })])).toEqual({ added: [], settled: [] });
    expect(conv.settle(mine, 10, '2026-12-01T10:00:10Z')).toBe(false);

    const other = conv.pending({ clientMsgId: 'c2', content: 'there?' });
    const stored = conv.store([message(11, ME, { client_msg_id: 'c2' }), message(12)]);
    expect(stored.settled).toEqual([other]);
    expect(stored.added.map((s) => s.message_id)).toEqual([12]);
    expect(conv.sorted().map((s) => s.message_id)).toEqual([10, 11, 12]);
  });

  it('pages history back: where the next page starts, and when there is none', () => {
    const conv = new Conversation(7, ME);
    conv.older([message(30), message(29), message(28)], 3);
    expect(conv).toMatchObject({ loaded: true, complete: false, oldest: 28 });
    conv.older([message(27)], 3);
    expect(conv).toMatchObject({ complete: true, oldest: 27 });
  });

  it('raises marks with receipts that cover every message of mine up to theirs, never lowers one', () => {
    const conv = new Conversation(7, ME);
    conv.store([message(1, ME, { status: 'read' } as Partial<HistoryMessage>), message(2, ME), message(3, BOB), message(4, ME)]);
    const delivered = conv.receipt(2, 'delivered');
    expect(delivered.map((s) => s.message_id)).toEqual([2]); // 1 was read already; 3 is Bob's; 4 is after
    expect(conv.message(1)?.mark).toBe('read');
    expect(conv.message(3)?.mark).toBeUndefined();
    expect(conv.receipt(4, 'read').map((s) => s.message_id)).toEqual([2, 4]);
    expect(conv.receipt(4, 'delivered')).toEqual([]);
    expect(raised('read', 'delivered')).toBe('read');
    expect(raised('failed', 'sent')).toBe('sent');
  });

  it('edits, deletes and counts reactions, mine told apart', () => {
    const conv = new Conversation(7, ME);
    conv.store([message(1)]);
    const shown = conv.message(1)!;
    conv.edited(shown, 'fixed');
    expect(shown).toMatchObject({ content: 'fixed', edited: true });
    conv.reactionAdded(shown, '👍', BOB);
    conv.reactionAdded(shown, '👍', ME);
    conv.reactionAdded(shown, '🎉', BOB);
    expect(shown.reactions).toEqual([{ emoji: '👍', count: 2, me: true }, { emoji: '🎉', count: 1, me: false }]);
    conv.reactionRemoved(shown, '👍', ME);
    conv.reactionRemoved(shown, '🎉', BOB);
    conv.reactionRemoved(shown, '😂', BOB); // none to remove
    expect(shown.reactions).toEqual([{ emoji: '👍', count: 1, me: false }]);
    conv.deleted(shown);
    expect(shown).toMatchObject({ deleted: true, content: '', file_url: null, reactions: [] });
  });

  it('keeps what a live message says about a reply and a forward', () => {
    const conv = new Conversation(7, ME);
    const live = { ...message(9), reply_quote: { sender_id: ME, text: 'lunch?' }, forwarded_from: 3 } as unknown as MessageView;
    const [shown] = conv.store([live]).added;
    expect(shown).toMatchObject({ reply_quote: { sender_id: ME, text: 'lunch?' }, forwarded: true, reactions: [] });
  });
});
