/** @jetchat/client: a typed jetchat client for browsers and Node.js 20+. See README.md. */

export { ChangeError, ChangeTimeoutError, Client, SendError } from './client.js';
export type {
  ClientEvents,
  ChangeOptions,
  ClientOptions,
  ConnectionState,
  PendingSend,
  SendOptions,
  StopReason,
  WebSocketConstructor,
  WebSocketLike,
} from './client.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { CursorTracker, RESUME_HANDLED, type ResumePoint } from './cursor.js';
export { Emitter, type Listener } from './emitter.js';
export {
  MemoryOutboxStorage,
  Outbox,
  newClientMsgId,
  webStorageOutbox,
  type OutboxEntry,
  type OutboxStorage,
  type WebStorageArea,
} from './outbox.js';
export {
  JetchatHttpError,
  RestClient,
  ResyncRequiredError,
  type HistoryQuery,
  type SyncQuery,
  type UploadOptions,
  type UploadProgress,
} from './rest.js';
export { TokenKeeper, tokenExp, type TokenSource } from './token.js';
export { ChatList, newerProfile, newestFirst, roleIn, type ChatListEntry } from './chat_list.js';
export type * from './types.js';
