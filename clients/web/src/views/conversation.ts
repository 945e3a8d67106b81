/** The open conversation: its header (back, picture, title, presence, block in a private
 * chat, mute), its pinned messages, the messages in order, who is typing, and the composer
 * below. */

import { h } from '../dom';
import type { Shown } from '../model/conversation';
import type { Face } from '../model/people';
import type { PinRow } from '../model/pins';
import { avatar } from './avatar';
import { drawMessage, type MessageActions, type People } from './message';
import type { ComposerView } from './composer';

export interface ConversationActions extends MessageActions, People {
  /** Scrolled near the top: the page of history before the oldest shown. */
  loadOlder(chatId: number): void;
  toggleMute(chatId: number): void;
  /** The group button: opens or closes the group's panel. */
  toggleGroupPanel(chatId: number): void;
  /** Whether the open chat is a group (its messages then say who wrote them). */
  isGroup(chatId: number): boolean;
  /** The block button of a private chat: blocks the other member, or lifts the block. */
  toggleBlock(chatId: number): void;
  /** A pinned message's "Unpin". */
  unpin(chatId: number, messageId: number): void;
}

export class ConversationView {
  readonly el: HTMLElement;
  private chatId: number | undefined;
  private messages: HTMLElement | undefined;
  private title: HTMLElement | undefined;
  private face: HTMLElement | undefined;
  /** The face drawn in the header, to draw it again only when it changed. */
  private faceShown: string | undefined;
  private presence: HTMLElement | undefined;
  private mute: HTMLElement | undefined;
  private blockButton: HTMLButtonElement | undefined;
  private pins: HTMLElement | undefined;
  private groupButton: HTMLButtonElement | undefined;
  private historyError: HTMLElement | undefined;
  private typing: HTMLElement | undefined;
  /** Each message's element, to redraw it in place. */
  private readonly drawn = new WeakMap<Shown, HTMLElement>();

  constructor(
    private readonly me: number,
    private readonly actions: ConversationActions,
  ) {
    this.el = h('main', { id: 'conversation', 'aria-label': 'Conversation' },
      h('p', { className: 'empty' }, 'Pick a chat, or start one.'));
  }

  /** Draws the chat's conversation in place of the one shown, with its messages in order. */
  show(chatId: number, messages: Shown[], composer: ComposerView, groupPanel: HTMLElement): void {
    this.chatId = chatId;
    const list = (this.messages = h('ol', { id: 'messages', 'aria-label': 'Messages', tabindex: 0, 'aria-live': 'polite', 'aria-relevant': 'additions' }));
    list.addEventListener('scroll', () => {
      if (list.scrollTop < 80) this.actions.loadOlder(chatId);
    });
    this.title = h('h2', { id: 'chat-title' });
    this.face = h('span', { className: 'face' });
    this.faceShown = undefined;
    this.presence = h('div', { id: 'chat-presence', className: 'muted', 'data-testid': 'presence' });
    this.mute = h('button', { id: 'mute', type: 'button', 'aria-pressed': 'false', onclick: () => this.actions.toggleMute(chatId) }, 'Mute');
    this.blockButton = h('button', { id: 'block', type: 'button', hidden: true, 'aria-pressed': 'false', onclick: () => this.actions.toggleBlock(chatId) }, 'Block');
    this.pins = h('section', { id: 'pinned', 'aria-label': 'Pinned messages', hidden: true });
    this.groupButton = h('button', {
      id: 'group-button', type: 'button', hidden: true, 'aria-expanded': 'false', 'aria-controls': 'group-panel',
      onclick: () => this.actions.toggleGroupPanel(chatId),
    }, 'Group');
    this.historyError = h('p', { id: 'history-error', className: 'error', role: 'alert' });
    this.typing = h('div', { id: 'typing', className: 'muted', 'aria-live': 'polite', 'data-testid': 'typing' });
    this.el.replaceChildren(
      h('header', {},
        h('button', { id: 'back', type: 'button', 'aria-label': 'Back to chats', onclick: () => history.back() }, '←'),
        this.face,
        h('div', {}, this.title, this.presence),
        h('span', { className: 'spacer' }),
        this.groupButton,
        this.blockButton,
        this.mute),
      groupPanel,
      this.pins,
      this.historyError,
      list,
      this.typing,
      composer.replying,
      composer.form);
    for (const shown of messages) list.append(this.draw(shown));
  }

  /** Whether the chat's conversation is the one drawn. */
  showing(chatId: number): boolean {
    return this.chatId === chatId && this.messages !== undefined;
  }

  /** `blocked`: in a private chat, whether I block the other member (`undefined` in a group:
   * no block button). */
  showHeader(face: Face, muted: boolean, group: boolean, blocked?: boolean): void {
    if (!this.title || !this.mute || !this.face) return;
    this.title.textContent = face.name;
    // Drawn again only when it changed: an image is not asked for at every list change.
    const key = JSON.stringify(face);
    if (this.faceShown !== key) {
      this.faceShown = key;
      this.face.replaceChildren(avatar(face));
    }
    if (this.groupButton) this.groupButton.hidden = !group;
    if (this.blockButton) {
      this.blockButton.hidden = blocked === undefined;
      this.blockButton.textContent = blocked ? 'Unblock' : 'Block';
      this.blockButton.setAttribute('aria-pressed', String(!!blocked));
      this.blockButton.setAttribute('aria-label', blocked ? `Unblock ${face.name}` : `Block ${face.name}`);
    }
    this.mute.textContent = muted ? 'Unmute' : 'Mute';
    this.mute.setAttribute('aria-pressed', String(muted));
    this.mute.setAttribute('aria-label', muted ? 'Unmute this chat' : 'Mute this chat');
  }

  /** Whether the group button shows its panel open. */
  showGroupPanelOpen(open: boolean): void {
    this.groupButton?.setAttribute('aria-expanded', String(open));
  }

  /** The chat went away while drawn (deleted, or I left or was removed): says so in its place. */
  showGone(text: string): void {
    this.chatId = undefined;
    this.messages = this.title = this.face = this.presence = this.mute = this.groupButton = this.blockButton = this.pins = undefined;
    this.historyError = this.typing = undefined;
    this.el.replaceChildren(
      h('header', {}, h('button', { id: 'back', type: 'button', 'aria-label': 'Back to chats', onclick: () => history.back() }, '←')),
      h('p', { className: 'empty', id: 'chat-gone', role: 'status' }, text));
  }

  /** The pinned messages at the top, newest pin first: each shows its message when it is
   * drawn; "Unpin" for those allowed. */
  showPins(rows: PinRow[], canUnpin: boolean): void {
    const pins = this.pins;
    const chatId = this.chatId;
    if (!pins || chatId === undefined) return;
    pins.hidden = rows.length === 0;
    pins.replaceChildren(...(rows.length ? [
      h('h3', { className: 'visually-hidden' }, 'Pinned messages'),
      h('ul', {}, ...rows.map((row) => h('li', { 'data-message-id': row.messageId },
        h('button', { type: 'button', className: 'pin-line', 'aria-label': row.label, onclick: () => this.reveal(row.messageId) },
          h('span', { className: 'pin-label', 'aria-hidden': 'true' }, 'Pinned'),
          h('span', { className: 'who' }, row.author), ': ',
          h('span', { className: 'pin-text' }, row.preview)),
        canUnpin ? h('button', { type: 'button', className: 'unpin', 'aria-label': `Unpin "${row.preview.slice(0, 40)}"`, onclick: () => this.actions.unpin(chatId, row.messageId) }, 'Unpin') : null))),
    ] : []));
  }

  /** Scrolls to a message when it is drawn, and marks it (until another is shown so). */
  private reveal(messageId: number): void {
    const el = this.messages?.querySelector<HTMLElement>(`li[data-message-id="${messageId}"]`);
    if (!el) return;
    for (const other of this.messages!.querySelectorAll('li.revealed')) other.classList.remove('revealed');
    el.scrollIntoView({ block: 'center' });
    el.classList.add('revealed');
  }

  showPresence(text: string): void {
    if (this.presence) this.presence.textContent = text;
  }

  showTyping(text: string): void {
    if (this.typing) this.typing.textContent = text;
  }

  showHistoryError(text: string): void {
    if (this.historyError) this.historyError.textContent = text;
  }

  /** Puts new messages of the drawn chat where `order` (the whole conversation, sorted) says. */
  place(chatId: number, order: Shown[], added: Shown[]): void {
    const list = this.messages;
    if (!list || !this.showing(chatId) || added.length === 0) return;
    for (const shown of added) {
      const el = this.draw(shown);
      const next = this.drawn.get(order[order.indexOf(shown) + 1]!);
      if (next && next.parentNode === list) list.insertBefore(el, next);
      else list.append(el);
    }
  }

  /** Draws a message again where it is (its text, mark or reactions changed). */
  redraw(shown: Shown): void {
    const old = this.drawn.get(shown);
    if (!old?.parentNode) return;
    old.replaceWith(this.draw(shown));
  }

  /** Draws every message of the drawn chat again (a name changed). */
  redrawAll(messages: Shown[]): void {
    for (const shown of messages) if (!shown.editing) this.redraw(shown); // keep what is being typed
  }

  /** The message's element, when drawn. */
  element(shown: Shown): HTMLElement | undefined {
    return this.drawn.get(shown);
  }

  scrollToEnd(): void {
    if (this.messages) this.messages.scrollTop = this.messages.scrollHeight;
  }

  /** Whether the drawn chat is scrolled to (nearly) its newest message. */
  atEnd(chatId: number): boolean {
    const list = this.messages;
    return !!list && this.showing(chatId) && list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  }

  /** Runs `change` (older messages put above) keeping what the reader sees where it was. */
  keepingScroll(chatId: number, change: () => void): void {
    const list = this.showing(chatId) ? this.messages : undefined;
    const before = list ? list.scrollHeight - list.scrollTop : 0;
    change();
    if (list && this.showing(chatId)) list.scrollTop = list.scrollHeight - before;
  }

  private draw(shown: Shown): HTMLElement {
    const el = drawMessage(shown, this.me, this.chatId !== undefined && this.actions.isGroup(this.chatId), this.actions, this.actions);
    this.drawn.set(shown, el);
    return el;
  }
}
