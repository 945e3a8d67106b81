/** The outbox: every send stays here, under its `client_msg_id`, until its `message_ack`; on
 * each new socket (and when an open one stays silent about it) it is sent again with the same
 * id, which the server stores once. So a flaky network neither loses nor doubles a message. */

import type { SendMessage } from './types.js';

export interface OutboxEntry {
  /** The frame as it goes on the wire, `client_msg_id` included. */
  frame: SendMessage & { client_msg_id: string };
  /** `message_accepted` came: JetStream has it, only the ack is missing. */
  accepted: boolean;
  /** The chat, when known (`null` for a first message to a new private chat). */
  chat_id: number | null;
  /** When it was last written to a socket (ms since the epoch), 0 for never. */
  sent_at: number;
  /** How many times it was written to a socket. */
  attempts: number;
}

/** Where the outbox keeps its entries between page loads or process runs (optional). */
export interface OutboxStorage {
  load(): OutboxEntry[] | Promise<OutboxEntry[]>;
  save(entries: OutboxEntry[]): void | Promise<void>;
}

/** The default: in memory, for as long as the client lives. */
export class MemoryOutboxStorage implements OutboxStorage {
  private entries: OutboxEntry[] = [];
  load(): OutboxEntry[] {
    return structuredClone(this.entries);
  }
  save(entries: OutboxEntry[]): void {
    this.entries = structuredClone(entries);
  }
}

/** What `webStorageOutbox` needs of a Web Storage area (`localStorage`): said here so that
 * the types need no DOM library in Node.js. */
export interface WebStorageArea {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** A storage on a Web Storage area (`localStorage` in a browser) under `key`. */
export function webStorageOutbox(key: string, area: WebStorageArea = globalThis.localStorage): OutboxStorage {
  return {
    load: () => {
      try {
        const entries: unknown = JSON.parse(area.getItem(key) ?? '[]');
        return Array.isArray(entries) ? (entries as OutboxEntry[]) : [];
      } catch {
        return [];
      }
    },
    save: (entries) => area.setItem(key, JSON.stringify(entries)),
  };
}

/** A new idempotency key (UUIDs fit the server's 1–64 characters). */
export function newClientMsgId(): string {
  return globalThis.crypto.randomUUID();
}

export class Outbox {
  private readonly entries = new Map<string, OutboxEntry>();
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly storage: OutboxStorage = new MemoryOutboxStorage()) {}

  /** Loads what a previous run left unacknowledged (call once, before connecting). */
  async restore(): Promise<void> {
    for (const entry of await this.storage.load()) {
      if (entry?.frame?.client_msg_id && !this.entries.has(entry.frame.client_msg_id)) {
        this.entries.set(entry.frame.client_msg_id, entry);
      }
    }
  }

  /** Adds a send; a `client_msg_id` is made when the frame has none. Adding an id that is
   * already waiting keeps the first (it is the same message). */
  add(frame: SendMessage): OutboxEntry {
    const client_msg_id = frame.client_msg_id ?? newClientMsgId();
    const existing = this.entries.get(client_msg_id);
    if (existing) return existing;
    const entry: OutboxEntry = {
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

  get(clientMsgId: string): OutboxEntry | undefined {
    return this.entries.get(clientMsgId);
  }

  /** Every entry still waiting for its ack, oldest first. */
  waiting(): OutboxEntry[] {
    return [...this.entries.values()];
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entries to write now: never sent on this socket, or sent over `resendAfterMs` ago. */
  due(now: number, resendAfterMs: number, sentBefore = 0): OutboxEntry[] {
    return this.waiting().filter(
      (entry) => entry.sent_at <= sentBefore || now - entry.sent_at >= resendAfterMs,
    );
  }

  /** Notes that `entry` was written to a socket at `now`. */
  sent(entry: OutboxEntry, now: number): void {
    entry.sent_at = now;
    entry.attempts += 1;
    this.persist();
  }

  /** `message_accepted`: durable in JetStream, still waiting for the ack. */
  accepted(clientMsgId: string, chatId: number | null | undefined): OutboxEntry | undefined {
    const entry = this.entries.get(clientMsgId);
    if (entry) {
      entry.accepted = true;
      entry.chat_id = chatId ?? entry.chat_id;
      this.persist();
    }
    return entry;
  }

  /** Removes an entry: acknowledged, or refused for good. */
  remove(clientMsgId: string): OutboxEntry | undefined {
    const entry = this.entries.get(clientMsgId);
    if (entry) {
      this.entries.delete(clientMsgId);
      this.persist();
    }
    return entry;
  }

  /** Resolves once every change so far is in the storage. */
  flushed(): Promise<void> {
    return this.saving;
  }

  private persist(): void {
    const snapshot = this.waiting();
    this.saving = this.saving.then(() => this.storage.save(snapshot)).catch(() => undefined);
  }
}
