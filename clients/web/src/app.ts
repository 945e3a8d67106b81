/** The signed-in app: wires the views (top bar, search, chat list, conversation, composer) to
 * the SDK's client and its events; each chat's messages are a `Conversation` (model/); names
 * and avatars are the chat list's profiles, with `GET /users` for authors it has none of; the
 * open chat's pins, the unread mentions and my blocks are the chat list's too. */

import { ChatList, Client, roleIn, webStorageOutbox, type CreateChatRequest, type FrameOf } from '@jetchat/client';
import { describe, h } from './dom';
import type { Session } from './signin';
import { chatFace, chatRows, chatTitle, isMuted, presenceText, type Directory } from './model/chats';
import { ProfileRequests, userFace, type Face } from './model/people';
import { Conversation, type Quote, type Shown } from './model/conversation';
import { goneText, groupPermissions, memberRows } from './model/group';
import { blockNote, otherMember } from './model/blocks';
import { mentionIds, type Candidate } from './model/mentions';
import { canPin, pinnedIds, pinRows } from './model/pins';
import type { Mark } from './model/marks';
import { Typers, typingText } from './model/typing';
import { ChatListView } from './views/chat_list';
import { ComposerView } from './views/composer';
import { ConversationView } from './views/conversation';
import { GroupPanel, type GroupState } from './views/group_panel';
import { SearchView } from './views/search';
import { TopBar } from './views/topbar';

/** Messages a page of history asks for. */
const PAGE = 30;

/** What `send` takes besides the chat. */
type SendBody = { content: string; file_id?: number | string; content_type?: string; file_url?: string; mentions?: number[] };

export class App {
  private readonly client: Client;
  private readonly chats: ChatList;
  private readonly me: number;
  private readonly conversations = new Map<number, Conversation>();
  private readonly presence = new Map<number, string>();
  private readonly typers = new Typers(() => this.drawTyping());
  /** The profiles the chat list has (GET /chats/, chat_created, member_added, user_updated);
   * one it has not is asked for. */
  private readonly directory: Directory;
  /** `GET /users` for the authors the chat list has no profile of, in batches. */
  private readonly profileRequests: ProfileRequests;
  private open: number | undefined;
  /** The message the composer answers, shown above it. */
  private replyTo: (Quote & { chatId: number; messageId: number }) | undefined;
  /** Private chats where a message of mine was refused with `blocked` (the other member
   * blocks me: nothing else says so), until one of mine is stored there again. */
  private readonly refusedByBlock = new Set<number>();
  /** The open chat's pins and whether I may pin, as its messages were last drawn (`pinKey`). */
  private pinsDrawn = '';

  private readonly shell: HTMLElement;
  private readonly topBar: TopBar;
  private readonly chatList: ChatListView;
  private readonly conversation: ConversationView;
  private composer: ComposerView | undefined;
  private readonly groupPanel: GroupPanel;

  constructor(
    private readonly root: HTMLElement,
    session: Session,
  ) {
    this.me = session.userId;
    this.client = new Client({
      url: location.origin,
      token: session.token,
      outboxStorage: webStorageOutbox(`jetchat.outbox.${this.me}`),
      backoff: { initialMs: 250, maxMs: 5_000 },
    });
    this.chats = new ChatList(this.client, this.me);
    this.directory = (userId) => {
      const profile = this.chats.profile(userId);
      if (!profile) this.profileRequests.want(userId);
      return profile;
    };
    this.profileRequests = new ProfileRequests(
      (ids) => this.client.rest.users(ids),
      (profiles) => {
        if (this.chats.remember(profiles)) this.redrawMessages();
      },
    );
    this.topBar = new TopBar(this.me, () => session.signOut());
    const search = new SearchView({
      search: (q) => this.client.rest.search({ q, limit: 20 }),
      title: (chatId) => this.title(chatId),
      open: (chatId) => this.openChat(chatId),
    });
    this.chatList = new ChatListView({
      open: (chatId) => this.openChat(chatId),
      create: (request) => this.createChat(request),
    });
    // The group's changes go over the socket; their frames redraw the panel and the list.
    this.groupPanel = new GroupPanel({
      add: (chatId, userIds) => this.client.addMembers(chatId, userIds),
      remove: (chatId, userId) => this.client.removeMember(chatId, userId),
      setRole: (chatId, userId, role) => this.client.setMemberRole(chatId, userId, role),
      rename: (chatId, name) => this.client.updateChat(chatId, { name }),
      setMembersCanAdd: (chatId, on) => this.client.updateChat(chatId, { settings: { members_can_add: on } }),
      leave: (chatId) => this.client.leaveChat(chatId),
      delete: (chatId) => this.client.deleteChat(chatId),
    });
    this.conversation = new ConversationView(this.me, {
      loadOlder: (chatId) => void this.loadOlder(this.convo(chatId)),
      toggleMute: (chatId) => void this.toggleMute(chatId),
      toggleGroupPanel: (chatId) => this.toggleGroupPanel(chatId),
      isGroup: (chatId) => !!this.chats.get(chatId)?.is_group,
      toggleBlock: (chatId) => void this.toggleBlock(chatId),
      unpin: (chatId, messageId) => void this.client.unpinMessage(chatId, messageId)
        .catch((e) => this.conversation.showHistoryError(`Unpin: ${describe(e)}`)),
      togglePin: (shown) => {
        const pinned = pinnedIds(this.chats.get(shown.chatId)).has(shown.message_id!);
        void this.attempt(shown, () => pinned
          ? this.client.unpinMessage(shown.chatId, shown.message_id!)
          : this.client.pinMessage(shown.chatId, shown.message_id!));
      },
      pinState: (shown) => ({
        pinned: pinnedIds(this.chats.get(shown.chatId)).has(shown.message_id!),
        canPin: canPin(this.chats.get(shown.chatId), this.me),
      }),
      name: (userId) => this.name(userId),
      face: (userId) => this.face(userId),
      reply: (shown) => this.startReply(shown),
      toggleReaction: (shown, emoji) => this.toggleReaction(shown, emoji),
      startEditing: (shown) => {
        shown.editing = true;
        this.conversation.redraw(shown);
        this.conversation.element(shown)?.querySelector('input')?.focus();
      },
      cancelEditing: (shown) => {
        shown.editing = false;
        this.conversation.redraw(shown);
      },
      saveEdit: (shown, text) => {
        shown.editing = false;
        this.conversation.redraw(shown);
        void this.attempt(shown, () => this.client.editMessage(shown.chatId, shown.message_id!, text));
      },
      delete: (shown) => void this.attempt(shown, () => this.client.deleteMessage(shown.chatId, shown.message_id!)),
    });
    this.shell = h('div', { id: 'shell', 'data-view': 'list' },
      this.topBar.el,
      h('nav', { id: 'sidebar', 'aria-label': 'Chat list' }, search.el, this.chatList.error, this.chatList.list, this.chatList.newChat),
      this.conversation.el);
  }

  start(): void {
    this.root.replaceChildren(this.shell);
    const c = this.client;
    c.on('state', (state) => this.topBar.showState(state));
    c.on('stopped', ({ reason }) => {
      this.chatList.showError(reason === 'closed_by_app' ? '' : `Disconnected: ${reason.replace(/_/g, ' ')}. Sign in again.`);
    });
    c.on('token_error', ({ error }) => this.chatList.showError(`Sign-in: ${describe(error)}`));
    this.chats.on('change', () => this.drawList());
    c.on('connected', ({ resumed }) => {
      if (!resumed) void this.reload();
      if (this.open !== undefined) void this.askPresence(this.open);
    });
    c.on('resync_required', () => void this.reload());
    // The chat list took the new profile (and redraws itself); the open messages' authors too.
    c.on('user_updated', () => this.redrawMessages());
    c.on('new_message', (m) => this.incoming(m));
    c.on('message_ack', (ack) => {
      if (this.refusedByBlock.delete(ack.chat_id)) this.drawComposerNote();
      const conv = this.conversations.get(ack.chat_id);
      const shown = conv?.sent(ack.client_msg_id) ?? this.pendingAnywhere(ack.client_msg_id);
      if (!shown || !conv) return;
      if (conv.settle(shown, ack.message_id, ack.timestamp)) this.conversation.redraw(shown);
    });
    c.on('send_failed', ({ clientMsgId, error }) => {
      const shown = this.pendingAnywhere(clientMsgId);
      if (!shown) return;
      let detail = error.detail;
      if (error.code === 'blocked') {
        this.refusedByBlock.add(shown.chatId);
        this.drawComposerNote();
        const other = otherMember(this.chats.get(shown.chatId), this.me);
        if (other !== undefined) detail = `${this.name(other)} does not accept messages from you.`;
      }
      this.convo(shown.chatId).failed(shown, detail);
      this.conversation.redraw(shown);
    });
    c.on('status_update', (s) => {
      for (const shown of this.conversations.get(s.chat_id)?.receipt(s.message_id, s.status as Mark) ?? []) {
        this.conversation.redraw(shown);
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
    c.on('typing', (t) => {
      if (t.state === 'stopped') this.typers.stopped(t.chat_id, t.user_id);
      else this.typers.started(t.chat_id, t.user_id, t.expires_in_ms ?? undefined);
    });
    c.on('member_removed', (f) => {
      if (f.user_id !== this.me) return;
      const kind = f.removed_by === this.me ? 'left' : 'removed';
      const by = f.removed_by != null && f.removed_by !== this.me ? this.name(f.removed_by) : undefined;
      this.gone(f.chat_id, goneText(kind, by));
    });
    c.on('chat_deleted', (f) => {
      const by = f.deleted_by != null && f.deleted_by !== this.me ? this.name(f.deleted_by) : undefined;
      this.gone(f.chat_id, goneText('deleted', by));
    });
    c.on('message_edited', (f) => this.change(f.chat_id, f.message_id, (conv, shown) => conv.edited(shown, f.content)));
    c.on('message_deleted', (f) => this.change(f.chat_id, f.message_id, (conv, shown) => conv.deleted(shown)));
    c.on('reaction_added', (f) => this.change(f.chat_id, f.message_id, (conv, shown) => conv.reactionAdded(shown, f.emoji, f.user_id)));
    c.on('reaction_removed', (f) => this.change(f.chat_id, f.message_id, (conv, shown) => conv.reactionRemoved(shown, f.emoji, f.user_id)));
    window.addEventListener('popstate', () => this.showList());
    // Read marks wait while the page is hidden; coming back reads the open chat.
    document.addEventListener('visibilitychange', () => this.readOpen());
    c.connect().catch((error) => this.chatList.showError(describe(error)));
  }

  // --- the chat list -----------------------------------------------------------------------

  private async reload(): Promise<void> {
    try {
      await this.chats.load();
      this.chatList.showError('');
      if (this.open !== undefined) {
        if (this.chats.get(this.open)?.pinned === null) void this.loadPins(this.open);
        const conv = this.conversations.get(this.open);
        if (conv) await this.loadNewer(conv);
        if (conv) await this.refreshNewest(conv);
        this.readOpen();
      }
    } catch (error) {
      this.chatList.showError(`Chats could not load: ${describe(error)}`);
    }
  }

  private async createChat(request: CreateChatRequest): Promise<number> {
    const chat = await this.client.rest.createChat(request);
    await this.chats.load();
    return chat.chat_id;
  }

  private title(chatId: number): string {
    return chatTitle(this.chats.get(chatId), chatId, this.me, this.directory);
  }

  /** A user's name and avatar; one the chat list has no profile of is asked for (`GET
   * /users`, batched) and drawn again when it comes. */
  private face(userId: number): Face {
    return userFace(this.directory(userId), userId);
  }

  private name(userId: number): string {
    return this.face(userId).name;
  }

  private drawList(): void {
    this.chatList.draw(chatRows(this.chats.list(), this.me, this.open, this.directory));
    this.topBar.showName(this.name(this.me));
    if (this.open !== undefined) {
      this.drawHeader();
      this.drawPins();
      this.drawComposerNote();
    }
  }

  private showList(): void {
    this.open = undefined;
    this.shell.dataset.view = 'list';
    this.drawList();
  }

  // --- a conversation ----------------------------------------------------------------------

  private convo(chatId: number): Conversation {
    let conv = this.conversations.get(chatId);
    if (!conv) {
      conv = new Conversation(chatId, this.me);
      this.conversations.set(chatId, conv);
      // What the outbox still holds for this chat (a page reload while offline).
      for (const entry of this.client.outbox.waiting()) {
        if (entry.chat_id !== chatId) continue;
        conv.pending({ clientMsgId: entry.frame.client_msg_id, content: entry.frame.content ?? '', content_type: entry.frame.content_type ?? 'text' });
      }
    }
    return conv;
  }

  private openChat(chatId: number): void {
    if (this.open !== chatId && history.state?.chat === undefined) history.pushState({ chat: chatId }, '');
    if (this.open !== chatId) this.groupPanel.hide();
    this.open = chatId;
    this.shell.dataset.view = 'conversation';
    const conv = this.convo(chatId);
    this.composer = new ComposerView({
      send: (text) => {
        const mentions = mentionIds(text, this.mentionable(chatId));
        this.send(chatId, { content: text, ...(mentions.length ? { mentions } : {}) }, this.replyTo?.chatId === chatId ? this.replyTo : undefined);
        this.replyTo = undefined;
        this.composer?.showReply(undefined);
      },
      upload: async (file, onProgress) => {
        const uploaded = await this.client.rest.upload(file, {
          onProgress: ({ loaded, total }) => onProgress(total ? loaded / total : 0),
        });
        this.send(chatId, { content: '', file_id: uploaded.file_id, content_type: uploaded.kind, file_url: uploaded.file_url });
      },
      typing: (typing) => (typing ? this.client.typing(chatId) : this.client.stopTyping(chatId)),
      cancelReply: () => {
        this.replyTo = undefined;
        this.composer?.showReply(undefined);
      },
      name: (userId) => this.name(userId),
      members: () => this.mentionable(chatId),
    });
    this.pinsDrawn = this.pinKey(chatId);
    this.conversation.show(chatId, conv.sorted(), this.composer, this.groupPanel.el);
    if (this.replyTo?.chatId !== chatId) this.replyTo = undefined;
    this.composer.showReply(this.replyTo);
    this.drawHeader();
    this.drawTyping();
    this.conversation.scrollToEnd();
    this.drawList();
    void this.askPresence(chatId);
    void this.loadPins(chatId);
    if (!conv.loaded) void this.loadOlder(conv).then(() => this.readOpen());
    else this.readOpen();
    this.composer.focus();
  }

  private drawHeader(): void {
    if (this.open === undefined) return;
    const entry = this.chats.get(this.open);
    const other = otherMember(entry, this.me);
    this.conversation.showHeader(chatFace(entry, this.open, this.me, this.directory), isMuted(entry), !!entry?.is_group,
      other === undefined ? undefined : entry!.blocked);
    this.drawPresence();
    this.drawGroupPanel();
  }

  // --- pins, mentions, blocks --------------------------------------------------------------

  /** The chat's pins, asked for when it opens (the chat list keeps them current after). */
  private async loadPins(chatId: number): Promise<void> {
    try {
      await this.chats.loadPins(chatId);
    } catch (e) {
      if (this.open === chatId) this.conversation.showHistoryError(`Pinned messages could not load: ${describe(e)}`);
    }
  }

  /** The chat's pins and whether I may pin: its messages are drawn again when they change. */
  private pinKey(chatId: number): string {
    const entry = this.chats.get(chatId);
    return `${[...pinnedIds(entry)].join()}|${canPin(entry, this.me)}`;
  }

  /** The open chat's pins at its top; its messages drawn again when the pins or who may pin
   * changed (their Pin/Unpin button and mark). */
  private drawPins(): void {
    if (this.open === undefined) return;
    const entry = this.chats.get(this.open);
    const allowed = canPin(entry, this.me);
    this.conversation.showPins(pinRows(entry?.pinned ?? [], (userId) => this.name(userId)), allowed);
    const key = this.pinKey(this.open);
    if (key === this.pinsDrawn) return;
    this.pinsDrawn = key;
    this.redrawMessages();
  }

  /** What the open private chat's composer says of a block. */
  private drawComposerNote(): void {
    if (this.open === undefined || !this.composer) return;
    const entry = this.chats.get(this.open);
    const other = otherMember(entry, this.me);
    this.composer.showNote(other === undefined ? '' : blockNote(entry, this.name(other), this.refusedByBlock.has(this.open)));
  }

  /** The block button of a private chat: blocks the other member, or lifts the block. */
  private async toggleBlock(chatId: number): Promise<void> {
    const other = otherMember(this.chats.get(chatId), this.me);
    if (other === undefined) return;
    try {
      if (this.chats.isBlocked(other)) await this.client.unblockUser(other);
      else await this.client.blockUser(other);
    } catch (e) {
      this.conversation.showHistoryError(`Block: ${describe(e)}`);
    }
  }

  /** The chat's other members, by the names shown: what the composer's `@` offers, and what
   * a message's `mentions` are read from. */
  private mentionable(chatId: number): Candidate[] {
    return (this.chats.get(chatId)?.member_ids ?? [])
      .filter((userId) => userId !== this.me)
      .map((userId) => ({ userId, name: this.name(userId) }));
  }

  // --- a group's panel ---------------------------------------------------------------------

  private groupState(chatId: number): GroupState | undefined {
    const entry = this.chats.get(chatId);
    if (!entry?.is_group) return undefined;
    const myRole = roleIn(entry, this.me);
    const membersCanAdd = entry.settings.members_can_add ?? false;
    return {
      chatId,
      name: entry.name ?? '',
      myRole,
      membersCanAdd,
      permissions: groupPermissions(myRole, membersCanAdd),
      members: memberRows(entry, this.me, this.directory),
    };
  }

  private toggleGroupPanel(chatId: number): void {
    const state = this.groupState(chatId);
    if (this.groupPanel.open || !state) this.groupPanel.hide();
    else this.groupPanel.show(state);
    this.conversation.showGroupPanelOpen(this.groupPanel.open);
  }

  /** The open group's panel drawn again (a member, a role, its name or settings changed). */
  private drawGroupPanel(): void {
    if (this.groupPanel.open && this.open !== undefined) {
      const state = this.groupState(this.open);
      if (state) this.groupPanel.draw(state);
      else this.groupPanel.hide();
    }
    this.conversation.showGroupPanelOpen(this.groupPanel.open);
  }

  /** A chat went away (deleted, or I left or was removed): the chat list has dropped it; an
   * open conversation of it says why in its place. */
  private gone(chatId: number, text: string): void {
    this.conversations.delete(chatId);
    if (this.replyTo?.chatId === chatId) this.replyTo = undefined;
    if (this.open !== chatId) return;
    this.open = undefined;
    this.composer = undefined;
    this.groupPanel.hide();
    this.conversation.showGone(text);
    this.drawList();
  }

  private drawPresence(): void {
    if (this.open === undefined) return;
    this.conversation.showPresence(presenceText(this.chats.get(this.open), this.me, this.presence));
  }

  private drawTyping(): void {
    if (this.open === undefined) return;
    this.conversation.showTyping(typingText(this.typers.in(this.open), (userId) => this.name(userId)));
  }

  /** The open conversation's messages drawn again: their authors' names changed. */
  private redrawMessages(): void {
    if (this.open === undefined) return;
    const conv = this.conversations.get(this.open);
    if (conv) this.conversation.redrawAll(conv.sorted());
    this.drawTyping();
  }

  private async askPresence(chatId: number): Promise<void> {
    try {
      await this.client.presence(chatId);
    } catch {
      // Offline: live `presence` frames and the next connect fill it in.
    }
  }

  private async loadOlder(conv: Conversation): Promise<void> {
    if (conv.loading || conv.complete) return;
    conv.loading = true;
    try {
      const page = await this.client.rest.messages(conv.chatId, { before: conv.oldest, limit: PAGE });
      this.conversation.showHistoryError('');
      this.conversation.keepingScroll(conv.chatId, () => this.placeStored(conv, conv.older(page, PAGE)));
    } catch (e) {
      this.conversation.showHistoryError(`History could not load: ${describe(e)}`);
    } finally {
      conv.loading = false;
    }
  }

  /** After a reconnect that could not resume: what came while away. */
  private async loadNewer(conv: Conversation): Promise<void> {
    try {
      const page = await this.client.rest.messages(conv.chatId, { after: conv.newestId(), limit: 100 });
      this.placeStored(conv, conv.store(page));
      this.conversation.scrollToEnd();
    } catch (e) {
      this.conversation.showHistoryError(`History could not load: ${describe(e)}`);
    }
  }

  /** After a reconnect that could not resume: the newest page's edits, deletes and reactions
   * made while away, on the messages already on screen. */
  private async refreshNewest(conv: Conversation): Promise<void> {
    try {
      for (const m of await this.client.rest.messages(conv.chatId, { limit: PAGE })) {
        if (conv.message(m.message_id)?.editing) continue; // keep what is being typed
        this.change(conv.chatId, m.message_id, (c, shown) => c.refreshed(shown, m));
      }
    } catch {
      // The live frames keep what is on screen current from here on.
    }
  }

  /** Draws what storing messages added, and redraws my sends they settled. */
  private placeStored(conv: Conversation, stored: { added: Shown[]; settled: Shown[] }): void {
    for (const shown of stored.settled) this.conversation.redraw(shown);
    this.conversation.place(conv.chatId, conv.sorted(), stored.added);
  }

  private pendingAnywhere(clientMsgId: string): Shown | undefined {
    for (const conv of this.conversations.values()) {
      const shown = conv.sent(clientMsgId);
      if (shown) return shown;
    }
    return undefined;
  }

  private incoming(m: FrameOf<'new_message'>): void {
    this.typers.stopped(m.chat_id, m.sender_id);
    const conv = this.conversations.get(m.chat_id);
    if (!conv) return;
    const stored = conv.store([m]);
    for (const shown of stored.settled) this.conversation.redraw(shown);
    if (stored.added.length === 0) return;
    const atEnd = this.conversation.atEnd(m.chat_id);
    this.conversation.place(m.chat_id, conv.sorted(), stored.added);
    if (atEnd || m.sender_id === this.me) this.conversation.scrollToEnd();
    this.readOpen();
  }

  /** The open chat is read up to its newest message while the page is visible. */
  private readOpen(): void {
    if (this.open === undefined || document.visibilityState === 'hidden') return;
    this.chats.read(this.open);
  }

  private send(chatId: number, body: SendBody, reply?: Quote & { messageId: number }): void {
    const conv = this.convo(chatId);
    const pending = this.client.send({ chat_id: chatId, ...body, replyTo: reply?.messageId } as Parameters<Client['send']>[0]);
    const shown = conv.pending({
      clientMsgId: pending.clientMsgId, content: body.content, content_type: body.content_type, file_url: body.file_url,
      mentions: body.mentions,
      reply: reply ? { sender_id: reply.sender_id, text: reply.text } : undefined,
    });
    this.conversation.place(chatId, conv.sorted(), [shown]);
    this.conversation.scrollToEnd();
  }

  // --- changes to messages ----------------------------------------------------------------

  /** Applies a change frame to a message on screen (a chat not opened yet loads it from history). */
  private change(chatId: number, messageId: number, apply: (conv: Conversation, shown: Shown) => void): void {
    const conv = this.conversations.get(chatId);
    const shown = conv?.message(messageId);
    if (!conv || !shown) return;
    apply(conv, shown);
    this.conversation.redraw(shown);
  }

  private toggleReaction(shown: Shown, emoji: string): void {
    const mine = shown.reactions.find((r) => r.emoji === emoji)?.me;
    void this.attempt(shown, () => mine
      ? this.client.unreact(shown.chatId, shown.message_id!, emoji)
      : this.client.react(shown.chatId, shown.message_id!, emoji));
  }

  /** Runs a change; its frame redraws the message, a refusal shows under it. */
  private async attempt(shown: Shown, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
      if (shown.error) {
        shown.error = undefined;
        this.conversation.redraw(shown);
      }
    } catch (e) {
      shown.error = describe(e);
      this.conversation.redraw(shown);
    }
  }

  private startReply(shown: Shown): void {
    this.replyTo = { chatId: shown.chatId, messageId: shown.message_id!, sender_id: shown.sender_id, text: shown.content.slice(0, 100) };
    this.composer?.showReply(this.replyTo);
    this.composer?.focus();
  }

  private async toggleMute(chatId: number): Promise<void> {
    try {
      if (isMuted(this.chats.get(chatId))) await this.client.unmute(chatId);
      else await this.client.mute(chatId);
    } catch (e) {
      this.conversation.showHistoryError(`Mute: ${describe(e)}`);
    }
  }
}
