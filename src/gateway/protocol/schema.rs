//! The JSON Schemas of the frames (`docs/schemas/frames.json`, `client_frames.json`).

use super::ServerFrame;
use crate::{
    bus::live::TypingState,
    domain::ChatId,
    domain::UserId,
    domain::{ContentType, MessageId, Role, SettingsChange},
};

/// The frames a client may send (`docs/schemas/client_frames.json`), for client authors.
/// The parser reads a looser shape, so that a missing or wrong field gets a precise error
/// code; it accepts every frame this describes.
#[derive(schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClientFrame {
    /// A message into `chat_id`, or to `receiver_id` (the private chat is created on first
    /// use); one of the two is required, and `content` unless `file_url` or `file_id` is given.
    SendMessage {
        #[schemars(range(min = 1))]
        chat_id: Option<ChatId>,
        #[schemars(range(min = 1))]
        receiver_id: Option<UserId>,
        /// At most `MAX_CONTENT_CHARS` characters, no NUL.
        content: Option<String>,
        /// `text` when absent; an upload's `file_id` sets it.
        content_type: Option<ContentType>,
        /// An `http(s)://` link or a path of this service (`/media/...`).
        file_url: Option<String>,
        /// One of your uploads (`POST /upload`).
        #[schemars(length(max = 64))]
        file_id: Option<String>,
        /// Your idempotency key: resend with the same one and the message is stored once.
        #[schemars(length(min = 1, max = 64))]
        client_msg_id: Option<String>,
        /// A message of the same chat this one answers.
        #[schemars(range(min = 1))]
        reply_to_message_id: Option<MessageId>,
        /// A message of one of your chats this one forwards; without `content` and a file,
        /// the original's are copied.
        #[schemars(range(min = 1))]
        forwarded_from: Option<MessageId>,
        /// Members of the chat the message mentions (others, and you, are dropped); repeats
        /// count once.
        #[schemars(length(max = 50))]
        mentions: Option<Vec<PositiveUserId>>,
    },
    /// The message (and everything before it in its chat) reached you.
    Delivered {
        #[serde(flatten)]
        mark: ClientMark,
    },
    /// You read the message (and everything before it); implies delivered.
    Acknowledge {
        #[serde(flatten)]
        mark: ClientMark,
    },
    /// The Python service's name for `acknowledge`.
    Read {
        #[serde(flatten)]
        mark: ClientMark,
    },
    /// Answered with `pong`.
    Ping,
    /// A new access token of the same user: the socket then lives until its `exp`.
    RefreshToken {
        #[schemars(length(min = 1))]
        token: String,
    },
    /// You are typing in the chat (`started`, the default) or stopped.
    Typing {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        state: Option<TypingState>,
    },
    /// The presence of the chat's members, answered with `presence_state`.
    Presence {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
    },
    /// Everything you missed after the cursor `since`, then `synced` (or `resync_required`).
    Sync {
        since: u64,
        /// The `epoch` of the `unread` or `synced` frame the cursor came from.
        epoch: Option<String>,
    },
    /// Replace the text of one of your messages; answered with `message_edited`.
    EditMessage {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        message_id: MessageId,
        /// The new text: at most `MAX_CONTENT_CHARS` characters, not blank, no NUL.
        content: String,
        /// Your id for the change: answered with `command_applied` once applied (a repeat or
        /// a no-op too), or an `error` that names it; a repeat is applied once.
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Delete one of your messages (a tombstone stays); answered with `message_deleted`.
    DeleteMessage {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        message_id: MessageId,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// React to a message with one emoji; answered with `reaction_added`.
    React {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        message_id: MessageId,
        /// One grapheme cluster, at most 64 bytes of UTF-8, no control character.
        #[schemars(length(min = 1, max = 64))]
        emoji: String,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Take back your emoji on a message; answered with `reaction_removed`.
    Unreact {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        message_id: MessageId,
        #[schemars(length(min = 1, max = 64))]
        emoji: String,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// No push notifications for the chat until `until` (RFC 3339; absent: for ever).
    Mute {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        until: Option<String>,
        /// Mute the chat's mentions of you too (absent: false; a mention still pushes).
        mute_mentions: Option<bool>,
        /// Your id for the request: answered with `command_applied`, or an `error` naming it.
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Push notifications for the chat again.
    Unmute {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        /// Your id for the request: answered with `command_applied`, or an `error` naming it.
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Add users to a group (admins and the owner; members when `members_can_add` is on):
    /// each gets `member_added`.
    AddMembers {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(length(min = 1))]
        user_ids: Vec<PositiveUserId>,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Remove a member (admins remove members, the owner admins too; nobody the owner), or
    /// yourself: leave. Told as `member_removed`.
    RemoveMember {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        user_id: UserId,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Leave a group (an owner's group passes to its longest-serving admin, else member).
    LeaveChat {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Give a member a role (the owner only): `admin`, `member`, or `owner` to hand the
    /// group over. Told as `member_role_changed`.
    SetMemberRole {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(range(min = 1))]
        user_id: UserId,
        role: Role,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Rename a group or change its settings (admins and the owner); at least one of the
    /// two. Told as `chat_updated` (and `chat_renamed` for a new name).
    UpdateChat {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        /// 1 to 255 characters once trimmed, no NUL.
        #[schemars(length(min = 1, max = 255))]
        name: Option<String>,
        settings: Option<SettingsChange>,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Delete a group with its whole history, for everyone (the owner only). Told as
    /// `chat_deleted`.
    DeleteChat {
        #[schemars(range(min = 1))]
        chat_id: ChatId,
        #[schemars(length(min = 1, max = 128))]
        command_id: Option<String>,
    },
    /// Pin a message (a group's admins and owner; in a private chat, either member). Told to
    /// every member as `message_pinned`.
    PinMessage {
        #[serde(flatten)]
        pin: ClientPin,
    },
    /// Unpin a message. Told as `message_unpinned`.
    UnpinMessage {
        #[serde(flatten)]
        pin: ClientPin,
    },
    /// Block a user: they can no longer write to you privately or add you to a group, and
    /// see you offline. Told to your sockets as `block_changed`.
    BlockUser {
        #[serde(flatten)]
        block: ClientBlock,
    },
    /// Lift your block of a user. Told as `block_changed`.
    UnblockUser {
        #[serde(flatten)]
        block: ClientBlock,
    },
}

/// Pin or unpin a message (`unpin_message` has the same fields).
#[derive(schemars::JsonSchema)]
pub struct ClientPin {
    #[schemars(range(min = 1))]
    pub chat_id: ChatId,
    #[schemars(range(min = 1))]
    pub message_id: MessageId,
    #[schemars(length(min = 1, max = 128))]
    pub command_id: Option<String>,
}

/// Block a user, or lift the block (`unblock_user` has the same fields).
#[derive(schemars::JsonSchema)]
pub struct ClientBlock {
    /// Positive, not yours.
    #[schemars(range(min = 1))]
    pub user_id: UserId,
    #[schemars(length(min = 1, max = 128))]
    pub command_id: Option<String>,
}

/// A user id in a list: positive.
#[derive(schemars::JsonSchema)]
#[schemars(transparent)]
pub struct PositiveUserId(#[schemars(range(min = 1))] pub UserId);

/// The fields of `delivered`, `acknowledge` and `read`.
#[derive(schemars::JsonSchema)]
pub struct ClientMark {
    #[schemars(range(min = 1))]
    pub message_id: MessageId,
    pub chat_id: Option<ChatId>,
}

/// The JSON Schemas of the WebSocket frames, by file name under `docs/schemas/`: what the
/// TypeScript client's types are generated from, and what the contract test checks.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "frames.json",
            schemars::schema_for!(ServerFrame<'static>).to_value(),
        ),
        (
            "client_frames.json",
            schemars::schema_for!(ClientFrame).to_value(),
        ),
    ]
}
