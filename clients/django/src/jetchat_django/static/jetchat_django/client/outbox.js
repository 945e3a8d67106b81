/** The outbox: every send stays here, under its `client_msg_id`, until its `message_ack`; on
 * each new socket (and when an open one stays silent about it) it is sent again with the same
 * id, which the server stores once. So a flaky network neither loses nor doubles a message. */
/** The default: in memory, for as long as the client lives. */
export class MemoryOutboxStorage {
    entries = [];
    load() {
        return structuredClone(this.entries);
    }
    save(entries) {
        this.entries = structuredClone(entries);
    }
}
/** A storage on a Web Storage area (`localStorage` in a browser) under `key`. */
export function webStorageOutbox(key, area = globalThis.localStorage) {
    return {
        load: () => {
            try {
                const entries = JSON.parse(area.getItem(key) ?? '[]');
                return Array.isArray(entries) ? entries : [];
            }
            catch {
                return [];
            }
        },
        save: (entries) => area.setItem(key, JSON.stringify(entries)),
    };
}
/** A new idempotency key (UUIDs fit the server's 1–64 characters). */
export function newClientMsgId() {
    return globalThis.crypto.randomUUID();
}
export class Outbox {
    storage;
    entries = new Map();
    saving = Promise.resolve();
    constructor(storage = new MemoryOutboxStorage()) {
        this.storage = storage;
    }
    /** Loads what a previous run left unacknowledged (call once, before connecting). */
    async restore() {
        for (const entry of await this.storage.load()) {
            if (entry?.frame?.client_msg_id && !this.entries.has(entry.frame.client_msg_id)) {
                this.entries.set(entry.frame.client_msg_id, entry);
            }
        }
    }
    /** Adds a send; a `client_msg_id` is made when the frame has none. Adding an id that is
     * already waiting keeps the first (it is the same message). */
    add(frame) {
        const client_msg_id = frame.client_msg_id ?? newClientMsgId();
        const existing = this.entries.get(client_msg_id);
        if (existing)
            return existing;
        const entry = {
            frame: { ...frame, action: 'send_message', client_msg_id },
            accepted: false,
            chat_id: frame.chat_id ?? null,
            sent_at: 0,
            attempts: 0,
        };
        this.entries.set(client_msg_id, entry);
        this.persist();
        return entry;
    }
    get(clientMsgId) {
        return this.entries.get(clientMsgId);
    }
    /** Every entry still waiting for its ack, oldest first. */
    waiting() {
        return [...this.entries.values()];
    }
    get size() {
        return this.entries.size;
    }
    /** The entries to write now: never sent on this socket, or sent over `resendAfterMs` ago. */
    due(now, resendAfterMs, sentBefore = 0) {
        return this.waiting().filter((entry) => entry.sent_at <= sentBefore || now - entry.sent_at >= resendAfterMs);
    }
    /** Notes that `entry` was written to a socket at `now`. */
    sent(entry, now) {
        entry.sent_at = now;
        entry.attempts += 1;
        this.persist();
    }
    /** `message_accepted`: durable in JetStream, still waiting for the ack. */
    accepted(clientMsgId, chatId) {
        const entry = this.entries.get(clientMsgId);
        if (entry) {
            entry.accepted = true;
            entry.chat_id = chatId ?? entry.chat_id;
            this.persist();
        }
        return entry;
    }
    /** Removes an entry: acknowledged, or refused for good. */
    remove(clientMsgId) {
        const entry = this.entries.get(clientMsgId);
        if (entry) {
            this.entries.delete(clientMsgId);
            this.persist();
        }
        return entry;
    }
    /** Resolves once every change so far is in the storage. */
    flushed() {
        return this.saving;
    }
    persist() {
        const snapshot = this.waiting();
        this.saving = this.saving.then(() => this.storage.save(snapshot)).catch(() => undefined);
    }
}
//# sourceMappingURL=outbox.js.map