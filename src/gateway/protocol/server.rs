//! The frames the server writes.

use crate::domain::ErrorCode;
use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    bus::live::{PresenceStatus, TypingState},
    domain::ChatId,
    domain::UserId,
    domain::{
        ChatView, GroupSettings, MessageId, MessageStatus, MessageView, ReceiptStatus, Role,
        UserProfile, rfc3339, rfc3339_opt,
    },
    metrics::FrameOut,
    presence::MemberPresence,
};

/// A frame the server sends.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// JetStream has the message: it is durable from now on.
    MessageAccepted {
        client_msg_id: &'a str,
        chat_id: Option<ChatId>,
    },
    /// The message is persisted; to the socket that sent it.
    MessageAck {
        client_msg_id: &'a str,
        message_id: MessageId,
        chat_id: ChatId,
        #[serde(serialize_with = "rfc3339")]
        timestamp: DateTime<Utc>,
    },
    /// A message for the other sockets of every member.
    NewMessage {
        #[serde(flatten)]
        message: &'a MessageView,
        status: MessageStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A member marked the recipient's message; to its author's sockets.
    StatusUpdate {
        message_id: MessageId,
        chat_id: ChatId,
        user_id: UserId,
        status: ReceiptStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A refused frame or command; `error` repeats `detail` for the Python service's clients.
    Error {
        code: ErrorCode,
        detail: &'a str,
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
        /// The refused change's `command_id` (an `edit_message`, `delete_message`, `react` or
        /// `unreact` frame's).
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The answer to `ping`.
    Pong,
    /// The answer to `refresh_token`: the socket now lives until `exp` (Unix seconds).
    TokenRefreshed { exp: i64 },
    /// The request the client named with `command_id` (an `edit_message`, `delete_message`,
    /// `react`, `unreact`, `mute` or `unmute`) is applied, or was already (a repeat, a
    /// reaction already there): to the socket that sent it, after the change's own frames.
    CommandApplied { command_id: &'a str },
    /// A chat you are in was created (a group you were put in, a private chat someone opened
    /// with you): your chat list can show it before its first message.
    ChatCreated {
        chat: &'a ChatView,
        /// The members' names and avatars (none listed for a group of over 100 members).
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        profiles: &'a [UserProfile],
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A user joined one of your groups (you, when you are the one added); `chat` is the
    /// group as it is now, when the server has it.
    MemberAdded {
        chat_id: ChatId,
        user_id: UserId,
        /// The member who added them (absent when Django did).
        #[serde(skip_serializing_if = "Option::is_none")]
        added_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chat: Option<&'a ChatView>,
        /// Names and avatars: every member's, or only the new member's in a group of over 100.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        profiles: &'a [UserProfile],
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A user left one of your groups (you, when you are the one removed: nothing more of
    /// that chat reaches you).
    MemberRemoved {
        chat_id: ChatId,
        user_id: UserId,
        /// Who removed them: `user_id` when they left, an admin or the owner (absent when
        /// Django did).
        #[serde(skip_serializing_if = "Option::is_none")]
        removed_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A member of one of your groups got a role: `admin` or `member` from the owner, or
    /// `owner` (the group was handed over; its previous owner is now an admin, told in a
    /// frame of its own).
    MemberRoleChanged {
        chat_id: ChatId,
        user_id: UserId,
        role: Role,
        /// The owner who gave it (absent when Django did, or when the group passed to its
        /// successor because its owner left).
        #[serde(skip_serializing_if = "Option::is_none")]
        changed_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// One of your groups got a new name or settings: both as they are now.
    ChatUpdated {
        chat_id: ChatId,
        name: Option<&'a str>,
        settings: GroupSettings,
        #[serde(skip_serializing_if = "Option::is_none")]
        updated_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// One of your groups was deleted with its whole history: drop it; nothing more of it
    /// comes.
    ChatDeleted {
        chat_id: ChatId,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A group was renamed (also told as `chat_updated`, which carries the settings too).
    ChatRenamed {
        chat_id: ChatId,
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// The user muted (`muted_until` a time) or unmuted (null) a chat, on one of their
    /// devices; to the user's sockets only.
    ChatMuted {
        chat_id: ChatId,
        #[serde(serialize_with = "rfc3339_opt")]
        muted_until: Option<DateTime<Utc>>,
        /// Whether the mute covers the chat's mentions of you too.
        mentions_muted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// You blocked `user_id` (`blocked: true`) or lifted the block, on one of your devices;
    /// to your sockets only (the blocked user is never told).
    BlockChanged {
        user_id: UserId,
        blocked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A message was pinned: show it among the chat's pinned messages (`by` who pinned it,
    /// absent when Django did).
    MessagePinned {
        chat_id: ChatId,
        message_id: MessageId,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A message was unpinned.
    MessageUnpinned {
        chat_id: ChatId,
        message_id: MessageId,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A message was deleted: show its tombstone.
    MessageDeleted {
        chat_id: ChatId,
        message_id: MessageId,
        /// Who deleted it: its author, or an admin or the owner of the group (absent when
        /// Django did).
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted_by: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// The author edited a message: show `content` in its place, marked edited.
    MessageEdited {
        chat_id: ChatId,
        message_id: MessageId,
        sender_id: UserId,
        content: &'a str,
        #[serde(serialize_with = "rfc3339")]
        edited_at: DateTime<Utc>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A member reacted to a message with `emoji`.
    ReactionAdded {
        chat_id: ChatId,
        message_id: MessageId,
        user_id: UserId,
        emoji: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// A member took back their `emoji` on a message.
    ReactionRemoved {
        chat_id: ChatId,
        message_id: MessageId,
        user_id: UserId,
        emoji: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
    },
    /// The catch-up asked for (`?since=` or `sync`) is complete: `changes` frames came
    /// before this one; live frames follow. Resume later from `cursor` or any later frame's.
    Synced {
        cursor: u64,
        epoch: &'a str,
        changes: u64,
    },
    /// The catch-up cannot be exact (`reason`: `too_far_behind`, `pruned`, `unknown_cursor`,
    /// `other_epoch`): reload from history, then resume from `cursor`.
    ResyncRequired {
        reason: &'a str,
        detail: &'a str,
        cursor: u64,
        epoch: &'a str,
    },
    /// On connect: per chat, the messages from others you have not read and the newest
    /// message's id; `cursor` is where this picture stands.
    Unread {
        chats: &'a [UnreadChat],
        cursor: u64,
        epoch: &'a str,
    },
    /// Another member is typing in the chat (`started`, for `expires_in_ms` unless refreshed)
    /// or stopped.
    Typing {
        chat_id: ChatId,
        user_id: UserId,
        state: TypingState,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_in_ms: Option<u64>,
    },
    /// Someone who shares a chat with you came online or went offline.
    Presence {
        user_id: UserId,
        status: PresenceStatus,
        #[serde(serialize_with = "rfc3339_opt")]
        last_seen: Option<DateTime<Utc>>,
    },
    /// Someone who shares a chat with you (or you) got a new name or avatar from Django:
    /// draw them with this profile from now on.
    UserUpdated { user: &'a UserProfile },
    /// The answer to `presence`: each member's presence now (`enabled: false` and no members
    /// with `PRESENCE=off`).
    PresenceState {
        chat_id: ChatId,
        enabled: bool,
        members: &'a [MemberPresence],
    },
}

/// One chat of an `unread` frame.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct UnreadChat {
    pub chat_id: ChatId,
    /// Messages from others not read, counted up to 1,000 (`store::queries::UNREAD_MOST`):
    /// 1000 means 1,000 or more.
    pub unread: i64,
    pub last_message_id: Option<MessageId>,
}

impl ServerFrame<'_> {
    /// What kind of frame this is, for `jetchat_frames_out_total`.
    pub fn kind(&self) -> FrameOut {
        match self {
            ServerFrame::MessageAccepted { .. } => FrameOut::MessageAccepted,
            ServerFrame::MessageAck { .. } => FrameOut::MessageAck,
            ServerFrame::NewMessage { .. } => FrameOut::NewMessage,
            ServerFrame::StatusUpdate { .. } => FrameOut::StatusUpdate,
            ServerFrame::Error { .. } => FrameOut::Error,
            ServerFrame::Pong => FrameOut::Pong,
            ServerFrame::TokenRefreshed { .. } => FrameOut::TokenRefreshed,
            ServerFrame::CommandApplied { .. } => FrameOut::CommandApplied,
            ServerFrame::MemberAdded { .. } => FrameOut::MemberAdded,
            ServerFrame::MemberRemoved { .. } => FrameOut::MemberRemoved,
            ServerFrame::ChatRenamed { .. } => FrameOut::ChatRenamed,
            ServerFrame::MessageDeleted { .. } => FrameOut::MessageDeleted,
            ServerFrame::MessageEdited { .. } => FrameOut::MessageEdited,
            ServerFrame::ReactionAdded { .. } => FrameOut::ReactionAdded,
            ServerFrame::ReactionRemoved { .. } => FrameOut::ReactionRemoved,
            ServerFrame::ChatMuted { .. } => FrameOut::ChatMuted,
            ServerFrame::ChatCreated { .. } => FrameOut::ChatCreated,
            ServerFrame::Unread { .. } => FrameOut::Unread,
            ServerFrame::Synced { .. } => FrameOut::Synced,
            ServerFrame::ResyncRequired { .. } => FrameOut::ResyncRequired,
            ServerFrame::Typing { .. } => FrameOut::Typing,
            ServerFrame::Presence { .. } => FrameOut::Presence,
            ServerFrame::PresenceState { .. } => FrameOut::PresenceState,
            ServerFrame::UserUpdated { .. } => FrameOut::UserUpdated,
            ServerFrame::MemberRoleChanged { .. } => FrameOut::MemberRoleChanged,
            ServerFrame::ChatUpdated { .. } => FrameOut::ChatUpdated,
            ServerFrame::ChatDeleted { .. } => FrameOut::ChatDeleted,
            ServerFrame::BlockChanged { .. } => FrameOut::BlockChanged,
            ServerFrame::MessagePinned { .. } => FrameOut::MessagePinned,
            ServerFrame::MessageUnpinned { .. } => FrameOut::MessageUnpinned,
        }
    }

    /// Serialises the frame once; the result is cheap to clone for many sockets.
    pub fn render(&self) -> Utf8Bytes {
        serde_json::to_string(self)
            .expect("frames always serialise")
            .into()
    }
}
