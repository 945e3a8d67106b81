/** Names for the generated types: frames by their `action`, REST bodies by their schema. */

import type { ServerFrame } from './generated/frames.js';
import type { ClientFrame } from './generated/client_frames.js';
import type { components, operations } from './generated/openapi.js';

export type { ServerFrame, ClientFrame };

/** Every `action` the server sends. */
export type ServerAction = ServerFrame['action'];
/** The server frame of one `action`, e.g. `FrameOf<'new_message'>`. */
export type FrameOf<A extends ServerAction> = Extract<ServerFrame, { action: A }>;
/** The client frame of one `action`. */
export type ClientFrameOf<A extends ClientFrame['action']> = Extract<ClientFrame, { action: A }>;

export type SendMessage = ClientFrameOf<'send_message'>;
export type NewMessage = FrameOf<'new_message'>;
export type MessageAck = FrameOf<'message_ack'>;
export type ErrorFrame = FrameOf<'error'>;
export type Unread = FrameOf<'unread'>;
export type PresenceState = FrameOf<'presence_state'>;
export type ResyncRequiredFrame = FrameOf<'resync_required'>;
export type MessageEdited = FrameOf<'message_edited'>;
export type MessageDeleted = FrameOf<'message_deleted'>;
export type ReactionAdded = FrameOf<'reaction_added'>;
export type ReactionRemoved = FrameOf<'reaction_removed'>;
export type ChatMuted = FrameOf<'chat_muted'>;
export type MemberRoleChanged = FrameOf<'member_role_changed'>;
export type ChatUpdated = FrameOf<'chat_updated'>;
export type ChatDeleted = FrameOf<'chat_deleted'>;
export type CommandApplied = FrameOf<'command_applied'>;
/** I blocked `user_id` (or lifted the block) on one of my devices. */
export type BlockChanged = FrameOf<'block_changed'>;
/** A message of one of my chats was pinned (`message_unpinned`: unpinned). */
export type MessagePinned = FrameOf<'message_pinned'>;
export type MessageUnpinned = FrameOf<'message_unpinned'>;

/** Every `action` of a stored change: each such frame carries its `cursor`, and a catch-up
 * (`?since=` on the socket, `sync`, `GET /sync`) replays them. */
export type StoredChangeAction =
  | 'new_message'
  | 'status_update'
  | 'chat_created'
  | 'member_added'
  | 'member_removed'
  | 'member_role_changed'
  | 'chat_renamed'
  | 'chat_updated'
  | 'chat_deleted'
  | 'chat_muted'
  | 'block_changed'
  | 'message_pinned'
  | 'message_unpinned'
  | 'message_deleted'
  | 'message_edited'
  | 'reaction_added'
  | 'reaction_removed';
/** The frame of a stored change, as the socket sends it. */
export type StoredChange = FrameOf<StoredChangeAction>;

type Schemas = components['schemas'];
export type ChatSummary = Schemas['ChatSummary'];
export type ChatView = Schemas['ChatView'];
export type CreateChatRequest = Schemas['CreateChatRequest'];
export type HistoryMessage = Schemas['HistoryMessage'];
export type MessageView = Schemas['MessageView'];
/** A page of `GET /sync`: `changes` are the frames of stored changes a socket would have
 * got, oldest first, each with its `cursor` (the spec leaves their type open). */
export type SyncPage = Omit<Schemas['SyncPage'], 'changes'> & { changes: StoredChange[] };
export type UploadedFile = Schemas['UploadedFile'];
/** A member's standing in a group: `owner`, `admin` or `member` (docs/protocol.md, "Groups
 * their members run"). */
export type Role = Schemas['Role'];
/** A group's settings (`members_can_add`). */
export type GroupSettings = Schemas['GroupSettings'];
/** A change of a group's settings: the fields given are set. */
export type SettingsChange = Schemas['SettingsChange'];
export type UpdateChatRequest = Schemas['UpdateChatRequest'];
export type ChatPresence = Schemas['ChatPresence'];
export type ResyncRequired = Schemas['ResyncRequired'];
export type EditMessageRequest = Schemas['EditMessageRequest'];
export type MuteRequest = Schemas['MuteRequest'];
export type MuteState = Schemas['MuteState'];
export type SearchHit = Schemas['SearchHit'];
/** A user's name and avatar from jetchat's directory (Django feeds it); `updated_at` null:
 * a user it does not know, named `"User <id>"`. */
export type UserProfile = Schemas['UserProfile'];
/** A user I block, with when (`GET /users/me/blocks`). */
export type BlockedUser = Schemas['BlockedUser'];
/** A chat with its pinned messages (`GET /chats/{id}`). */
export type ChatDetail = Schemas['ChatDetail'];
export type PinnedMessage = Schemas['PinnedMessage'];
/** `GET /search`'s query, as the spec has it. */
export type SearchQuery = NonNullable<operations['search_messages']['parameters']['query']>;
