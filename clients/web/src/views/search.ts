/** A search over my chats: hits with their snippet; a hit opens its chat. */

import type { SearchHit } from '@jetchat/client';
import { describe, h } from '../dom';

export interface SearchActions {
  search(q: string): Promise<SearchHit[]>;
  title(chatId: number): string;
  open(chatId: number): void;
}

/** A snippet that is nothing but escaped text and `<mark>`…`</mark>`: only such is drawn as HTML. */
const SAFE_SNIPPET = /^(?:[^<>&]|&(?:[a-z]+|#[0-9]+|#x[0-9a-f]+);|<mark>|<\/mark>)*$/i;

export class SearchView {
  readonly el: HTMLElement;

  constructor(actions: SearchActions) {
    const input = h('input', { id: 'search', type: 'search', placeholder: 'Search messages', autocomplete: 'off', 'aria-label': 'Search messages' });
    const results = h('ul', { id: 'search-results', 'aria-label': 'Search results' });
    const error = h('p', { className: 'error', role: 'alert' });
    this.el = h('form', {
      id: 'searchform', role: 'search',
      onsubmit: async (event: SubmitEvent) => {
        event.preventDefault();
        error.textContent = '';
        const q = input.value.trim();
        if (!q) return results.replaceChildren();
        try {
          const hits = await actions.search(q);
          results.replaceChildren(...(hits.length ? hits.map((hit) => {
            const snippet = h('span', { className: 'snippet' });
            if (SAFE_SNIPPET.test(hit.snippet)) snippet.innerHTML = hit.snippet;
            else snippet.textContent = hit.content;
            return h('li', {}, h('button', {
              type: 'button', 'data-chat-id': hit.chat_id, 'data-message-id': hit.message_id,
              onclick: () => actions.open(hit.chat_id),
            }, h('span', { className: 'name' }, actions.title(hit.chat_id)), snippet));
          }) : [h('li', { className: 'muted' }, 'No messages found.')]));
        } catch (e) {
          error.textContent = `Search: ${describe(e)}`;
        }
      },
    },
      h('div', { className: 'row' }, input, h('button', { type: 'submit' }, 'Search')),
      error,
      results);
  }
}
