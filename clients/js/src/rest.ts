/** REST helpers, typed from docs/openapi.json: chats, history pages, `GET /sync`, presence,
 * uploads with progress. */

import type { TokenKeeper } from './token.js';
import type {
  ChatPresence,
  ChatSummary,
  ChatView,
  CreateChatRequest,
  EditMessageRequest,
  HistoryMessage,
  MessageView,
  MuteRequest,
  MuteState,
  ResyncRequired,
  Role,
  SearchHit,
  SearchQuery,
  SyncPage,
  UpdateChatRequest,
  UploadedFile,
  UserProfile,
  BlockedUser,
  ChatDetail,
} from './types.js';

/** A REST answer that is not a success: `status`, the server's `detail` and its `code` (the
 * socket's error codes: `forbidden`, `not_a_member`, ...; `undefined` when it gave none). */
export class JetchatHttpError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly body?: unknown,
  ) {
    super(`HTTP ${status}: ${detail}`);
    this.name = 'JetchatHttpError';
    this.code =
      body && typeof body === 'object' && 'code' in body && typeof body.code === 'string' ? body.code : undefined;
  }
}

/** `GET /sync` answered 410: the catch-up cannot be exact; reload from history, then resume
 * from `resync.cursor`. */
export class ResyncRequiredError extends JetchatHttpError {
  constructor(readonly resync: ResyncRequired) {
    super(410, resync.detail, resync);
    this.name = 'ResyncRequiredError';
  }
}

/** A page of history: at most `limit` messages, **newest first**. */
export interface HistoryQuery {
  /** Only messages older than this id (the oldest id of the page before). */
  before?: number;
  /** Only messages newer than this id: the `limit` oldest of them, still newest first. */
  after?: number;
  /** 1 to 100 (server default 50). */
  limit?: number;
}

export interface SyncQuery {
  since?: number;
  /** Page on exactly from here (the `cursor` of a page that had `more`). */
  after?: number;
  epoch?: string;
  limit?: number;
}

/** Progress of an upload: bytes of the request body sent so far, of `total`. */
export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** The file name the server keeps (sanitised); `Blob`s without one get `upload`. */
  filename?: string;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface RestOptions {
  /** `http(s)://host:port`, jetchat's base URL. */
  baseUrl: string;
  tokens: TokenKeeper;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | null | undefined>;

export class RestClient {
  private readonly baseUrl: string;
  private readonly tokens: TokenKeeper;
  private readonly fetch: typeof fetch;

  constructor(options: RestOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.tokens = options.tokens;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** My chats with their newest message and unread count (`GET /chats/`). */
  chats(): Promise<ChatSummary[]> {
    return this.json('GET', '/chats/');
  }

  /** Creates a group, or opens the private chat with one other user (answered with the
   * existing one when there is one). */
  createChat(body: CreateChatRequest): Promise<ChatView> {
    return this.json('POST', '/chats/', { body });
  }

  /** Adds users to a group (admins and the owner; members when `members_can_add` is on):
   * answered with the group as it is now (`POST /chats/{id}/members`). */
  addMembers(chatId: number, userIds: readonly number[]): Promise<ChatView> {
    return this.json('POST', `/chats/${chatId}/members`, { body: { user_ids: userIds } });
  }

  /** Removes a member from a group, or with my own id leaves it
   * (`DELETE /chats/{id}/members/{user_id}`). */
  async removeMember(chatId: number, userId: number): Promise<void> {
    await this.json('DELETE', `/chats/${chatId}/members/${userId}`);
  }

  /** Gives a member a role (the owner only; `owner` hands the group over): answered with the
   * group (`PUT /chats/{id}/members/{user_id}/role`). */
  setMemberRole(chatId: number, userId: number, role: Role): Promise<ChatView> {
    return this.json('PUT', `/chats/${chatId}/members/${userId}/role`, { body: { role } });
  }

  /** Renames a group or changes its settings (admins and the owner): answered with the group
   * (`PATCH /chats/{id}`). */
  updateChat(chatId: number, body: UpdateChatRequest): Promise<ChatView> {
    return this.json('PATCH', `/chats/${chatId}`, { body });
  }

  /** Deletes a group with its whole history, for everyone (the owner only;
   * `DELETE /chats/{id}`). */
  async deleteChat(chatId: number): Promise<void> {
    await this.json('DELETE', `/chats/${chatId}`);
  }

  /** One page of a chat's history, newest first. */
  messages(chatId: number, query: HistoryQuery = {}): Promise<HistoryMessage[]> {
    return this.json('GET', `/chats/${chatId}/messages`, { query: { ...query } });
  }

  /** The private history with another user, newest first. */
  directMessages(userId: number, query: HistoryQuery = {}): Promise<HistoryMessage[]> {
    return this.json('GET', `/messages/${userId}`, { query: { ...query } });
  }

  /** A chat's history page by page, newest first, going back until the first message
   * (`before` = the oldest id of the page before). */
  async *history(chatId: number, pageSize = 50, before?: number): AsyncGenerator<HistoryMessage[]> {
    for (;;) {
      const page = await this.messages(chatId, { before, limit: pageSize });
      if (page.length === 0) return;
      yield page;
      if (page.length < pageSize) return;
      before = page[page.length - 1]!.message_id;
    }
  }

  /** What a reconnecting client would miss after `since` (`GET /sync`): `changes` are the
   * frames of stored changes (`new_message`, `status_update`, `chat_created`, `member_added`,
   * `member_removed`, `member_role_changed`, `chat_renamed`, `chat_updated`, `chat_deleted`,
   * `chat_muted`, `message_deleted`, `message_edited`, `reaction_added`, `reaction_removed`),
   * oldest first, each with its `cursor`; with `more`,
   * ask again with `after: page.cursor`. Changes of the `SYNC_OVERLAP` window before `since`
   * come again (drop cursors you handled). Throws `ResyncRequiredError` when that cannot be
   * exact. */
  async sync(query: SyncQuery): Promise<SyncPage> {
    try {
      return await this.json('GET', '/sync', { query: { ...query } });
    } catch (error) {
      if (error instanceof JetchatHttpError && error.status === 410) {
        throw new ResyncRequiredError(error.body as ResyncRequired);
      }
      throw error;
    }
  }

  /** The names and avatars of up to 100 users (`GET /users?ids=`), by id: those who share a
   * chat with me, and mine; anyone else is left out. `chats()` already has every small chat's
   * members, and `user_updated` events tell changes. */
  users(ids: readonly number[]): Promise<UserProfile[]> {
    return this.json('GET', '/users', { query: { ids: ids.join(',') } });
  }

  /** One of my chats with its pinned messages, newest pin first (`GET /chats/{id}`). */
  chat(chatId: number): Promise<ChatDetail> {
    return this.json('GET', `/chats/${chatId}`);
  }

  /** Pins a message (`PUT /chats/{id}/messages/{mid}/pin`); again is a no-op. */
  async pin(chatId: number, messageId: number): Promise<void> {
    await this.json('PUT', `/chats/${chatId}/messages/${messageId}/pin`);
  }

  /** Unpins a message (`DELETE /chats/{id}/messages/{mid}/pin`). */
  async unpin(chatId: number, messageId: number): Promise<void> {
    await this.json('DELETE', `/chats/${chatId}/messages/${messageId}/pin`);
  }

  /** Blocks a user (`PUT /users/me/blocks/{id}`): they can no longer write to me privately
   * or add me to a group, and see me offline. Blocking again changes nothing. */
  async block(userId: number): Promise<void> {
    await this.json('PUT', `/users/me/blocks/${userId}`);
  }

  /** Lifts my block of a user (`DELETE /users/me/blocks/{id}`). */
  async unblock(userId: number): Promise<void> {
    await this.json('DELETE', `/users/me/blocks/${userId}`);
  }

  /** The users I block, oldest block first (`GET /users/me/blocks`). */
  blocks(): Promise<BlockedUser[]> {
    return this.json('GET', '/users/me/blocks');
  }

  /** Every member's presence now (`GET /chats/{id}/presence`). */
  presence(chatId: number): Promise<ChatPresence> {
    return this.json('GET', `/chats/${chatId}/presence`);
  }

  /** Replaces the text of my message (`PATCH /chats/{id}/messages/{mid}`); answered with the
   * message as history now shows it. */
  editMessage(chatId: number, messageId: number, body: EditMessageRequest): Promise<MessageView> {
    return this.json('PATCH', `/chats/${chatId}/messages/${messageId}`, { body });
  }

  /** Deletes my message: history keeps a tombstone (`DELETE /chats/{id}/messages/{mid}`). */
  async deleteMessage(chatId: number, messageId: number): Promise<void> {
    await this.json('DELETE', `/chats/${chatId}/messages/${messageId}`);
  }

  /** Reacts to a message with one emoji (`PUT …/reactions/{emoji}`); again is a no-op. */
  async react(chatId: number, messageId: number, emoji: string): Promise<void> {
    await this.json('PUT', `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }

  /** Takes my reaction back (`DELETE …/reactions/{emoji}`). */
  async unreact(chatId: number, messageId: number, emoji: string): Promise<void> {
    await this.json('DELETE', `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }

  /** No pushes for the chat until `until` (RFC 3339), or for ever without (`PUT /chats/{id}/mute`). */
  mute(chatId: number, body: MuteRequest = {}): Promise<MuteState> {
    return this.json('PUT', `/chats/${chatId}/mute`, { body });
  }

  /** Pushes again (`DELETE /chats/{id}/mute`). */
  unmute(chatId: number): Promise<MuteState> {
    return this.json('DELETE', `/chats/${chatId}/mute`);
  }

  /** One page of messages of my chats (or of `chat_id`) that match `q`, newest first, each
   * with its HTML-safe `snippet` (`GET /search`); page on with `before` = the last hit's id. */
  search(query: SearchQuery): Promise<SearchHit[]> {
    return this.json('GET', '/search', { query: { ...query } as Query });
  }

  /** Every hit of `q`, page by page (newest first). */
  async *searchPages(query: Omit<SearchQuery, 'before'>, pageSize = 50): AsyncGenerator<SearchHit[]> {
    let before: number | undefined;
    for (;;) {
      const page = await this.search({ ...query, before, limit: pageSize });
      if (page.length === 0) return;
      yield page;
      if (page.length < pageSize) return;
      before = page[page.length - 1]!.message_id;
    }
  }

  /**
   * Uploads a file (`POST /upload`, multipart) and returns it; send it with
   * `send({ chat_id, file_id })`. Progress: in a browser from `XMLHttpRequest`'s upload
   * events; elsewhere (Node.js) the body is streamed to `fetch` and progress is reported as
   * the transport pulls each chunk, which follows the socket's pace within one chunk (64 KiB).
   */
  async upload(file: Blob, options: UploadOptions = {}): Promise<UploadedFile> {
    const filename = options.filename ?? (file as Blob & { name?: string }).name ?? 'upload';
    const token = await this.tokens.current();
    if (typeof XMLHttpRequest !== 'undefined') {
      return this.uploadWithXhr(file, filename, token, options);
    }
    return this.uploadStreamed(file, filename, token, options);
  }

  private uploadWithXhr(file: Blob, filename: string, token: string, options: UploadOptions): Promise<UploadedFile> {
    const form = new FormData();
    form.append('file', file, filename);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${this.baseUrl}/upload`);
      xhr.setRequestHeader('authorization', `Bearer ${token}`);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => options.onProgress?.({ loaded: e.loaded, total: e.total || file.size });
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response as UploadedFile);
        else reject(httpError(xhr.status, xhr.response));
      };
      xhr.onerror = () => reject(new Error('upload failed: network error'));
      xhr.onabort = () => reject(new DOMException('upload aborted', 'AbortError'));
      options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(form);
    });
  }

  private async uploadStreamed(file: Blob, filename: string, token: string, options: UploadOptions): Promise<UploadedFile> {
    const boundary = `jetchat-${newBoundary()}`;
    const encoder = new TextEncoder();
    const head = encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(filename)}"\r\n` +
        `Content-Type: ${file.type || 'application/octet-stream'}\r\n\r\n`,
    );
    const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
    const total = head.byteLength + file.size + tail.byteLength;
    const chunk = 64 * 1024;
    let stage: 'head' | 'file' | 'tail' | 'done' = 'head';
    let offset = 0;
    let loaded = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          let bytes: Uint8Array;
          if (stage === 'head') {
            bytes = head;
            stage = file.size > 0 ? 'file' : 'tail';
          } else if (stage === 'file') {
            bytes = new Uint8Array(await file.slice(offset, offset + chunk).arrayBuffer());
            offset += bytes.byteLength;
            if (offset >= file.size) stage = 'tail';
          } else if (stage === 'tail') {
            bytes = tail;
            stage = 'done';
          } else {
            controller.close();
            return;
          }
          controller.enqueue(bytes);
          loaded += bytes.byteLength;
          options.onProgress?.({ loaded, total });
        },
      },
      { highWaterMark: 0 },
    );
    const response = await this.fetch(`${this.baseUrl}/upload`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
      body,
      signal: options.signal,
      // Node's fetch needs this to send a streamed body.
      duplex: 'half',
    } as RequestInit);
    return this.read(response);
  }

  private async json<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const request = async (token: string) =>
      this.fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    let response = await request(await this.tokens.current());
    if (response.status === 401 && this.tokens.renewable) {
      // The token may have expired since it was fetched: once more with a new one.
      response = await request(await this.tokens.fresh());
    }
    return this.read(response);
  }

  private async read<T>(response: Response): Promise<T> {
    const text = await response.text();
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    if (!response.ok) throw httpError(response.status, body);
    return body as T;
  }
}

function httpError(status: number, body: unknown): JetchatHttpError {
  const detail =
    body && typeof body === 'object' && 'detail' in body && typeof body.detail === 'string'
      ? body.detail
      : String(body ?? '');
  return new JetchatHttpError(status, detail, body);
}

function newBoundary(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, '');
}

/** A file name inside a quoted header parameter. */
function quoted(name: string): string {
  return name.replace(/["\\\r\n]/g, '_');
}
