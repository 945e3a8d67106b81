/** A chat list for a UI: every chat with its unread count and newest message, kept current by
 * the client's events. Optional: an app can draw from the events itself.
 *
 * It knows a chat from `load()` (`GET /chats/`), the socket's `unread`, and `chat_created`,
 * `member_added`, new messages and my own as they are stored; `change` is emitted with `list()`
 * after each change. It keeps the members' names and avatars too (`profile(userId)`), from the
 * same sources and `user_updated`. */
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
    /** `userId`: the signed-in user, whose own messages do not count as unread. */
    constructor(client, userId) {
        super();
        this.client = client;
        this.userId = userId;
        this.offs.push(client.on('unread', (frame) => {
            for (const chat of frame.chats) {
                const entry = this.entry(chat.chat_id);
                entry.unread = chat.unread;
                entry.last_message_id = chat.last_message_id ?? entry.last_message_id;
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
        }), client.on('chat_muted', ({ chat_id, muted_until }) => {
            this.entry(chat_id).muted_until = muted_until ?? null;
            this.changed();
        }), client.on('message_edited', ({ chat_id, message_id, content, edited_at }) => {
            const last = this.chats.get(chat_id)?.last_message;
            if (last?.message_id !== message_id)
                return;
            last.content = content;
            last.edited_at = edited_at;
            this.changed();
        }), client.on('message_deleted', ({ chat_id, message_id }) => {
            const last = this.chats.get(chat_id)?.last_message;
            if (last?.message_id !== message_id)
                return;
            last.content = '';
            last.deleted = true;
            last.file_url = null;
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
    /** Loads every chat over REST (`GET /chats/`): names, members, unread counts, newest
     * messages and mutes, kept with what the list knew already; then emits `change`. A chat the
     * list knew before the request and the answer no longer has (left, removed or deleted while
     * no frame could say so) is dropped. Resolves with `list()`. Call it once connected and
     * after `resync_required`. */
    async load() {
        const before = new Set(this.chats.keys());
        const chats = await this.client.rest.chats();
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
            entry.last_message = chat.last_message ?? null;
            entry.muted_until = chat.muted_until ?? null;
            entry.last_message_id = chat.last_message?.message_id ?? entry.last_message_id;
        }
        this.changed();
        return this.list();
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
    /** Marks the chat read up to its newest message (tells the server) and clears its count. */
    read(chatId) {
        const entry = this.chats.get(chatId);
        if (!entry)
            return;
        if (entry.last_message_id !== null && entry.unread > 0) {
            this.client.markRead(entry.last_message_id, chatId);
        }
        entry.unread = 0;
        this.changed();
    }
    /** Stops following the client's events. */
    dispose() {
        for (const off of this.offs.splice(0))
            off();
    }
    message(message) {
        const entry = this.entry(message.chat_id);
        if ((entry.last_message_id ?? 0) < message.message_id) {
            entry.last_message_id = message.message_id;
            entry.last_message = message;
            if (message.sender_id !== this.userId)
                entry.unread += 1;
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
                last_message_id: null,
                last_message: null,
                muted_until: null,
                owner_id: null,
                admin_ids: [],
                settings: { members_can_add: false },
            };
            this.chats.set(chatId, entry);
        }
        return entry;
    }
    changed() {
        this.emit('change', this.list());
    }
}
//# sourceMappingURL=chat_list.js.map