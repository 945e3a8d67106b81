/** One message as a list item: sender's name (in a group), forward and reply marks, text (its
 * http(s) links clickable and the members it mentions highlighted, mine more: built as DOM
 * nodes, no markup of the text is interpreted) or media, reactions, the actions (reply, react,
 * pin or unpin for those allowed, and on mine edit and delete), a pin mark, time and mark. */

import { h } from '../dom';
import type { Mark } from '../model/marks';
import type { Quote, Shown } from '../model/conversation';
import { messageParts } from '../model/mentions';
import type { Face } from '../model/people';
import { avatar } from './avatar';

const MARK_TEXT: Record<Mark, [string, string]> = {
  pending: ['…', 'sending'],
  sent: ['✓', 'sent'],
  delivered: ['✓✓', 'delivered'],
  read: ['✓✓', 'read'],
  failed: ['!', 'not sent'],
};
/** The reactions the app offers: a small fixed set. */
const EMOJI = ['👍', '❤️', '😂', '🎉'];

/** What a message's buttons do. */
export interface MessageActions {
  reply(shown: Shown): void;
  toggleReaction(shown: Shown, emoji: string): void;
  startEditing(shown: Shown): void;
  cancelEditing(shown: Shown): void;
  saveEdit(shown: Shown, text: string): void;
  delete(shown: Shown): void;
  /** Pins the message, or unpins it when pinned. */
  togglePin(shown: Shown): void;
  /** Whether the message is pinned, and whether I may pin and unpin in its chat. */
  pinState(shown: Shown): { pinned: boolean; canPin: boolean };
}

/** A user's name. */
export type Namer = (userId: number) => string;
const userN: Namer = (id) => `User ${id}`;

/** How the authors of messages are drawn. */
export interface People {
  name: Namer;
  face(userId: number): Face;
}

/** `showSender`: the message is someone else's in a group, drawn with `people`. */
export function drawMessage(shown: Shown, me: number, showSender: boolean, actions: MessageActions, people?: People): HTMLElement {
  const name = people?.name ?? userN;
  const mine = shown.sender_id === me;
  const time = shown.timestamp ? new Date(shown.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
  const media = shown.file_url && (shown.content_type === 'audio' || shown.content_type === 'video')
    ? h(shown.content_type as 'audio' | 'video', { controls: true, preload: 'metadata', src: shown.file_url, 'aria-label': shown.content_type === 'audio' ? 'Voice note' : 'Video' })
    : shown.file_url ? h('a', { href: shown.file_url, target: '_blank', rel: 'noopener' }, 'Open file') : null;
  const mark = shown.mark ? MARK_TEXT[shown.mark] : undefined;
  const pin = shown.message_id !== undefined && !shown.deleted ? actions.pinState(shown) : { pinned: false, canPin: false };
  const mentionsMe = !shown.deleted && shown.mentions.includes(me);
  return h('li', {
    className: `msg${mine ? ' mine' : ''}${mentionsMe ? ' mentions-me' : ''}${pin.pinned ? ' pinned' : ''}`,
    'data-message-id': shown.message_id,
    'data-client-msg-id': shown.client_msg_id,
  },
    !mine && showSender ? h('div', { className: 'who' }, people ? avatar(people.face(shown.sender_id)) : null, name(shown.sender_id)) : null,
    shown.forwarded && !shown.deleted ? h('div', { className: 'forwarded muted' }, 'Forwarded') : null,
    shown.reply_quote && !shown.deleted ? quote(shown.reply_quote, name) : null,
    shown.deleted
      ? h('div', { className: 'tombstone', 'data-testid': 'tombstone' }, 'message deleted')
      : shown.editing ? editor(shown, actions)
      : shown.content ? messageText(shown.content, shown.mentions.map((userId) => ({ userId, name: name(userId) })), me) : null,
    shown.deleted ? null : media,
    shown.reactions.length ? h('div', { className: 'reactions', role: 'group', 'aria-label': 'Reactions' },
      ...shown.reactions.map((r) => h('button', {
        type: 'button', className: 'reaction', 'aria-pressed': String(r.me), 'data-emoji': r.emoji,
        'aria-label': `${r.emoji} ${r.count}${r.me ? ', yours: remove' : ''}`,
        onclick: () => actions.toggleReaction(shown, r.emoji),
      }, `${r.emoji} ${r.count}`))) : null,
    shown.message_id !== undefined && !shown.deleted && !shown.editing ? buttons(shown, mine, pin, actions) : null,
    h('div', { className: 'meta' },
      pin.pinned ? h('span', { className: 'pin-mark', 'data-testid': 'pinned' }, 'pinned') : null,
      shown.edited && !shown.deleted ? h('span', { className: 'edited', 'data-testid': 'edited' }, 'edited') : null,
      time ? h('time', { datetime: shown.timestamp }, time) : null,
      mark && shown.mark ? h('span', { className: 'mark', 'data-status': shown.mark, title: mark[1], 'aria-label': mark[1] }, mark[0]) : null),
    shown.error ? h('div', { className: 'error', role: 'alert' }, `Not sent: ${shown.error}`) : null);
}

/** A message's text: text nodes, its http(s) links as links that open in a new tab and tell
 * the target neither this page nor its address, and the `@name` of each member it mentions
 * (`mentioned`, by the names shown) in a highlight, a stronger one for me. */
export function messageText(content: string, mentioned: { userId: number; name: string }[] = [], me = 0): HTMLElement {
  return h('div', { className: 'text' }, ...messageParts(content, mentioned, me).map((part) => 'href' in part
    ? h('a', { href: part.href, target: '_blank', rel: 'noopener noreferrer' }, part.text)
    : 'mention' in part
      ? h('span', { className: `mention${part.me ? ' me' : ''}`, 'data-user-id': part.mention, 'data-testid': 'mention' }, part.text)
      : part.text));
}

/** The quote of an answered message. */
export function quote(q: Quote, name: Namer = userN): HTMLElement {
  return h('blockquote', { className: 'quote', 'data-testid': 'quote' }, h('span', { className: 'who' }, name(q.sender_id)), ' ', q.text);
}

/** Reply, react, pin or unpin (when allowed), and on my own message edit and delete:
 * buttons, reachable by Tab. */
function buttons(shown: Shown, mine: boolean, pin: { pinned: boolean; canPin: boolean }, actions: MessageActions): HTMLElement {
  return h('div', { className: 'actions', role: 'group', 'aria-label': 'Message actions' },
    h('button', { type: 'button', 'aria-label': 'Reply', onclick: () => actions.reply(shown) }, 'Reply'),
    ...EMOJI.map((emoji) => h('button', {
      type: 'button', className: 'react', 'data-emoji': emoji, 'aria-label': `React with ${emoji}`,
      'aria-pressed': String(!!shown.reactions.find((r) => r.emoji === emoji)?.me),
      onclick: () => actions.toggleReaction(shown, emoji),
    }, emoji)),
    pin.canPin ? h('button', {
      type: 'button', className: 'pin', 'aria-label': pin.pinned ? 'Unpin message' : 'Pin message',
      onclick: () => actions.togglePin(shown),
    }, pin.pinned ? 'Unpin' : 'Pin') : null,
    mine ? h('button', { type: 'button', 'aria-label': 'Edit message', onclick: () => actions.startEditing(shown) }, 'Edit') : null,
    mine ? h('button', { type: 'button', 'aria-label': 'Delete message', onclick: () => actions.delete(shown) }, 'Delete') : null);
}

function editor(shown: Shown, actions: MessageActions): HTMLElement {
  const input = h('input', { type: 'text', value: shown.content, maxlength: 10000, 'aria-label': 'Edit message text' });
  const cancel = () => actions.cancelEditing(shown);
  input.addEventListener('keydown', (e: KeyboardEvent) => { if (e.key === 'Escape') cancel(); });
  return h('form', {
    className: 'editor', 'aria-label': 'Edit message',
    onsubmit: (event: SubmitEvent) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || text === shown.content) return cancel();
      actions.saveEdit(shown, text);
    },
  }, input, h('button', { type: 'submit', className: 'primary' }, 'Save'), h('button', { type: 'button', onclick: cancel }, 'Cancel'));
}
