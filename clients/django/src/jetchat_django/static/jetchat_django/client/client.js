/** The jetchat client: one socket kept open (token renewal, reconnect with backoff, resume
 * without gaps), an outbox that resends until `message_ack`, typed events for every server
 * frame, and the REST helpers under `client.rest`. */
import { Backoff } from './backoff.js';
import { CursorTracker } from './cursor.js';
import { Emitter } from './emitter.js';
import { Outbox, newClientMsgId } from './outbox.js';
import { RestClient } from './rest.js';
import { TokenKeeper } from './token.js';
/** The server refused a message for good (`invalid_field`, `forbidden`, ...): resending the
 * same frame would fail the same way, so the outbox dropped it. */
export class SendError extends Error {
    frame;
    constructor(frame) {
        super(`${frame.code}: ${frame.detail}`);
        this.frame = frame;
        this.name = 'SendError';
    }
}
/** The server refused an edit, a delete, a reaction or a mute (`forbidden`, `message_deleted`,
 * `invalid_field`, ...): `code` is the error frame's. */
export class ChangeError extends Error {
    frame;
    code;
    constructor(frame) {
        super(`${frame.code}: ${frame.detail}`);
        this.frame = frame;
        this.name = 'ChangeError';
        this.code = frame.code;
    }
}
/** No answer came in time for a change; it may still have been applied (the frame that tells
 * of it then comes as an event) or, for a `react` already there or an `unreact` of none, been
 * a no-op the server announces to no one. */
export class ChangeTimeoutError extends Error {
    constructor(what, ms) {
        super(`no answer to ${what} within ${ms} ms`);
        this.name = 'ChangeTimeoutError';
    }
}
/** Frames that carry a `cursor` without being a stored change. */
const POSITION_FRAMES = new Set(['unread', 'synced', 'resync_required']);
/** Send errors after which the same frame may succeed later. */
const RETRYABLE = new Set(['unavailable', 'rate_limited']);
/** The server's `MAX_FRAME_BYTES`. */
const MAX_FRAME_BYTES = 64 * 1024;
/** A `typing` is refreshed at most this often (the server forgets it after 6 s). */
const TYPING_REFRESH_MS = 3_000;
export class Client extends Emitter {
    rest;
    outbox;
    tokens;
    cursors;
    backoff;
    WebSocketImpl;
    wsUrl;
    resendAfterMs;
    keepaliveMs;
    restored;
    socket;
    ready = false;
    stateValue = 'idle';
    stopped = true;
    socketToken;
    freshTokenNext = false;
    refreshing = false;
    resuming = false;
    /** Stored changes emitted since the catch-up began (a resuming socket, or `sync()`), until
     * its `synced`: what `synced.changes` tells the app. */
    catchUpEmitted;
    openedAt = 0;
    lastFrameAt = 0;
    lastPingAt = 0;
    reconnectTimer;
    renewTimer;
    tickTimer;
    acks = new Map();
    queuedMarks = [];
    typingSentAt = new Map();
    constructor(options) {
        super();
        const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
        if (!WebSocketImpl) {
            throw new TypeError('no global WebSocket here: pass one (`import { WebSocket } from "ws"`)');
        }
        this.WebSocketImpl = WebSocketImpl;
        const base = new URL(options.url);
        base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
        base.pathname = base.pathname.replace(/\/+$/, '') + '/ws/chat';
        this.wsUrl = base.toString();
        this.tokens = new TokenKeeper(options.token, { renewBeforeMs: options.renewBeforeMs });
        this.rest = new RestClient({ baseUrl: options.url, tokens: this.tokens, fetch: options.fetch });
        this.outbox = new Outbox(options.outboxStorage);
        this.restored = this.outbox.restore();
        this.cursors = new CursorTracker(options.resumeFrom);
        this.backoff = new Backoff(options.backoff);
        this.resendAfterMs = options.resendAfterMs ?? 10_000;
        this.keepaliveMs = options.keepaliveMs ?? 20_000;
    }
    get state() {
        return this.stateValue;
    }
    /** Where a new socket resumes from; save it to resume after a restart of the app too. */
    get resumePoint() {
        return this.cursors.resumePoint;
    }
    /** Opens the socket and keeps it open until `close()`; resolves with the first `unread`. */
    async connect() {
        if (!this.stopped)
            throw new Error('already connected or connecting');
        this.stopped = false;
        const ready = new Promise((resolve, reject) => {
            const offConnected = this.once('connected', ({ unread }) => {
                offStopped();
                resolve(unread);
            });
            const offStopped = this.once('stopped', ({ reason }) => {
                offConnected();
                reject(new Error(`the client stopped: ${reason}`));
            });
        });
        void this.open();
        return ready;
    }
    /** Closes the socket (1000) and stops reconnecting. The outbox keeps what is unacknowledged
     * for the next `connect()`. */
    close() {
        if (this.stopped)
            return;
        this.stop('closed_by_app');
    }
    /**
     * Sends a message (`chat_id`, or `receiver_id` for a private chat) through the outbox: it
     * is written now if the socket is open, and again on every new socket (and after
     * `resendAfterMs` without an answer) with the same `client_msg_id` until `message_ack`.
     */
    send(options) {
        const { replyTo, forwardedFrom, ...message } = options;
        if (message.chat_id == null && message.receiver_id == null) {
            throw new TypeError('send needs chat_id or receiver_id');
        }
        if (replyTo !== undefined)
            message.reply_to_message_id = replyTo;
        if (forwardedFrom !== undefined)
            message.forwarded_from = forwardedFrom;
        const entry = this.outbox.add({ ...message, action: 'send_message' });
        if (new TextEncoder().encode(JSON.stringify(entry.frame)).byteLength > MAX_FRAME_BYTES) {
            this.outbox.remove(entry.frame.client_msg_id);
            throw new RangeError(`a frame is at most ${MAX_FRAME_BYTES} bytes`);
        }
        const id = entry.frame.client_msg_id;
        const acked = this.ackPromise(id);
        if (this.ready)
            this.write(entry);
        return { clientMsgId: id, acked };
    }
    /** The message (and all before it in its chat) reached this user. Queued while offline. */
    markDelivered(messageId, chatId) {
        this.mark({ action: 'delivered', message_id: messageId, chat_id: chatId ?? null });
    }
    /** The user read the message (and all before it). Queued while offline. */
    markRead(messageId, chatId) {
        this.mark({ action: 'acknowledge', message_id: messageId, chat_id: chatId ?? null });
    }
    /** Call on every keystroke: tells the chat's other members at most every 3 s (the server
     * forgets a typer after 6 s). Nothing while offline. */
    typing(chatId) {
        const now = Date.now();
        if (now - (this.typingSentAt.get(chatId) ?? 0) < TYPING_REFRESH_MS)
            return;
        if (this.sendFrame({ action: 'typing', chat_id: chatId, state: 'started' })) {
            this.typingSentAt.set(chatId, now);
        }
    }
    /** The user stopped typing (sent the message, cleared the field). */
    stopTyping(chatId) {
        if (!this.typingSentAt.delete(chatId))
            return;
        this.sendFrame({ action: 'typing', chat_id: chatId, state: 'stopped' });
    }
    /** Every member's presence in the chat now, over the socket. */
    presence(chatId) {
        const answer = this.next('presence_state', (frame) => frame.chat_id === chatId);
        if (!this.sendFrame({ action: 'presence', chat_id: chatId })) {
            return Promise.reject(new Error('the socket is not open'));
        }
        return answer;
    }
    /** Replaces the text of my message: resolves with the `message_edited` every member gets,
     * rejects with a `ChangeError` (`forbidden` for someone else's message, `message_deleted`,
     * ...) or a `ChangeTimeoutError`. Needs the open socket (`client.rest.editMessage` does not). */
    editMessage(chatId, messageId, content, options = {}) {
        const commandId = newClientMsgId();
        return this.change({ action: 'edit_message', chat_id: chatId, message_id: messageId, content, command_id: commandId }, 'message_edited', (f) => f.chat_id === chatId && f.message_id === messageId && f.content === content, (e) => e.command_id === commandId, options);
    }
    /** Deletes my message (history keeps a tombstone): resolves with `message_deleted`. */
    deleteMessage(chatId, messageId, options = {}) {
        const commandId = newClientMsgId();
        return this.change({ action: 'delete_message', chat_id: chatId, message_id: messageId, command_id: commandId }, 'message_deleted', (f) => f.chat_id === chatId && f.message_id === messageId, (e) => e.command_id === commandId, options);
    }
    /** Reacts with one emoji: resolves with the `reaction_added` of that message and emoji.
     * Reacting again with the same emoji is announced to no one: that times out. */
    react(chatId, messageId, emoji, options = {}) {
        const commandId = newClientMsgId();
        return this.change({ action: 'react', chat_id: chatId, message_id: messageId, emoji, command_id: commandId }, 'reaction_added', (f) => f.chat_id === chatId && f.message_id === messageId && f.emoji === emoji, (e) => e.command_id === commandId, options);
    }
    /** Takes my reaction back: resolves with `reaction_removed` (times out when I had none). */
    unreact(chatId, messageId, emoji, options = {}) {
        const commandId = newClientMsgId();
        return this.change({ action: 'unreact', chat_id: chatId, message_id: messageId, emoji, command_id: commandId }, 'reaction_removed', (f) => f.chat_id === chatId && f.message_id === messageId && f.emoji === emoji, (e) => e.command_id === commandId, options);
    }
    /** No pushes for the chat until `until` (RFC 3339), for ever without, but for messages
     * that mention me unless `muteMentions`: resolves with `chat_muted`; a refusal
     * (`forbidden`, `invalid_field`, ...) is the `error` frame naming the request's
     * `command_id`. */
    mute(chatId, until, options = {}) {
        const commandId = newClientMsgId();
        return this.change({
            action: 'mute',
            chat_id: chatId,
            until: until ?? null,
            mute_mentions: options.muteMentions ?? false,
            command_id: commandId,
        }, 'chat_muted', (f) => f.chat_id === chatId && f.muted_until != null, (e) => e.command_id === commandId, options);
    }
    /** Pushes again from now on: resolves with `chat_muted` whose `muted_until` is `null`. */
    unmute(chatId, options = {}) {
        const commandId = newClientMsgId();
        return this.change({ action: 'unmute', chat_id: chatId, command_id: commandId }, 'chat_muted', (f) => f.chat_id === chatId && f.muted_until == null, (e) => e.command_id === commandId, options);
    }
    /** Adds users to a group over the socket (admins and the owner; members when the group's
     * `members_can_add` is on): resolves with `command_applied` once applied (the members get
     * `member_added`), rejects with a `ChangeError` (`forbidden` naming the role it needs,
     * `not_a_member`, `not_a_group`, ...) or a `ChangeTimeoutError`. */
    addMembers(chatId, userIds, options = {}) {
        const [first, ...rest] = userIds;
        if (first === undefined)
            return Promise.reject(new Error('addMembers needs at least one user id'));
        return this.groupChange({ action: 'add_members', chat_id: chatId, user_ids: [first, ...rest] }, options);
    }
    /** Removes a member (admins remove members, the owner admins too), or with my own id
     * leaves: resolves with `command_applied` (everyone gets `member_removed`). */
    removeMember(chatId, userId, options = {}) {
        return this.groupChange({ action: 'remove_member', chat_id: chatId, user_id: userId }, options);
    }
    /** Leaves a group (an owner's passes to its longest-serving admin, else member). */
    leaveChat(chatId, options = {}) {
        return this.groupChange({ action: 'leave_chat', chat_id: chatId }, options);
    }
    /** Gives a member a role (the owner only): `admin`, `member`, or `owner` to hand the group
     * over. Resolves with `command_applied` (members get `member_role_changed`). */
    setMemberRole(chatId, userId, role, options = {}) {
        return this.groupChange({ action: 'set_member_role', chat_id: chatId, user_id: userId, role }, options);
    }
    /** Renames a group or changes its settings (admins and the owner): resolves with
     * `command_applied` (members get `chat_updated`). */
    updateChat(chatId, change, options = {}) {
        return this.groupChange({ action: 'update_chat', chat_id: chatId, name: change.name ?? null, settings: change.settings ?? null }, options);
    }
    /** Deletes a group with its whole history, for everyone (the owner only): resolves with
     * `command_applied` (members get `chat_deleted`). */
    deleteChat(chatId, options = {}) {
        return this.groupChange({ action: 'delete_chat', chat_id: chatId }, options);
    }
    /** Pins a message (a group's admins and owner; in a private chat, either member):
     * resolves with `command_applied` once applied (every member gets `message_pinned`),
     * rejects with a `ChangeError` (`forbidden` naming the admin role, `message_deleted`,
     * `too_many_pins`, ...) or a `ChangeTimeoutError`. */
    pinMessage(chatId, messageId, options = {}) {
        return this.groupChange({ action: 'pin_message', chat_id: chatId, message_id: messageId }, options);
    }
    /** Unpins a message: resolves with `command_applied` (members get `message_unpinned`). */
    unpinMessage(chatId, messageId, options = {}) {
        return this.groupChange({ action: 'unpin_message', chat_id: chatId, message_id: messageId }, options);
    }
    /** Blocks a user: they can no longer write to me privately or add me to a group
     * (`blocked`), and see me offline. Resolves with `command_applied` once applied (every
     * socket of mine gets `block_changed`; blocking again changes nothing), rejects with a
     * `ChangeError` (`invalid_field` for my own id) or a `ChangeTimeoutError`. */
    blockUser(userId, options = {}) {
        return this.groupChange({ action: 'block_user', user_id: userId }, options);
    }
    /** Lifts my block of a user (none to lift changes nothing): resolves with
     * `command_applied`. */
    unblockUser(userId, options = {}) {
        return this.groupChange({ action: 'unblock_user', user_id: userId }, options);
    }
    /** Asks the open socket for everything after the resume point (then `synced`). */
    sync() {
        const point = this.cursors.resumePoint;
        const asked = this.sendFrame({ action: 'sync', since: point?.cursor ?? 0, epoch: point?.epoch ?? null });
        if (asked)
            this.catchUpEmitted ??= 0;
        return asked;
    }
    /** Gets a new token from the provider and gives it to the open socket now (the client
     * does this by itself before `exp`). */
    async renewToken() {
        let token;
        try {
            token = await this.tokens.fresh();
        }
        catch (error) {
            this.emit('token_error', { error });
            throw error;
        }
        let offs = [];
        const answer = new Promise((resolve, reject) => {
            offs = [
                this.once('token_refreshed', resolve),
                this.once('token_error', ({ error }) => reject(error)),
                this.once('disconnected', () => reject(new Error('the socket closed before token_refreshed'))),
            ];
        });
        const done = () => offs.forEach((off) => off());
        answer.then(done, done);
        if (!this.sendFrame({ action: 'refresh_token', token }))
            throw new Error('the socket is not open');
        this.refreshing = true;
        this.socketToken = token;
        return answer;
    }
    // --- the socket -------------------------------------------------------------------------
    async open() {
        this.reconnectTimer = undefined;
        if (this.stopped)
            return;
        this.setState(this.stateValue === 'idle' || this.stateValue === 'closed' ? 'connecting' : 'reconnecting');
        await this.restored;
        let token;
        try {
            token = this.freshTokenNext ? await this.tokens.fresh() : await this.tokens.current();
        }
        catch (error) {
            this.emit('token_error', { error });
            this.retryLater(0, 'no token');
            return;
        }
        if (this.stopped)
            return;
        if (!this.tokens.renewable && this.tokens.expired(token)) {
            this.stop('token_expired');
            return;
        }
        this.freshTokenNext = false;
        const url = new URL(this.wsUrl);
        url.searchParams.set('token', token);
        const point = this.cursors.resumePoint;
        this.resuming = point !== undefined;
        this.catchUpEmitted = this.resuming ? 0 : undefined;
        if (point) {
            url.searchParams.set('since', String(point.cursor));
            if (point.epoch !== undefined)
                url.searchParams.set('epoch', point.epoch);
        }
        const ws = new this.WebSocketImpl(url.toString());
        this.socket = ws;
        this.socketToken = token;
        let opened = false;
        let refusal;
        ws.onopen = () => {
            opened = true;
            this.openedAt = this.lastFrameAt = Date.now();
        };
        ws.onmessage = (event) => {
            if (this.socket === ws)
                this.receive(event.data);
        };
        ws.onerror = (event) => {
            // A close follows. Browsers hide why a handshake failed; `ws` says the status.
            const status = /Unexpected server response: (\d{3})/.exec(String(event?.message ?? ''));
            if (status)
                refusal = Number(status[1]);
        };
        ws.onclose = (event) => {
            if (this.socket === ws)
                this.closed(event.code ?? 1006, event.reason ?? '', opened, refusal);
        };
    }
    receive(data) {
        if (typeof data !== 'string')
            return; // the server sends text frames only
        let frame;
        try {
            frame = JSON.parse(data);
        }
        catch {
            return;
        }
        if (!frame || typeof frame !== 'object' || typeof frame.action !== 'string')
            return;
        this.lastFrameAt = Date.now();
        const cursor = frame.cursor;
        if (typeof cursor === 'number' && !POSITION_FRAMES.has(frame.action)) {
            if (!this.cursors.handle(cursor))
                return; // a stored change already handled (the catch-up's overlap)
            if (this.catchUpEmitted !== undefined)
                this.catchUpEmitted += 1;
        }
        /** The frame a `message_ack` answers, while the outbox still has it. */
        let sent;
        switch (frame.action) {
            case 'unread':
                this.onReady(frame);
                break;
            case 'synced':
                this.cursors.advance(frame.cursor, frame.epoch);
                // The server counts what it sent, repeats of the overlap included: tell what was emitted.
                frame = { ...frame, changes: this.catchUpEmitted ?? 0 };
                this.catchUpEmitted = undefined;
                break;
            case 'resync_required':
                this.cursors.reset(frame.cursor, frame.epoch);
                this.catchUpEmitted = undefined;
                break;
            case 'message_accepted':
                this.outbox.accepted(frame.client_msg_id, frame.chat_id);
                break;
            case 'message_ack':
                sent = this.outbox.get(frame.client_msg_id)?.frame;
                this.outbox.remove(frame.client_msg_id);
                this.acks.get(frame.client_msg_id)?.resolve(frame);
                this.acks.delete(frame.client_msg_id);
                break;
            case 'token_refreshed':
                this.refreshing = false;
                this.scheduleRenewal();
                break;
            case 'error':
                this.onError(frame);
                break;
        }
        this.emit(frame.action, frame);
        this.emit('frame', frame);
        if (sent && frame.action === 'message_ack')
            this.emit('message_sent', { ack: frame, frame: sent });
    }
    onReady(unread) {
        // Resuming, the picture's cursor may be ahead of the catch-up still coming: only a fresh
        // socket starts from it (a resumed one advances with the changes and `synced`).
        if (!this.resuming)
            this.cursors.advance(unread.cursor, unread.epoch);
        this.ready = true;
        this.backoff.reset();
        this.setState('open');
        this.scheduleRenewal();
        this.tickTimer = setInterval(() => this.tick(), 1_000);
        for (const mark of this.queuedMarks.splice(0))
            this.sendFrame(mark);
        this.flushOutbox();
        this.emit('connected', { resumed: this.resuming, unread });
    }
    onError(frame) {
        const id = frame.client_msg_id;
        const entry = id ? this.outbox.get(id) : undefined;
        if (id && entry) {
            if (RETRYABLE.has(frame.code)) {
                const wait = frame.retry_after_ms ?? 1_000 + Math.random() * 1_000;
                setTimeout(() => {
                    const still = this.outbox.get(id);
                    if (still && this.ready)
                        this.write(still);
                }, wait);
            }
            else {
                this.outbox.remove(id);
                this.acks.get(id)?.reject(new SendError(frame));
                this.acks.delete(id);
                this.emit('send_failed', { clientMsgId: id, frame: entry.frame, error: frame });
            }
        }
        else if (this.refreshing && (frame.code === 'invalid_token' || frame.code === 'forbidden')) {
            this.refreshing = false;
            this.emit('token_error', { error: frame });
        }
    }
    closed(code, reason, opened, refusal) {
        this.detach();
        if (this.stopped)
            return;
        if (refusal === 403 || (refusal === 401 && !this.tokens.renewable)) {
            // Nothing a retry would change: the origin is not allowed, the fixed token is refused.
            this.emit('disconnected', { code, reason: `HTTP ${refusal}` });
            this.stop(refusal === 403 ? 'origin_refused' : 'token_refused');
            return;
        }
        if (code === 4010) {
            // The user was erased: nothing of theirs is left to come back to.
            this.emit('disconnected', { code, reason });
            this.stop('user_erased');
            return;
        }
        if (refusal === 422) {
            // The resume point was refused: start from the present (the app reloads from history).
            this.cursors.forget();
        }
        if (code === 4001 || !opened) {
            // Expired (4001), or refused before the upgrade (a bad or expired token looks like
            // any failed handshake from a browser): a provider is asked again; a fixed token that
            // has expired will never do.
            if (this.tokens.renewable)
                this.freshTokenNext = true;
            else if (this.socketToken && this.tokens.expired(this.socketToken)) {
                this.emit('disconnected', { code, reason });
                this.stop('token_expired');
                return;
            }
        }
        // 4029: the server asked to come back later; 429: too many sockets for this user.
        this.retryLater(code === 4029 || refusal === 429 ? 5_000 : 0, reason, code);
    }
    retryLater(atLeastMs, reason, code = 1006) {
        const delay = Math.max(atLeastMs, this.backoff.next());
        this.emit('disconnected', { code, reason, reconnectInMs: delay });
        this.setState('reconnecting');
        this.reconnectTimer = setTimeout(() => void this.open(), delay);
    }
    /** Forgets the current socket and its timers. */
    detach() {
        const ws = this.socket;
        this.socket = undefined;
        this.ready = false;
        this.refreshing = false;
        clearInterval(this.tickTimer);
        clearTimeout(this.renewTimer);
        this.tickTimer = this.renewTimer = undefined;
        return ws;
    }
    stop(reason) {
        this.stopped = true;
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        const ws = this.detach();
        try {
            ws?.close(1000, reason);
        }
        catch {
            // already closing
        }
        this.setState('closed');
        this.emit('stopped', { reason });
    }
    /** Every second: resend what waited too long, keep the socket alive, spot a dead one. */
    tick() {
        if (!this.ready)
            return;
        this.flushOutbox();
        if (this.keepaliveMs <= 0)
            return;
        const now = Date.now();
        if (now - this.lastFrameAt > 2 * this.keepaliveMs) {
            // Silent through a ping: the connection is gone without a close (a dead network).
            const ws = this.detach();
            try {
                ws?.close(1000, 'keepalive timeout');
            }
            catch {
                // already closing
            }
            this.closed(1006, 'keepalive timeout', true);
        }
        else if (now - this.lastFrameAt > this.keepaliveMs && now - this.lastPingAt > this.keepaliveMs) {
            this.lastPingAt = now;
            this.sendFrame({ action: 'ping' });
        }
    }
    scheduleRenewal() {
        clearTimeout(this.renewTimer);
        const delay = this.socketToken ? this.tokens.renewalDelay(this.socketToken) : undefined;
        if (delay === undefined)
            return;
        this.renewTimer = setTimeout(() => {
            this.renewToken().catch(() => {
                // Told as `token_error`. Try again a little later; past `exp` the server closes with 4001 and a new socket
                // gets a new token.
                if (this.ready)
                    this.renewTimer = setTimeout(() => this.scheduleRenewal(), 5_000);
            });
        }, delay);
    }
    flushOutbox() {
        for (const entry of this.outbox.due(Date.now(), this.resendAfterMs, this.openedAt - 1)) {
            this.write(entry);
        }
    }
    write(entry) {
        if (this.sendFrame(entry.frame))
            this.outbox.sent(entry, Date.now());
    }
    mark(frame) {
        if (!this.sendFrame(frame)) {
            this.queuedMarks.push(frame);
            if (this.queuedMarks.length > 1_000)
                this.queuedMarks.shift();
        }
    }
    /** Writes a frame on the open socket; `false` when there is none. */
    sendFrame(frame) {
        if (!this.ready || !this.socket)
            return false;
        try {
            this.socket.send(JSON.stringify(frame));
            return true;
        }
        catch {
            return false;
        }
    }
    /** Writes `frame` and waits for the change frame `accept` takes, or the error `refused` takes. */
    /** A group action named by a new `command_id`, answered by its `command_applied`. */
    groupChange(frame, options) {
        const commandId = newClientMsgId();
        return this.change({ ...frame, command_id: commandId }, 'command_applied', (f) => f.command_id === commandId, (e) => e.command_id === commandId, options);
    }
    change(frame, action, accept, refused, options) {
        const timeoutMs = options.timeoutMs ?? 10_000;
        return new Promise((resolve, reject) => {
            const offs = [
                this.on(action, (event) => {
                    const changed = event;
                    if (!accept(changed))
                        return;
                    done();
                    resolve(changed);
                }),
                this.on('error', (error) => {
                    if (!refused(error))
                        return;
                    done();
                    reject(new ChangeError(error));
                }),
            ];
            const timer = setTimeout(() => {
                done();
                reject(new ChangeTimeoutError(frame.action, timeoutMs));
            }, timeoutMs);
            const done = () => {
                clearTimeout(timer);
                offs.forEach((off) => off());
            };
            if (!this.sendFrame(frame)) {
                done();
                reject(new Error('the socket is not open'));
            }
        });
    }
    ackPromise(id) {
        const existing = this.acks.get(id);
        if (existing)
            return existing.promise;
        let resolve;
        let reject;
        const promise = new Promise((ok, fail) => {
            resolve = ok;
            reject = fail;
        });
        promise.catch(() => undefined); // an app that ignores `acked` gets no unhandled rejection
        this.acks.set(id, { resolve, reject, promise });
        return promise;
    }
    setState(state) {
        if (this.stateValue === state)
            return;
        this.stateValue = state;
        this.emit('state', state);
    }
}
/** An `error` frame that can only be a mute's refusal: it names no send and no command. */
//# sourceMappingURL=client.js.map