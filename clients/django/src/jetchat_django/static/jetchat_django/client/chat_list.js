/** A chat list for a UI: every chat with its unread count and newest message, kept current by
 * the client's events. Optional: an app can draw from the events itself.
 *
 * It knows a chat from `load()` (`GET /chats/`), the socket's `unread`, and `chat_created`,
 * `member_added`, new messages and my own as they are stored; `change` is emitted with `list()`
 * after each change. It keeps the members' names and avatars too (`profile(userId)`), from the
 * same sources and `user_updated`; the unread messages that mention me; the users I block
 * (`GET /users/me/blocks`, `block_changed`); and a chat's pinned messages once asked for
 * (`loadPins`: `GET /chats/{id}`, then `message_pinned`/`message_unpinned`). */
import { Emitter } from './emitter.js';
/** `userId`'s role in a group the list knows, `null` for a private chat. */
export function roleIn(entry, userId) {
    if (!entry.is_group)
        return null;
    if (entry.owner_id === userId)
        return 'owner';
    return entry.admin_ids.includes(userId) ? 'admin' : 'member';
}
/** Whether `next` is to replace `known` as a user's profile: the newer one wins (a profile
 * with no `updated_at` is the server's "User <id>" fallback, never newer than a real one). */
export function newerProfile(known, next) {
    if (!known)
        return true;
    if (!next.updated_at)
        return !known.updated_at;
    if (!known.updated_at)
        return true;
    return Date.parse(next.updated_at) >= Date.parse(known.updated_at);
}
/** The chat list's order: the newest message first (message ids grow with time), chats
 * without messages last, the newer chat (higher id) first among equals. */
export function newestFirst(a, b) {
    return (b.last_message_id ?? 0) - (a.last_message_id ?? 0) || b.chat_id - a.chat_id;
}
export class ChatList extends Emitter {
    client;
    userId;
    chats = new Map();
    profiles = new Map();
    offs = [];
    /** The users I block. */
    blocks = new Set();
    /** For each `GET /users/me/blocks` on its way, the `block_changed` heard meanwhile: newer
     * than its answer. */
    blocksHeard = new Set();
    /** The chats whose pins are being asked for; `again`: a pin frame came meanwhile, so the
     * answer may predate it. */
    pinLoads = new Map();
    /** Per chat, the newest message the socket's `unread` counted: a resumed socket's catch-up
     * brings those messages after it, already counted as unread. */
    counted = new Map();
    /** `userId`: the signed-in user, whose own messages do not count as unread. */
    constructor(client, userId) {
        super();
        this.client = client;
        this.userId = userId;
        this.offs.push(client.on('unread', (frame) => {
            for (const chat of frame.chats) {
                const entry = this.entry(chat.chat_id);
                entry.unread = chat.unread;
                entry.unread_mentions = Math.min(entry.unread_mentions, chat.unread);
                entry.last_message_id = chat.last_message_id ?? entry.last_message_id;
                if (chat.last_message_id != null)
                    this.counted.set(chat.chat_id, chat.last_message_id);
            }
            this.changed();
        }), client.on('chat_created', ({ chat, profiles }) => {
            this.remember(profiles ?? [], false);
            this.put(chat);
        }), client.on('member_added', (frame) => {
            this.remember(frame.profiles ?? [], false);
            if (frame.chat)
                this.put(frame.chat);
            else if (!this.entry(frame.chat_id).member_ids.includes(frame.user_id)) {
                this.entry(frame.chat_id).member_ids.push(frame.user_id);
                this.changed();
            }
        }), client.on('member_removed', ({ chat_id, user_id }) => {
            if (user_id === this.userId)
                this.chats.delete(chat_id);
            else {
                const entry = this.entry(chat_id);
                entry.member_ids = entry.member_ids.filter((id) => id !== user_id);
            }
            this.changed();
        }), client.on('chat_renamed', ({ chat_id, name }) => {
            this.entry(chat_id).name = name;
            this.changed();
        }), client.on('chat_updated', ({ chat_id, name, settings }) => {
            const entry = this.entry(chat_id);
            entry.name = name ?? null;
            entry.settings = { ...settings };
            this.changed();
        }), client.on('member_role_changed', ({ chat_id, user_id, role }) => {
            const entry = this.entry(chat_id);
            entry.admin_ids = entry.admin_ids.filter((id) => id !== user_id);
            if (role === 'owner')
                entry.owner_id = user_id;
            else if (entry.owner_id === user_id)
                entry.owner_id = null;
            if (role === 'admin')
                entry.admin_ids = [...entry.admin_ids, user_id].sort((a, b) => a - b);
            this.changed();
        }), client.on('chat_deleted', ({ chat_id }) => {
            this.chats.delete(chat_id);
            this.changed();
        }), client.on('chat_muted', ({ chat_id, muted_until, mentions_muted }) => {
            const entry = this.entry(chat_id);
            entry.muted_until = muted_until ?? null;
            entry.mentions_muted = muted_until != null && mentions_muted;
            this.changed();
        }), client.on('message_edited', ({ chat_id, message_id, content, edited_at }) => {
            this.loadingPins(chat_id);
            const entry = this.chats.get(chat_id);
            const shown = [entry?.last_message, ...(entry?.pinned ?? [])].filter((m) => m?.message_id === message_id);
            for (const m of shown) {
                m.content = content;
                m.edited_at = edited_at;
            }
            if (shown.length)
                this.changed();
        }), client.on('message_deleted', ({ chat_id, message_id }) => {
            this.loadingPins(chat_id);
            const entry = this.chats.get(chat_id);
            if (!entry)
                return;
            const last = entry.last_message;
            const pinned = entry.pinned?.some((m) => m.message_id === message_id);
            // A deleted message leaves the pins (GET /chats/{id} lists it no more).
            if (pinned)
                entry.pinned = entry.pinned.filter((m) => m.message_id !== message_id);
            if (last?.message_id === message_id) {
                last.content = '';
                last.deleted = true;
                last.file_url = null;
            }
            else if (!pinned)
                return;
            this.changed();
        }), client.on('block_changed', ({ user_id, blocked }) => {
            this.block(user_id, blocked);
            for (const heard of this.blocksHeard)
                heard.set(user_id, blocked);
            this.changed();
        }), 
        // The frame names the message only: a chat whose pins are shown asks for them again.
        client.on('message_pinned', ({ chat_id, message_id }) => {
            const loading = this.loadingPins(chat_id);
            const pinned = this.chats.get(chat_id)?.pinned;
            if (loading || !pinned || pinned.some((m) => m.message_id === message_id))
                return;
            this.loadPins(chat_id).catch(() => undefined); // kept as it was; the next load() asks again
        }), client.on('message_unpinned', ({ chat_id, message_id }) => {
            this.loadingPins(chat_id);
            const entry = this.chats.get(chat_id);
            const pinned = entry?.pinned;
            if (!entry || !pinned?.some((m) => m.message_id === message_id))
                return;
            entry.pinned = pinned.filter((m) => m.message_id !== message_id);
            this.changed();
        }), client.on('new_message', (message) => this.message(message)), client.on('message_ack', (ack) => {
            const entry = this.entry(ack.chat_id);
            if ((entry.last_message_id ?? 0) < ack.message_id)
                entry.last_message_id = ack.message_id;
            this.changed();
        }), 
        // My message is the chat's newest too: the server sends no `new_message` to the socket
        // that sent it, so the line would keep its older message ("No messages yet" in a new chat).
        client.on('message_sent', ({ ack, frame }) => this.sent(ack, frame)), client.on('user_updated', ({ user }) => this.remember([user])));
    }
    /** Loads every chat over REST (`GET /chats/`): names, members, unread counts (mentions
     * too), newest messages and mutes, kept with what the list knew already, and the users I
     * block (`GET /users/me/blocks`); then emits `change`. A chat the list knew before the
     * request and the answer no longer has (left, removed or deleted while no frame could say
     * so) is dropped; the pins of chats whose pins were loaded are asked for again. Resolves
     * with `list()`. Call it once connected and after `resync_required`. */
    async load() {
        const before = new Set(this.chats.keys());
        const heard = new Map();
        this.blocksHeard.add(heard);
        const [chats, blocked] = await Promise.all([this.client.rest.chats(), this.client.rest.blocks()]).finally(() => this.blocksHeard.delete(heard));
        this.blocks.clear();
        for (const { user_id } of blocked)
            this.blocks.add(user_id);
        for (const [userId, isBlocked] of heard)
            this.block(userId, isBlocked);
        const answered = new Set(chats.map((chat) => chat.chat_id));
        // Only what was known before the request: a chat a frame brought meanwhile may be newer
        // than the answer.
        for (const chatId of before) {
            if (!answered.has(chatId))
                this.chats.delete(chatId);
        }
        for (const chat of chats) {
            this.remember(chat.profiles ?? [], false);
            this.put(chat, false);
            const entry = this.entry(chat.chat_id);
            entry.unread = chat.unread_count;
            entry.unread_mentions = chat.unread_mentions ?? 0;
            entry.last_message = chat.last_message ?? null;
            entry.muted_until = chat.muted_until ?? null;
            entry.mentions_muted = chat.mentions_muted ?? false;
            entry.last_message_id = chat.last_message?.message_id ?? entry.last_message_id;
        }
        this.changed();
        const shownPins = this.list().filter((entry) => entry.pinned !== null);
        // A pin that failed to load stays as it was; the next load() asks again.
        await Promise.all(shownPins.map((entry) => this.loadPins(entry.chat_id).catch(() => undefined)));
        return this.list();
    }
    /** The chat's pinned messages, newest pin first (`GET /chats/{id}`, whose members, roles
     * and settings it keeps too), kept in its entry's `pinned` from then on: an unpin, an edit
     * or a delete changes them in place; a `message_pinned` asks again, its frame naming the
     * message only. Resolves with `pinned`; a call while one is on its way shares it. */
    loadPins(chatId) {
        const loading = this.pinLoads.get(chatId);
        if (loading)
            return loading.promise;
        const state = { promise: Promise.resolve([]), again: false };
        const known = this.chats.has(chatId);
        state.promise = (async () => {
            try {
                for (let attempt = 0;; attempt++) {
                    state.again = false;
                    const detail = await this.client.rest.chat(chatId);
                    if (state.again && attempt < 3)
                        continue;
                    // Left, removed or deleted meanwhile: not brought back.
                    if (known && !this.chats.has(chatId))
                        return [];
                    this.put(detail, false);
                    const entry = this.entry(chatId);
                    entry.pinned = detail.pinned.map((m) => ({ ...m }));
                    this.changed();
                    return entry.pinned;
                }
            }
            finally {
                this.pinLoads.delete(chatId);
            }
        })();
        this.pinLoads.set(chatId, state);
        return state.promise;
    }
    /** Whether I block the user (`GET /users/me/blocks` in `load()`, then `block_changed`). */
    isBlocked(userId) {
        return this.blocks.has(userId);
    }
    /** The users I block, ascending. */
    blockedUsers() {
        return [...this.blocks].sort((a, b) => a - b);
    }
    /** Every chat known, the one with the newest message first (by `last_message_id`; chats
     * without messages last, the newest chat first among equals). A new array each call; its
     * entries are the list's own, updated in place as events come: read them, do not change
     * them. */
    list() {
        return [...this.chats.values()].sort(newestFirst);
    }
    /** The chat's entry (the list's own, as in `list()`), `undefined` for a chat the list does
     * not know (before `load()`, or one I left). */
    get(chatId) {
        return this.chats.get(chatId);
    }
    /** A user's name and avatar as the list last heard them (`GET /chats/`, `chat_created`,
     * `member_added`, `user_updated`, or `remember`), `undefined` for someone it never heard of
     * (a member of a group of over 100: ask `client.rest.users`). */
    profile(userId) {
        return this.profiles.get(userId);
    }
    /** Keeps profiles learnt elsewhere (`client.rest.users`), the newer winning; emits `change`
     * when one changed. Whether one did. */
    remember(profiles, notify = true) {
        let changed = false;
        for (const profile of profiles) {
            if (!newerProfile(this.profiles.get(profile.user_id), profile))
                continue;
            const known = this.profiles.get(profile.user_id);
            this.profiles.set(profile.user_id, { ...profile });
            changed ||= known?.display_name !== profile.display_name || (known?.avatar_url ?? null) !== (profile.avatar_url ?? null);
        }
        if (changed && notify)
            this.changed();
        return changed;
    }
    /** Marks the chat read up to its newest message (tells the server) and clears its counts
     * (its mentions too). */
    read(chatId) {
        const entry = this.chats.get(chatId);
        if (!entry)
            return;
        if (entry.last_message_id !== null && entry.unread > 0) {
            this.client.markRead(entry.last_message_id, chatId);
        }
        entry.unread = 0;
        entry.unread_mentions = 0;
        this.changed();
    }
    /** Stops following the client's events. */
    dispose() {
        for (const off of this.offs.splice(0))
            off();
    }
    /** A message stored in one of my chats: the chat's newest when it is, counted unread
     * (and as a mention of me) unless the socket's `unread` counted it already — a resumed
     * socket's catch-up comes after its `unread`, which named the newest message already. */
    message(message) {
        const entry = this.entry(message.chat_id);
        // Older than the message held: a repeat (or an old one), nothing to count.
        if (message.message_id > (entry.last_message?.message_id ?? 0)) {
            if (message.message_id >= (entry.last_message_id ?? 0)) {
                entry.last_message_id = message.message_id;
                entry.last_message = message;
            }
            if (message.sender_id !== this.userId) {
                if (message.message_id > (this.counted.get(message.chat_id) ?? 0))
                    entry.unread += 1;
                // Never more than the unread: some the catch-up brings may have been read elsewhere.
                if (message.mentions?.includes(this.userId))
                    entry.unread_mentions = Math.min(entry.unread_mentions + 1, entry.unread);
            }
        }
        this.changed();
    }
    sent(ack, frame) {
        const entry = this.entry(ack.chat_id);
        if ((entry.last_message_id ?? 0) > ack.message_id)
            return;
        entry.last_message_id = ack.message_id;
        entry.last_message = {
            message_id: ack.message_id,
            chat_id: ack.chat_id,
            sender_id: this.userId,
            receiver_id: frame.receiver_id ?? null,
            client_msg_id: ack.client_msg_id,
            content: frame.content ?? '',
            content_type: frame.content_type ?? 'text',
            file_url: frame.file_url ?? null,
            reply_to_message_id: frame.reply_to_message_id ?? null,
            timestamp: ack.timestamp,
        };
        this.changed();
    }
    put(chat, notify = true) {
        const entry = this.entry(chat.chat_id);
        entry.name = chat.name ?? null;
        entry.is_group = chat.is_group;
        entry.member_ids = [...chat.member_ids];
        entry.owner_id = chat.owner_id ?? null;
        entry.admin_ids = [...(chat.admin_ids ?? [])];
        entry.settings = { members_can_add: chat.settings?.members_can_add ?? false };
        if (notify)
            this.changed();
    }
    entry(chatId) {
        let entry = this.chats.get(chatId);
        if (!entry) {
            entry = {
                chat_id: chatId,
                name: null,
                is_group: false,
                member_ids: [],
                unread: 0,
                unread_mentions: 0,
                last_message_id: null,
                last_message: null,
                muted_until: null,
                mentions_muted: false,
                blocked: false,
                pinned: null,
                owner_id: null,
                admin_ids: [],
                settings: { members_can_add: false },
            };
            this.chats.set(chatId, entry);
        }
        return entry;
    }
    /** Whether the chat's pins are being asked for; if so, the answer may predate the frame
     * just heard: it is asked for once more. */
    loadingPins(chatId) {
        const loading = this.pinLoads.get(chatId);
        if (loading)
            loading.again = true;
        return loading !== undefined;
    }
    block(userId, blocked) {
        if (blocked)
            this.blocks.add(userId);
        else
            this.blocks.delete(userId);
    }
    changed() {
        for (const entry of this.chats.values()) {
            entry.blocked = !entry.is_group && entry.member_ids.some((id) => id !== this.userId && this.blocks.has(id));
        }
        this.emit('change', this.list());
    }
}
//# sourceMappingURL=chat_list.js.map