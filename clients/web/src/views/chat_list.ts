/** The sidebar's chat list (avatar, name, newest message, unread badge, an `@` badge for
 * unread mentions of me, 🔕) and the new-chat form. */

import type { CreateChatRequest } from '@jetchat/client';
import { describe, h } from '../dom';
import { newChatRequest, type ChatRow } from '../model/chats';
import { avatar } from './avatar';

export interface ChatListActions {
  open(chatId: number): void;
  /** Creates the chat and reloads the list: the new chat's id. */
  create(request: CreateChatRequest): Promise<number>;
}

export class ChatListView {
  readonly list: HTMLUListElement;
  /** The list's own trouble: loading, the connection, the sign-in. */
  readonly error: HTMLElement;
  readonly newChat: HTMLElement;

  constructor(private readonly actions: ChatListActions) {
    this.list = h('ul', { id: 'chats', 'aria-label': 'Chats' });
    this.error = h('p', { className: 'error', role: 'alert' });
    this.newChat = this.newChatForm();
  }

  draw(rows: ChatRow[]): void {
    const items = rows.map((row) => h('li', {},
      h('button', {
        type: 'button',
        'data-chat-id': row.chatId,
        'aria-current': row.current ? 'true' : null,
        'aria-label': row.label,
        'data-muted': row.muted ? 'true' : null,
        onclick: () => this.actions.open(row.chatId),
      },
        avatar(row.face),
        h('span', { className: 'name' }, row.name, row.muted ? h('span', { className: 'muted-icon', title: 'Muted', 'data-testid': 'muted' }, ' 🔕') : null),
        row.unread || row.mentions ? h('span', { className: 'badges' },
          row.mentions ? h('span', { className: 'badge mention', 'data-testid': 'mentions', title: 'Mentions you' }, '@') : null,
          row.unread ? h('span', { className: 'badge', 'data-testid': 'unread' }, String(row.unread)) : null) : null,
        h('span', { className: 'last' }, row.preview))));
    if (items.length === 0) items.push(h('li', { className: 'muted empty-list' }, 'No chats yet.'));
    this.list.replaceChildren(...items);
  }

  showError(text: string): void {
    this.error.textContent = text;
  }

  private newChatForm(): HTMLElement {
    const members = h('input', { id: 'new-members', type: 'text', inputmode: 'numeric', required: true, placeholder: 'e.g. 2 or 2, 3', autocomplete: 'off' });
    const name = h('input', { id: 'new-name', type: 'text', placeholder: 'Group name (for a group)', maxlength: 200 });
    const error = h('p', { className: 'error', role: 'alert' });
    return h('form', {
      id: 'newchat',
      'aria-label': 'New chat',
      onsubmit: async (event: SubmitEvent) => {
        event.preventDefault();
        error.textContent = '';
        const request = newChatRequest(members.value, name.value);
        if (typeof request === 'string') {
          error.textContent = request;
          return;
        }
        try {
          const chatId = await this.actions.create(request);
          members.value = name.value = '';
          this.actions.open(chatId);
        } catch (e) {
          error.textContent = describe(e);
        }
      },
    },
      h('label', { for: 'new-members' }, 'New chat with user ids'),
      h('div', { className: 'row' }, members),
      h('label', { for: 'new-name', className: 'visually-hidden' }, 'Group name'),
      h('div', { className: 'row' }, name, h('button', { type: 'submit', className: 'primary' }, 'Start')),
      error);
  }
}
