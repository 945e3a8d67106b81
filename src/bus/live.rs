//! The ephemeral payloads: typing and presence, on core NATS under `chat.live.>` and
//! `chat.presence.>`, in no stream. Nothing here is stored; a subscriber that is away misses it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::messages::VERSION;
use crate::{domain::ChatId, domain::UserId};

/// Whether a member is typing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    /// Typing; lasts `TYPING_TIMEOUT` unless refreshed.
    Started,
    /// Stopped: the client said so, the timeout passed, or the socket closed.
    Stopped,
}

/// Whether a user has a socket open on some instance.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// A presence change, as the leading instance tells it (once per change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PresenceChange {
    #[serde(default = "version")]
    pub v: u8,
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// When the user was last online; `null` while online (and for a user never seen).
    pub last_seen: Option<DateTime<Utc>>,
    /// Unique per change: the same change published into several chats is told to a socket
    /// once.
    pub change_id: u64,
}

/// What travels on `chat.live.<chat_id>.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// On `chat.live.<chat_id>.typing`.
    Typing {
        #[serde(default = "version")]
        v: u8,
        chat_id: ChatId,
        user_id: UserId,
        state: TypingState,
        /// For `started`: how long receivers show it without a refresh (the typer's
        /// instance's `TYPING_TIMEOUT`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_in_ms: Option<u64>,
    },
    /// On `chat.live.<chat_id>.presence`: a member's presence changed.
    Presence(PresenceChange),
}

fn version() -> u8 {
    VERSION
}

/// The heartbeat value of one instance in the presence bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceHeartbeat {
    #[serde(default = "version")]
    pub v: u8,
    /// The users with a socket open on the instance (or closed within `PRESENCE_GRACE`).
    pub users: Vec<UserId>,
}
