/** The open conversation: its header (back, picture, title, presence, mute), the messages in order,
 * who is typing, and the composer below. */

import { h } from '../dom';
import type { Shown } from '../model/conversation';
import type { Face } from '../model/people';
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
        this.mute),
      groupPanel,
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

  showHeader(face: Face, muted: boolean, group: boolean): void {
    if (!this.title || !this.mute || !this.face) return;
    this.title.textContent = face.name;
    // Drawn again only when it changed: an image is not asked for at every list change.
    const key = JSON.stringify(face);
    if (this.faceShown !== key) {
      this.faceShown = key;
      this.face.replaceChildren(avatar(face));
    }
    if (this.groupButton) this.groupButton.hidden = !group;
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
    this.messages = this.title = this.face = this.presence = this.mute = this.groupButton = undefined;
    this.historyError = this.typing = undefined;
    this.el.replaceChildren(
      h('header', {}, h('button', { id: 'back', type: 'button', 'aria-label': 'Back to chats', onclick: () => history.back() }, '←')),
      h('p', { className: 'empty', id: 'chat-gone', role: 'status' }, text));
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
