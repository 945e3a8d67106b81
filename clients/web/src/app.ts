/** The signed-in app: top bar, chat list with a new-chat form, and the open conversation. */

import {
  ChatList,
  Client,
  webStorageOutbox,
  type ChatListEntry,
  type FrameOf,
  type HistoryMessage,
  type MessageView,
} from '@jetchat/client';
import { describe, h } from './dom';
import type { Session } from './signin';

/** Where one of my messages stands, as its mark shows it. */
type Mark = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';
const RANK: Record<Mark, number> = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3 };
const MARK_TEXT: Record<Mark, [string, string]> = {
  pending: ['…', 'sending'],
  sent: ['✓', 'sent'],
  delivered: ['✓✓', 'delivered'],
  read: ['✓✓', 'read'],
  failed: ['!', 'not sent'],
};
const PAGE = 30;
/** The reactions the app offers: a small fixed set. */
const EMOJI = ['👍', '❤️', '😂', '🎉'];

/** A reaction as the message shows it. */
interface Reaction {
  emoji: string;
  count: number;
  me: boolean;
}

interface Shown {
  key: string;
  message_id?: number;
  client_msg_id?: string | null;
  sender_id: number;
  content: string;
  content_type: string;
  file_url?: string | null;
  timestamp?: string;
  mark?: Mark;
  error?: string;
  edited?: boolean;
  deleted?: boolean;
  reactions: Reaction[];
  reply_quote?: { sender_id: number; text: string } | null;
  forwarded?: boolean;
  editing?: boolean;
  el?: HTMLElement;
}

interface Conversation {
  chatId: number;
  byKey: Map<string, Shown>;
  byClientId: Map<string, Shown>;
  oldest?: number;
  complete: boolean;
  loading: boolean;
  loaded: boolean;
}

export class App {
  private readonly client: Client;
  private readonly chats: ChatList;
  private readonly me: number;
  private readonly conversations = new Map<number, Conversation>();
  private readonly presence = new Map<number, string>();
  private readonly typers = new Map<number, Map<number, ReturnType<typeof setTimeout>>>();
  private open: number | undefined;
  /** The message the composer answers, shown above it. */
  private replyTo: { chatId: number; messageId: number; sender_id: number; text: string } | undefined;

  // Elements drawn once.
  private readonly shell: HTMLElement;
  private readonly state: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly listError: HTMLElement;
  private readonly conversation: HTMLElement;

  constructor(
    private readonly root: HTMLElement,
    private readonly session: Session,
  ) {
    this.me = session.userId;
    this.client = new Client({
      url: location.origin,
      token: session.token,
      outboxStorage: webStorageOutbox(`jetchat.outbox.${this.me}`),
      backoff: { initialMs: 250, maxMs: 5_000 },
    });
    this.chats = new ChatList(this.client, this.me);
    this.state = h('span', { className: 'state', role: 'status', 'data-state': 'connecting' }, 'Connecting…');
    this.list = h('ul', { id: 'chats', 'aria-label': 'Chats' });
    this.listError = h('p', { className: 'error', role: 'alert' });
    this.conversation = h('main', { id: 'conversation', 'aria-label': 'Conversation' },
      h('p', { className: 'empty' }, 'Pick a chat, or start one.'));
    this.shell = h('div', { id: 'shell', 'data-view': 'list' },
      h('header', { id: 'topbar' },
        h('h1', {}, 'jetchat'),
        h('span', { className: 'who muted', 'data-testid': 'me' }, `User ${this.me}`),
        h('span', { className: 'spacer' }),
        this.state,
        h('button', { type: 'button', onclick: () => session.signOut() }, 'Sign out')),
      h('nav', { id: 'sidebar', 'aria-label': 'Chat list' }, this.searchForm(), this.listError, this.list, this.newChatForm()),
      this.conversation);
  }

  start(): void {
    this.root.replaceChildren(this.shell);
    const c = this.client;
    c.on('state', (state) => {
      this.state.dataset.state = state;
      this.state.textContent = { idle: 'Offline', connecting: 'Connecting…', open: 'Online', reconnecting: 'Reconnecting…', closed: 'Signed out' }[state];
    });
    c.on('stopped', ({ reason }) => {
      this.listError.textContent = reason === 'closed_by_app' ? '' : `Disconnected: ${reason.replace(/_/g, ' ')}. Sign in again.`;
    });
    c.on('token_error', ({ error }) => (this.listError.textContent = `Sign-in: ${describe(error)}`));
    this.chats.on('change', (entries) => this.drawList(entries));
    c.on('connected', ({ resumed }) => {
      if (!resumed) void this.reload();
      if (this.open !== undefined) void this.askPresence(this.open);
    });
    c.on('resync_required', () => void this.reload());
    c.on('new_message', (m) => this.incoming(m));
    c.on('message_ack', (ack) => {
      const conv = this.conversations.get(ack.chat_id);
      const shown = conv?.byClientId.get(ack.client_msg_id) ?? this.pendingAnywhere(ack.client_msg_id);
      if (!shown || !conv) return;
      this.settle(conv, shown, ack.message_id, ack.timestamp);
    });
    c.on('send_failed', ({ clientMsgId, error }) => {
      const shown = this.pendingAnywhere(clientMsgId);
      if (!shown) return;
      shown.mark = 'failed';
      shown.error = error.detail;
      this.redraw(shown);
    });
    c.on('status_update', (s) => {
      const conv = this.conversations.get(s.chat_id);
      if (!conv) return;
      // A mark covers the message and every one before it in the chat.
      for (const shown of conv.byKey.values()) {
        if (shown.sender_id === this.me && shown.message_id !== undefined && shown.message_id <= s.message_id) {
          this.raise(shown, s.status as Mark);
        }
      }
    });
    c.on('presence', (p) => {
      this.presence.set(p.user_id, p.status);
      this.drawPresence();
    });
    c.on('presence_state', (p) => {
      for (const m of p.members) this.presence.set(m.user_id, m.status);
      this.drawPresence();
    });
    c.on('typing', (t) => this.typing(t));
    c.on('message_edited', (f) => this.change(f.chat_id, f.message_id, (shown) => {
      shown.content = f.content;
      shown.edited = true;
    }));
    c.on('message_deleted', (f) => this.change(f.chat_id, f.message_id, (shown) => {
      shown.deleted = true;
      shown.content = '';
      shown.file_url = null;
      shown.reactions = [];
      shown.editing = false;
    }));
    c.on('reaction_added', (f) => this.change(f.chat_id, f.message_id, (shown) => {
      let reaction = shown.reactions.find((r) => r.emoji === f.emoji);
      if (!reaction) shown.reactions.push((reaction = { emoji: f.emoji, count: 0, me: false }));
      reaction.count += 1;
      if (f.user_id === this.me) reaction.me = true;
    }));
    c.on('reaction_removed', (f) => this.change(f.chat_id, f.message_id, (shown) => {
      const reaction = shown.reactions.find((r) => r.emoji === f.emoji);
      if (!reaction) return;
      reaction.count -= 1;
      if (f.user_id === this.me) reaction.me = false;
      if (reaction.count <= 0) shown.reactions = shown.reactions.filter((r) => r !== reaction);
    }));
    window.addEventListener('popstate', () => this.showList());
    // Read marks wait while the page is hidden; coming back reads the open chat.
    document.addEventListener('visibilitychange', () => this.readOpen());
    c.connect().catch((error) => (this.listError.textContent = describe(error)));
  }

  // --- the chat list -----------------------------------------------------------------------

  private async reload(): Promise<void> {
    try {
      await this.chats.load();
      this.listError.textContent = '';
      if (this.open !== undefined) {
        const conv = this.conversations.get(this.open);
        if (conv) await this.loadNewer(conv);
        if (conv) await this.refreshNewest(conv);
        this.readOpen();
      }
    } catch (error) {
      this.listError.textContent = `Chats could not load: ${describe(error)}`;
    }
  }

  private title(entry: ChatListEntry | undefined, chatId: number): string {
    if (!entry) return `Chat ${chatId}`;
    if (entry.is_group) return entry.name || `Group ${chatId}`;
    const other = entry.member_ids.find((id) => id !== this.me);
    return other !== undefined ? `User ${other}` : entry.name || `Chat ${chatId}`;
  }

  private drawList(entries: ChatListEntry[]): void {
    const items = entries.map((entry) => {
      const last = entry.last_message;
      const preview = last ? `${last.sender_id === this.me ? 'You: ' : ''}${this.preview(last)}` : 'No messages yet';
      const name = this.title(entry, entry.chat_id);
      const unread = entry.chat_id === this.open ? 0 : entry.unread;
      const muted = isMuted(entry);
      return h('li', {},
        h('button', {
          type: 'button',
          'data-chat-id': entry.chat_id,
          'aria-current': entry.chat_id === this.open ? 'true' : null,
          'aria-label': `${name}${muted ? ', muted' : ''}${unread ? `, ${unread} unread` : ''}`,
          'data-muted': muted ? 'true' : null,
          onclick: () => this.openChat(entry.chat_id),
        },
          h('span', { className: 'name' }, name, muted ? h('span', { className: 'muted-icon', title: 'Muted', 'data-testid': 'muted' }, ' 🔕') : null),
          unread ? h('span', { className: 'badge', 'data-testid': 'unread' }, String(unread)) : null,
          h('span', { className: 'last' }, preview)));
    });
    if (items.length === 0) items.push(h('li', { className: 'muted empty-list' }, 'No chats yet.'));
    this.list.replaceChildren(...items);
    if (this.open !== undefined) this.drawHeader();
  }

  private preview(m: Pick<MessageView, 'content' | 'content_type' | 'deleted'>): string {
    if (m.deleted) return 'message deleted';
    if (m.content) return m.content;
    return m.content_type === 'audio' ? '♪ Voice note' : m.content_type === 'video' ? '▶ Video' : `[${m.content_type}]`;
  }

  /** A search over my chats: hits with their snippet; a hit opens its chat. */
  private searchForm(): HTMLElement {
    const input = h('input', { id: 'search', type: 'search', placeholder: 'Search messages', autocomplete: 'off', 'aria-label': 'Search messages' });
    const results = h('ul', { id: 'search-results', 'aria-label': 'Search results' });
    const error = h('p', { className: 'error', role: 'alert' });
    return h('form', {
      id: 'searchform', role: 'search',
      onsubmit: async (event: SubmitEvent) => {
        event.preventDefault();
        error.textContent = '';
        const q = input.value.trim();
        if (!q) return results.replaceChildren();
        try {
          const hits = await this.client.rest.search({ q, limit: 20 });
          results.replaceChildren(...(hits.length ? hits.map((hit) => {
            const snippet = h('span', { className: 'snippet' });
            if (SAFE_SNIPPET.test(hit.snippet)) snippet.innerHTML = hit.snippet;
            else snippet.textContent = hit.content;
            return h('li', {}, h('button', {
              type: 'button', 'data-chat-id': hit.chat_id, 'data-message-id': hit.message_id,
              onclick: () => this.openChat(hit.chat_id),
            }, h('span', { className: 'name' }, this.title(this.chats.get(hit.chat_id), hit.chat_id)), snippet));
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

  private newChatForm(): HTMLElement {
    const members = h('input', { id: 'new-members', type: 'text', inputmode: 'numeric', required: true, placeholder: 'e.g. 2 or 2, 3', autocomplete: 'off' });
    const name = h('input', { id: 'new-name', type: 'text', placeholder: 'Group name (for a group)', maxlength: 200 });
    const error = h('p', { className: 'error', role: 'alert' });
    const form = h('form', {
      id: 'newchat',
      'aria-label': 'New chat',
      onsubmit: async (event: SubmitEvent) => {
        event.preventDefault();
        error.textContent = '';
        const ids = members.value.split(/[\s,]+/).filter(Boolean).map(Number);
        if (ids.length === 0 || ids.some((id) => !Number.isSafeInteger(id) || id < 1)) {
          error.textContent = 'User ids are whole numbers from 1, separated by commas.';
          return;
        }
        const group = ids.length > 1 || name.value.trim() !== '';
        try {
          const chat = await this.client.rest.createChat({ is_group: group, member_ids: ids, name: group ? name.value.trim() || null : null });
          await this.chats.load();
          members.value = name.value = '';
          this.openChat(chat.chat_id);
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
    return form;
  }

  // --- a conversation ----------------------------------------------------------------------

  private convo(chatId: number): Conversation {
    let conv = this.conversations.get(chatId);
    if (!conv) {
      conv = { chatId, byKey: new Map(), byClientId: new Map(), complete: false, loading: false, loaded: false };
      this.conversations.set(chatId, conv);
      // What the outbox still holds for this chat (a page reload while offline).
      for (const entry of this.client.outbox.waiting()) {
        if (entry.chat_id !== chatId) continue;
        const shown: Shown = { key: `c:${entry.frame.client_msg_id}`, client_msg_id: entry.frame.client_msg_id, sender_id: this.me, content: entry.frame.content ?? '', content_type: entry.frame.content_type ?? 'text', mark: 'pending', reactions: [] };
        conv.byKey.set(shown.key, shown);
        conv.byClientId.set(entry.frame.client_msg_id, shown);
      }
    }
    return conv;
  }

  private openChat(chatId: number): void {
    if (this.open !== chatId && history.state?.chat === undefined) history.pushState({ chat: chatId }, '');
    this.open = chatId;
    this.shell.dataset.view = 'conversation';
    const conv = this.convo(chatId);
    const messages = h('ol', { id: 'messages', 'aria-label': 'Messages', tabindex: 0, 'aria-live': 'polite', 'aria-relevant': 'additions' });
    messages.addEventListener('scroll', () => {
      if (messages.scrollTop < 80) void this.loadOlder(conv);
    });
    this.conversation.replaceChildren(
      h('header', {},
        h('button', { id: 'back', type: 'button', 'aria-label': 'Back to chats', onclick: () => history.back() }, '←'),
        h('div', {}, h('h2', { id: 'chat-title' }), h('div', { id: 'chat-presence', className: 'muted', 'data-testid': 'presence' })),
        h('span', { className: 'spacer' }),
        h('button', { id: 'mute', type: 'button', 'aria-pressed': 'false', onclick: () => void this.toggleMute(chatId) }, 'Mute')),
      h('p', { id: 'history-error', className: 'error', role: 'alert' }),
      messages,
      h('div', { id: 'typing', className: 'muted', 'aria-live': 'polite', 'data-testid': 'typing' }),
      h('div', { id: 'replying', hidden: true }),
      this.composer(chatId));
    if (this.replyTo?.chatId !== chatId) this.replyTo = undefined;
    this.drawReplying();
    this.drawHeader();
    this.drawTyping();
    for (const shown of this.sorted(conv)) messages.append(this.draw(shown));
    this.scrollToEnd();
    this.drawList(this.chats.list());
    void this.askPresence(chatId);
    if (!conv.loaded) void this.loadOlder(conv).then(() => this.readOpen());
    else this.readOpen();
    (document.getElementById('compose') as HTMLInputElement | null)?.focus();
  }

  private showList(): void {
    this.open = undefined;
    this.shell.dataset.view = 'list';
    this.drawList(this.chats.list());
  }

  private drawHeader(): void {
    const title = document.getElementById('chat-title');
    if (title && this.open !== undefined) title.textContent = this.title(this.chats.get(this.open), this.open);
    const mute = document.getElementById('mute');
    if (mute && this.open !== undefined) {
      const muted = isMuted(this.chats.get(this.open));
      mute.textContent = muted ? 'Unmute' : 'Mute';
      mute.setAttribute('aria-pressed', String(muted));
      mute.setAttribute('aria-label', muted ? 'Unmute this chat' : 'Mute this chat');
    }
    this.drawPresence();
  }

  private drawPresence(): void {
    const el = document.getElementById('chat-presence');
    if (!el || this.open === undefined) return;
    const entry = this.chats.get(this.open);
    const others = (entry?.member_ids ?? []).filter((id) => id !== this.me);
    if (!entry?.is_group && others.length === 1) {
      const status = this.presence.get(others[0]!);
      el.textContent = status ? status : '';
    } else {
      const online = others.filter((id) => this.presence.get(id) === 'online').length;
      el.textContent = `${others.length + 1} members, ${online + 1} online`;
    }
  }

  private async askPresence(chatId: number): Promise<void> {
    try {
      await this.client.presence(chatId);
    } catch {
      // Offline: live `presence` frames and the next connect fill it in.
    }
  }

  private sorted(conv: Conversation): Shown[] {
    // Stored messages by id; what waits for its ack after all of them, in send order.
    return [...conv.byKey.values()].sort((a, b) =>
      (a.message_id ?? Number.MAX_SAFE_INTEGER) - (b.message_id ?? Number.MAX_SAFE_INTEGER));
  }

  private messagesEl(conv: Conversation): HTMLElement | null {
    return this.open === conv.chatId ? document.getElementById('messages') : null;
  }

  private async loadOlder(conv: Conversation): Promise<void> {
    if (conv.loading || conv.complete) return;
    conv.loading = true;
    const list = this.messagesEl(conv);
    const error = document.getElementById('history-error');
    try {
      const page = await this.client.rest.messages(conv.chatId, { before: conv.oldest, limit: PAGE });
      if (error) error.textContent = '';
      conv.loaded = true;
      if (page.length < PAGE) conv.complete = true;
      const before = list ? list.scrollHeight - list.scrollTop : 0;
      const added = page.map((m) => this.store(conv, m)).filter((s): s is Shown => s !== undefined);
      if (page.length) conv.oldest = Math.min(conv.oldest ?? Infinity, page[page.length - 1]!.message_id);
      if (list && this.open === conv.chatId) {
        this.place(conv, added);
        list.scrollTop = list.scrollHeight - before;
      }
    } catch (e) {
      if (error) error.textContent = `History could not load: ${describe(e)}`;
    } finally {
      conv.loading = false;
    }
  }

  /** After a reconnect that could not resume: what came while away. */
  private async loadNewer(conv: Conversation): Promise<void> {
    const newest = Math.max(0, ...[...conv.byKey.values()].map((s) => s.message_id ?? 0));
    try {
      const page = await this.client.rest.messages(conv.chatId, { after: newest, limit: 100 });
      const added = page.map((m) => this.store(conv, m)).filter((s): s is Shown => s !== undefined);
      this.place(conv, added);
      this.scrollToEnd();
    } catch (e) {
      const error = document.getElementById('history-error');
      if (error) error.textContent = `History could not load: ${describe(e)}`;
    }
  }

  /** After a reconnect that could not resume: the newest page's edits, deletes and reactions
   * made while away, on the messages already on screen. */
  private async refreshNewest(conv: Conversation): Promise<void> {
    try {
      for (const m of await this.client.rest.messages(conv.chatId, { limit: PAGE })) {
        if (conv.byKey.get(`m:${m.message_id}`)?.editing) continue; // keep what is being typed
        this.change(conv.chatId, m.message_id, (shown) => {
          shown.content = m.content;
          shown.file_url = m.file_url;
          shown.edited = !!m.edited_at;
          shown.deleted = !!m.deleted;
          shown.reactions = m.reactions.map((r) => ({ ...r }));
        });
      }
    } catch {
      // The live frames keep what is on screen current from here on.
    }
  }

  /** Keeps a stored message once (by id); `undefined` when it was already there. */
  private store(conv: Conversation, m: MessageView | HistoryMessage): Shown | undefined {
    const key = `m:${m.message_id}`;
    const existing = conv.byKey.get(key);
    if (existing) return undefined;
    const pending = m.client_msg_id ? conv.byClientId.get(m.client_msg_id) : undefined;
    if (pending && m.sender_id === this.me) {
      this.settle(conv, pending, m.message_id, m.timestamp);
      return undefined;
    }
    const status = (m as HistoryMessage).status as Mark | undefined;
    const shown: Shown = {
      key, message_id: m.message_id, client_msg_id: m.client_msg_id, sender_id: m.sender_id,
      content: m.content, content_type: m.content_type, file_url: m.file_url, timestamp: m.timestamp,
      mark: m.sender_id === this.me ? (status ?? 'sent') : undefined,
      edited: !!m.edited_at, deleted: !!m.deleted,
      reactions: ((m as HistoryMessage).reactions ?? []).map((r) => ({ ...r })),
      reply_quote: m.reply_quote ?? null, forwarded: !!m.forwarded_from,
    };
    conv.byKey.set(key, shown);
    if (m.client_msg_id) conv.byClientId.set(m.client_msg_id, shown);
    return shown;
  }

  /** Puts drawn messages where their id says, in an open conversation. */
  private place(conv: Conversation, added: Shown[]): void {
    const list = this.messagesEl(conv);
    if (!list || added.length === 0) return;
    const order = this.sorted(conv);
    for (const shown of added) {
      const el = this.draw(shown);
      const next = order[order.indexOf(shown) + 1];
      if (next?.el && next.el.parentNode === list) list.insertBefore(el, next.el);
      else list.append(el);
    }
  }

  private settle(conv: Conversation, shown: Shown, messageId: number, timestamp: string): void {
    if (shown.message_id !== undefined) return;
    conv.byKey.delete(shown.key);
    shown.key = `m:${messageId}`;
    shown.message_id = messageId;
    shown.timestamp = timestamp;
    conv.byKey.set(shown.key, shown);
    this.raise(shown, 'sent');
  }

  private raise(shown: Shown, mark: Mark): void {
    if (shown.mark !== undefined && RANK[mark] <= RANK[shown.mark]) return;
    shown.mark = mark;
    this.redraw(shown);
  }

  private pendingAnywhere(clientMsgId: string): Shown | undefined {
    for (const conv of this.conversations.values()) {
      const shown = conv.byClientId.get(clientMsgId);
      if (shown) return shown;
    }
    return undefined;
  }

  private incoming(m: FrameOf<'new_message'>): void {
    this.clearTyper(m.chat_id, m.sender_id);
    const conv = this.conversations.get(m.chat_id);
    if (!conv) return;
    const shown = this.store(conv, m);
    if (!shown) return;
    const list = this.messagesEl(conv);
    const atEnd = list ? list.scrollHeight - list.scrollTop - list.clientHeight < 60 : false;
    this.place(conv, [shown]);
    if (atEnd || m.sender_id === this.me) this.scrollToEnd();
    this.readOpen();
  }

  /** The open chat is read up to its newest message while the page is visible. */
  private readOpen(): void {
    if (this.open === undefined || document.visibilityState === 'hidden') return;
    this.chats.read(this.open);
  }

  private scrollToEnd(): void {
    const list = document.getElementById('messages');
    if (list) list.scrollTop = list.scrollHeight;
  }

  private draw(shown: Shown): HTMLElement {
    const mine = shown.sender_id === this.me;
    const time = shown.timestamp ? new Date(shown.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    const media = shown.file_url && (shown.content_type === 'audio' || shown.content_type === 'video')
      ? h(shown.content_type as 'audio' | 'video', { controls: true, preload: 'metadata', src: shown.file_url, 'aria-label': shown.content_type === 'audio' ? 'Voice note' : 'Video' })
      : shown.file_url ? h('a', { href: shown.file_url, target: '_blank', rel: 'noopener' }, 'Open file') : null;
    const mark = shown.mark ? MARK_TEXT[shown.mark] : undefined;
    const el = h('li', {
      className: `msg${mine ? ' mine' : ''}`,
      'data-message-id': shown.message_id,
      'data-client-msg-id': shown.client_msg_id,
    },
      !mine && this.chats.get(this.open ?? -1)?.is_group ? h('div', { className: 'who' }, `User ${shown.sender_id}`) : null,
      shown.forwarded && !shown.deleted ? h('div', { className: 'forwarded muted' }, 'Forwarded') : null,
      shown.reply_quote && !shown.deleted ? quote(shown.reply_quote) : null,
      shown.deleted
        ? h('div', { className: 'tombstone', 'data-testid': 'tombstone' }, 'message deleted')
        : shown.editing ? this.editor(shown)
        : shown.content ? h('div', { className: 'text' }, shown.content) : null,
      shown.deleted ? null : media,
      shown.reactions.length ? h('div', { className: 'reactions', role: 'group', 'aria-label': 'Reactions' },
        ...shown.reactions.map((r) => h('button', {
          type: 'button', className: 'reaction', 'aria-pressed': String(r.me), 'data-emoji': r.emoji,
          'aria-label': `${r.emoji} ${r.count}${r.me ? ', yours: remove' : ''}`,
          onclick: () => this.toggleReaction(shown, r.emoji),
        }, `${r.emoji} ${r.count}`))) : null,
      shown.message_id !== undefined && !shown.deleted && !shown.editing ? this.actions(shown, mine) : null,
      h('div', { className: 'meta' },
        shown.edited && !shown.deleted ? h('span', { className: 'edited', 'data-testid': 'edited' }, 'edited') : null,
        time ? h('time', { datetime: shown.timestamp }, time) : null,
        mark && shown.mark ? h('span', { className: 'mark', 'data-status': shown.mark, title: mark[1], 'aria-label': mark[1] }, mark[0]) : null),
      shown.error ? h('div', { className: 'error', role: 'alert' }, `Not sent: ${shown.error}`) : null);
    shown.el = el;
    return el;
  }

  private redraw(shown: Shown): void {
    const old = shown.el;
    if (!old?.parentNode) return;
    old.replaceWith(this.draw(shown));
  }

  private composer(chatId: number): HTMLElement {
    const input = h('input', { id: 'compose', type: 'text', autocomplete: 'off', placeholder: 'Message', maxlength: 10000, 'aria-label': 'Message' });
    const error = h('p', { className: 'error', role: 'alert', id: 'composer-error' });
    const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Upload progress' });
    const file = h('input', {
      id: 'attach', type: 'file', accept: 'audio/*,video/*', className: 'visually-hidden',
      onchange: () => {
        const picked = file.files?.[0];
        file.value = '';
        if (picked) void this.upload(chatId, picked, progress, error);
      },
    });
    const form = h('form', {
      id: 'composer',
      'aria-label': 'Send a message',
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        error.textContent = '';
        try {
          this.send(chatId, { content: text }, this.replyTo?.chatId === chatId ? this.replyTo : undefined);
          this.replyTo = undefined;
          this.drawReplying();
          input.value = '';
          this.client.stopTyping(chatId);
        } catch (e) {
          error.textContent = describe(e);
        }
      },
    },
      input,
      h('label', { for: 'attach', className: 'file' }, h('span', { role: 'button', tabindex: 0, className: 'attach', 'aria-label': 'Attach a voice note or video', title: 'Attach a voice note or video',
        onkeydown: (e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } },
      }, 'Attach')),
      file,
      this.recorder(chatId, progress, error),
      h('button', { type: 'submit', className: 'primary' }, 'Send'),
      progress,
      error);
    input.addEventListener('input', () => {
      if (input.value) this.client.typing(chatId);
      else this.client.stopTyping(chatId);
    });
    return form;
  }

  /** A "Record" button where the browser can record (MediaRecorder): press to start, again
   * to stop and send the voice note. */
  private recorder(chatId: number, progress: HTMLProgressElement, error: HTMLElement): HTMLElement | null {
    if (typeof MediaRecorder === 'undefined' || !navigator.mediaDevices?.getUserMedia) return null;
    let recording: { recorder: MediaRecorder; stream: MediaStream; timer: ReturnType<typeof setInterval> } | undefined;
    const elapsed = h('span', { className: 'muted', 'data-testid': 'recording', 'aria-live': 'off' });
    const button: HTMLButtonElement = h('button', {
      type: 'button', 'aria-pressed': 'false', 'aria-label': 'Record a voice note',
      onclick: async () => {
        if (recording) {
          recording.recorder.stop();
          return;
        }
        error.textContent = '';
        try {
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
          const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'].find((t) => MediaRecorder.isTypeSupported(t));
          const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
          const chunks: Blob[] = [];
          const started = Date.now();
          recorder.ondataavailable = (e) => chunks.push(e.data);
          recorder.onstop = () => {
            stream.getTracks().forEach((t) => t.stop());
            clearInterval(recording?.timer);
            recording = undefined;
            button.textContent = 'Record';
            button.setAttribute('aria-pressed', 'false');
            button.setAttribute('aria-label', 'Record a voice note');
            elapsed.textContent = '';
            const mime = recorder.mimeType || 'audio/webm';
            const note = new File(chunks, `voice-note.${mime.includes('ogg') ? 'ogg' : 'webm'}`, { type: mime });
            if (note.size > 0) void this.upload(chatId, note, progress, error);
          };
          recorder.start(250);
          const timer = setInterval(() => {
            const s = Math.floor((Date.now() - started) / 1000);
            elapsed.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
          }, 250);
          recording = { recorder, stream, timer };
          button.textContent = 'Stop';
          button.setAttribute('aria-pressed', 'true');
          button.setAttribute('aria-label', 'Stop recording and send');
        } catch (e) {
          error.textContent = `Recording failed: ${describe(e)}`;
        }
      },
    }, 'Record');
    return h('span', {}, button, ' ', elapsed);
  }

  private send(chatId: number, body: { content: string; file_id?: number | string; content_type?: string; file_url?: string }, reply?: { messageId: number; sender_id: number; text: string }): void {
    const conv = this.convo(chatId);
    const pending = this.client.send({ chat_id: chatId, ...body, replyTo: reply?.messageId } as Parameters<Client['send']>[0]);
    const shown: Shown = { key: `c:${pending.clientMsgId}`, client_msg_id: pending.clientMsgId, sender_id: this.me, content: body.content, content_type: body.content_type ?? 'text', file_url: body.file_url, mark: 'pending', reactions: [], reply_quote: reply ? { sender_id: reply.sender_id, text: reply.text } : null };
    conv.byKey.set(shown.key, shown);
    conv.byClientId.set(pending.clientMsgId, shown);
    this.place(conv, [shown]);
    this.scrollToEnd();
  }

  private async upload(chatId: number, picked: File, progress: HTMLProgressElement, error: HTMLElement): Promise<void> {
    error.textContent = '';
    progress.hidden = false;
    progress.value = 0;
    try {
      const uploaded = await this.client.rest.upload(picked, {
        onProgress: ({ loaded, total }) => (progress.value = total ? loaded / total : 0),
      });
      this.send(chatId, { content: '', file_id: uploaded.file_id, content_type: uploaded.kind, file_url: uploaded.file_url });
    } catch (e) {
      error.textContent = `Upload failed: ${describe(e)}`;
    } finally {
      progress.hidden = true;
    }
  }

  // --- changes to messages ----------------------------------------------------------------

  /** Applies a change frame to a message on screen (a chat not opened yet loads it from history). */
  private change(chatId: number, messageId: number, apply: (shown: Shown) => void): void {
    const shown = this.conversations.get(chatId)?.byKey.get(`m:${messageId}`);
    if (!shown) return;
    apply(shown);
    this.redraw(shown);
  }

  /** Reply, react, and on my own message edit and delete: buttons, reachable by Tab. */
  private actions(shown: Shown, mine: boolean): HTMLElement {
    const id = shown.message_id!;
    return h('div', { className: 'actions', role: 'group', 'aria-label': 'Message actions' },
      h('button', { type: 'button', 'aria-label': 'Reply', onclick: () => this.startReply(shown) }, 'Reply'),
      ...EMOJI.map((emoji) => h('button', {
        type: 'button', className: 'react', 'data-emoji': emoji, 'aria-label': `React with ${emoji}`,
        'aria-pressed': String(!!shown.reactions.find((r) => r.emoji === emoji)?.me),
        onclick: () => this.toggleReaction(shown, emoji),
      }, emoji)),
      mine ? h('button', { type: 'button', 'aria-label': 'Edit message', onclick: () => { shown.editing = true; this.redraw(shown); shown.el?.querySelector('input')?.focus(); } }, 'Edit') : null,
      mine ? h('button', { type: 'button', 'aria-label': 'Delete message', onclick: () => void this.attempt(shown, () => this.client.deleteMessage(this.chatOf(shown), id)) }, 'Delete') : null);
  }

  private editor(shown: Shown): HTMLElement {
    const input = h('input', { type: 'text', value: shown.content, maxlength: 10000, 'aria-label': 'Edit message text' });
    const cancel = () => { shown.editing = false; this.redraw(shown); };
    input.addEventListener('keydown', (e: KeyboardEvent) => { if (e.key === 'Escape') cancel(); });
    return h('form', {
      className: 'editor', 'aria-label': 'Edit message',
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text || text === shown.content) return cancel();
        shown.editing = false;
        this.redraw(shown);
        void this.attempt(shown, () => this.client.editMessage(this.chatOf(shown), shown.message_id!, text));
      },
    }, input, h('button', { type: 'submit', className: 'primary' }, 'Save'), h('button', { type: 'button', onclick: cancel }, 'Cancel'));
  }

  private toggleReaction(shown: Shown, emoji: string): void {
    const chatId = this.chatOf(shown);
    const mine = shown.reactions.find((r) => r.emoji === emoji)?.me;
    void this.attempt(shown, () => mine
      ? this.client.unreact(chatId, shown.message_id!, emoji)
      : this.client.react(chatId, shown.message_id!, emoji));
  }

  /** Runs a change; its frame redraws the message, a refusal shows under it. */
  private async attempt(shown: Shown, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
      if (shown.error) {
        shown.error = undefined;
        this.redraw(shown);
      }
    } catch (e) {
      shown.error = describe(e);
      this.redraw(shown);
    }
  }

  private chatOf(shown: Shown): number {
    for (const conv of this.conversations.values()) if (conv.byKey.get(shown.key) === shown) return conv.chatId;
    return this.open!;
  }

  private startReply(shown: Shown): void {
    this.replyTo = { chatId: this.chatOf(shown), messageId: shown.message_id!, sender_id: shown.sender_id, text: shown.content.slice(0, 100) };
    this.drawReplying();
    (document.getElementById('compose') as HTMLInputElement | null)?.focus();
  }

  private drawReplying(): void {
    const el = document.getElementById('replying');
    if (!el) return;
    const reply = this.replyTo;
    el.hidden = !reply;
    el.replaceChildren(...(reply ? [
      h('span', { className: 'muted' }, 'Replying to'),
      quote(reply),
      h('button', { type: 'button', 'aria-label': 'Cancel the reply', onclick: () => { this.replyTo = undefined; this.drawReplying(); } }, '×'),
    ] : []));
  }

  private async toggleMute(chatId: number): Promise<void> {
    const error = document.getElementById('history-error');
    try {
      if (isMuted(this.chats.get(chatId))) await this.client.unmute(chatId);
      else await this.client.mute(chatId);
    } catch (e) {
      if (error) error.textContent = `Mute: ${describe(e)}`;
    }
  }

  // --- typing ------------------------------------------------------------------------------

  private typing(t: FrameOf<'typing'>): void {
    if (t.state === 'stopped') return this.clearTyper(t.chat_id, t.user_id);
    let chat = this.typers.get(t.chat_id);
    if (!chat) this.typers.set(t.chat_id, (chat = new Map()));
    clearTimeout(chat.get(t.user_id));
    chat.set(t.user_id, setTimeout(() => this.clearTyper(t.chat_id, t.user_id), t.expires_in_ms ?? 6_000));
    this.drawTyping();
  }

  private clearTyper(chatId: number, userId: number): void {
    const chat = this.typers.get(chatId);
    if (!chat?.has(userId)) return;
    clearTimeout(chat.get(userId));
    chat.delete(userId);
    this.drawTyping();
  }

  private drawTyping(): void {
    const el = document.getElementById('typing');
    if (!el || this.open === undefined) return;
    const who = [...(this.typers.get(this.open)?.keys() ?? [])].map((id) => `User ${id}`);
    el.textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
  }
}

/** A snippet that is nothing but escaped text and `<mark>`…`</mark>`: only such is drawn as HTML. */
const SAFE_SNIPPET = /^(?:[^<>&]|&(?:[a-z]+|#[0-9]+|#x[0-9a-f]+);|<mark>|<\/mark>)*$/i;

/** Whether the chat is muted now. */
function isMuted(entry: ChatListEntry | undefined): boolean {
  return !!entry?.muted_until && Date.parse(entry.muted_until) > Date.now();
}

/** The quote of an answered message. */
function quote(q: { sender_id: number; text: string }): HTMLElement {
  return h('blockquote', { className: 'quote', 'data-testid': 'quote' }, h('span', { className: 'who' }, `User ${q.sender_id}`), ' ', q.text);
}
