/** @jetchat/client: a typed jetchat client for browsers and Node.js 20+. See README.md. */
export { ChangeError, ChangeTimeoutError, Client, SendError } from './client.js';
export { Backoff } from './backoff.js';
export { CursorTracker, RESUME_HANDLED } from './cursor.js';
export { Emitter } from './emitter.js';
export { MemoryOutboxStorage, Outbox, newClientMsgId, webStorageOutbox, } from './outbox.js';
export { JetchatHttpError, RestClient, ResyncRequiredError, } from './rest.js';
export { TokenKeeper, tokenExp } from './token.js';
export { ChatList, newerProfile, newestFirst, roleIn } from './chat_list.js';
//# sourceMappingURL=index.js.map