/** REST helpers, typed from docs/openapi.json: chats, history pages, `GET /sync`, presence,
 * uploads with progress. */
/** A REST answer that is not a success: `status`, the server's `detail` and its `code` (the
 * socket's error codes: `forbidden`, `not_a_member`, ...; `undefined` when it gave none). */
export class JetchatHttpError extends Error {
    status;
    detail;
    body;
    code;
    constructor(status, detail, body) {
        super(`HTTP ${status}: ${detail}`);
        this.status = status;
        this.detail = detail;
        this.body = body;
        this.name = 'JetchatHttpError';
        this.code =
            body && typeof body === 'object' && 'code' in body && typeof body.code === 'string' ? body.code : undefined;
    }
}
/** `GET /sync` answered 410: the catch-up cannot be exact; reload from history, then resume
 * from `resync.cursor`. */
export class ResyncRequiredError extends JetchatHttpError {
    resync;
    constructor(resync) {
        super(410, resync.detail, resync);
        this.resync = resync;
        this.name = 'ResyncRequiredError';
    }
}
export class RestClient {
    baseUrl;
    tokens;
    fetch;
    constructor(options) {
        this.baseUrl = options.baseUrl.replace(/\/+$/, '');
        this.tokens = options.tokens;
        this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    }
    /** My chats with their newest message and unread count (`GET /chats/`). */
    chats() {
        return this.json('GET', '/chats/');
    }
    /** Creates a group, or opens the private chat with one other user (answered with the
     * existing one when there is one). */
    createChat(body) {
        return this.json('POST', '/chats/', { body });
    }
    /** Adds users to a group (admins and the owner; members when `members_can_add` is on):
     * answered with the group as it is now (`POST /chats/{id}/members`). */
    addMembers(chatId, userIds) {
        return this.json('POST', `/chats/${chatId}/members`, { body: { user_ids: userIds } });
    }
    /** Removes a member from a group, or with my own id leaves it
     * (`DELETE /chats/{id}/members/{user_id}`). */
    async removeMember(chatId, userId) {
        await this.json('DELETE', `/chats/${chatId}/members/${userId}`);
    }
    /** Gives a member a role (the owner only; `owner` hands the group over): answered with the
     * group (`PUT /chats/{id}/members/{user_id}/role`). */
    setMemberRole(chatId, userId, role) {
        return this.json('PUT', `/chats/${chatId}/members/${userId}/role`, { body: { role } });
    }
    /** Renames a group or changes its settings (admins and the owner): answered with the group
     * (`PATCH /chats/{id}`). */
    updateChat(chatId, body) {
        return this.json('PATCH', `/chats/${chatId}`, { body });
    }
    /** Deletes a group with its whole history, for everyone (the owner only;
     * `DELETE /chats/{id}`). */
    async deleteChat(chatId) {
        await this.json('DELETE', `/chats/${chatId}`);
    }
    /** One page of a chat's history, newest first. */
    messages(chatId, query = {}) {
        return this.json('GET', `/chats/${chatId}/messages`, { query: { ...query } });
    }
    /** The private history with another user, newest first. */
    directMessages(userId, query = {}) {
        return this.json('GET', `/messages/${userId}`, { query: { ...query } });
    }
    /** A chat's history page by page, newest first, going back until the first message
     * (`before` = the oldest id of the page before). */
    async *history(chatId, pageSize = 50, before) {
        for (;;) {
            const page = await this.messages(chatId, { before, limit: pageSize });
            if (page.length === 0)
                return;
            yield page;
            if (page.length < pageSize)
                return;
            before = page[page.length - 1].message_id;
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
    async sync(query) {
        try {
            return await this.json('GET', '/sync', { query: { ...query } });
        }
        catch (error) {
            if (error instanceof JetchatHttpError && error.status === 410) {
                throw new ResyncRequiredError(error.body);
            }
            throw error;
        }
    }
    /** The names and avatars of up to 100 users (`GET /users?ids=`), by id: those who share a
     * chat with me, and mine; anyone else is left out. `chats()` already has every small chat's
     * members, and `user_updated` events tell changes. */
    users(ids) {
        return this.json('GET', '/users', { query: { ids: ids.join(',') } });
    }
    /** One of my chats with its pinned messages, newest pin first (`GET /chats/{id}`). */
    chat(chatId) {
        return this.json('GET', `/chats/${chatId}`);
    }
    /** Pins a message (`PUT /chats/{id}/messages/{mid}/pin`); again is a no-op. */
    async pin(chatId, messageId) {
        await this.json('PUT', `/chats/${chatId}/messages/${messageId}/pin`);
    }
    /** Unpins a message (`DELETE /chats/{id}/messages/{mid}/pin`). */
    async unpin(chatId, messageId) {
        await this.json('DELETE', `/chats/${chatId}/messages/${messageId}/pin`);
    }
    /** Blocks a user (`PUT /users/me/blocks/{id}`): they can no longer write to me privately
     * or add me to a group, and see me offline. Blocking again changes nothing. */
    async block(userId) {
        await this.json('PUT', `/users/me/blocks/${userId}`);
    }
    /** Lifts my block of a user (`DELETE /users/me/blocks/{id}`). */
    async unblock(userId) {
        await this.json('DELETE', `/users/me/blocks/${userId}`);
    }
    /** The users I block, oldest block first (`GET /users/me/blocks`). */
    blocks() {
        return this.json('GET', '/users/me/blocks');
    }
    /** Every member's presence now (`GET /chats/{id}/presence`). */
    presence(chatId) {
        return this.json('GET', `/chats/${chatId}/presence`);
    }
    /** Replaces the text of my message (`PATCH /chats/{id}/messages/{mid}`); answered with the
     * message as history now shows it. */
    editMessage(chatId, messageId, body) {
        return this.json('PATCH', `/chats/${chatId}/messages/${messageId}`, { body });
    }
    /** Deletes my message: history keeps a tombstone (`DELETE /chats/{id}/messages/{mid}`). */
    async deleteMessage(chatId, messageId) {
        await this.json('DELETE', `/chats/${chatId}/messages/${messageId}`);
    }
    /** Reacts to a message with one emoji (`PUT …/reactions/{emoji}`); again is a no-op. */
    async react(chatId, messageId, emoji) {
        await this.json('PUT', `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
    }
    /** Takes my reaction back (`DELETE …/reactions/{emoji}`). */
    async unreact(chatId, messageId, emoji) {
        await this.json('DELETE', `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
    }
    /** No pushes for the chat until `until` (RFC 3339), or for ever without (`PUT /chats/{id}/mute`). */
    mute(chatId, body = {}) {
        return this.json('PUT', `/chats/${chatId}/mute`, { body });
    }
    /** Pushes again (`DELETE /chats/{id}/mute`). */
    unmute(chatId) {
        return this.json('DELETE', `/chats/${chatId}/mute`);
    }
    /** One page of messages of my chats (or of `chat_id`) that match `q`, newest first, each
     * with its HTML-safe `snippet` (`GET /search`); page on with `before` = the last hit's id. */
    search(query) {
        return this.json('GET', '/search', { query: { ...query } });
    }
    /** Every hit of `q`, page by page (newest first). */
    async *searchPages(query, pageSize = 50) {
        let before;
        for (;;) {
            const page = await this.search({ ...query, before, limit: pageSize });
            if (page.length === 0)
                return;
            yield page;
            if (page.length < pageSize)
                return;
            before = page[page.length - 1].message_id;
        }
    }
    /**
     * Uploads a file (`POST /upload`, multipart) and returns it; send it with
     * `send({ chat_id, file_id })`. Progress: in a browser from `XMLHttpRequest`'s upload
     * events; elsewhere (Node.js) the body is streamed to `fetch` and progress is reported as
     * the transport pulls each chunk, which follows the socket's pace within one chunk (64 KiB).
     */
    async upload(file, options = {}) {
        const filename = options.filename ?? file.name ?? 'upload';
        const token = await this.tokens.current();
        if (typeof XMLHttpRequest !== 'undefined') {
            return this.uploadWithXhr(file, filename, token, options);
        }
        return this.uploadStreamed(file, filename, token, options);
    }
    uploadWithXhr(file, filename, token, options) {
        const form = new FormData();
        form.append('file', file, filename);
        return new Promise((resolve, reject) => {
            const xhr = new XMLHttpRequest();
            xhr.open('POST', `${this.baseUrl}/upload`);
            xhr.setRequestHeader('authorization', `Bearer ${token}`);
            xhr.responseType = 'json';
            xhr.upload.onprogress = (e) => options.onProgress?.({ loaded: e.loaded, total: e.total || file.size });
            xhr.onload = () => {
                if (xhr.status >= 200 && xhr.status < 300)
                    resolve(xhr.response);
                else
                    reject(httpError(xhr.status, xhr.response));
            };
            xhr.onerror = () => reject(new Error('upload failed: network error'));
            xhr.onabort = () => reject(new DOMException('upload aborted', 'AbortError'));
            options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
            xhr.send(form);
        });
    }
    async uploadStreamed(file, filename, token, options) {
        const boundary = `jetchat-${newBoundary()}`;
        const encoder = new TextEncoder();
        const head = encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(filename)}"\r\n` +
            `Content-Type: ${file.type || 'application/octet-stream'}\r\n\r\n`);
        const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
        const total = head.byteLength + file.size + tail.byteLength;
        const chunk = 64 * 1024;
        let stage = 'head';
        let offset = 0;
        let loaded = 0;
        const body = new ReadableStream({
            async pull(controller) {
                let bytes;
                if (stage === 'head') {
                    bytes = head;
                    stage = file.size > 0 ? 'file' : 'tail';
                }
                else if (stage === 'file') {
                    bytes = new Uint8Array(await file.slice(offset, offset + chunk).arrayBuffer());
                    offset += bytes.byteLength;
                    if (offset >= file.size)
                        stage = 'tail';
                }
                else if (stage === 'tail') {
                    bytes = tail;
                    stage = 'done';
                }
                else {
                    controller.close();
                    return;
                }
                controller.enqueue(bytes);
                loaded += bytes.byteLength;
                options.onProgress?.({ loaded, total });
            },
        }, { highWaterMark: 0 });
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
        });
        return this.read(response);
    }
    async json(method, path, options = {}) {
        const url = new URL(this.baseUrl + path);
        for (const [key, value] of Object.entries(options.query ?? {})) {
            if (value !== undefined && value !== null)
                url.searchParams.set(key, String(value));
        }
        const request = async (token) => this.fetch(url, {
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
    async read(response) {
        const text = await response.text();
        let body = undefined;
        try {
            body = text ? JSON.parse(text) : undefined;
        }
        catch {
            body = text;
        }
        if (!response.ok)
            throw httpError(response.status, body);
        return body;
    }
}
function httpError(status, body) {
    const detail = body && typeof body === 'object' && 'detail' in body && typeof body.detail === 'string'
        ? body.detail
        : String(body ?? '');
    return new JetchatHttpError(status, detail, body);
}
function newBoundary() {
    return globalThis.crypto.randomUUID().replace(/-/g, '');
}
/** A file name inside a quoted header parameter. */
function quoted(name) {
    return name.replace(/["\\\r\n]/g, '_');
}
//# sourceMappingURL=rest.js.map