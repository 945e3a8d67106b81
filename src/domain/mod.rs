//! The bottom of the house: the ids, the error codes, the rules a field must satisfy and the
//! shapes shared by the socket, REST and the bus (chats, messages, content types, receipts).
//! It imports nothing of jetchat's.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

mod error_code;
mod ids;
pub mod roles;
pub mod rules;

pub use error_code::ErrorCode;
pub use ids::{ChatId, MessageId, UserId};
pub use roles::{GroupSettings, Role, SettingsChange};

/// What a message carries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Text,
    Audio,
    Video,
    Image,
    File,
}

impl ContentType {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text",
            ContentType::Audio => "audio",
            ContentType::Video => "video",
            ContentType::Image => "image",
            ContentType::File => "file",
        }
    }

    /// Parses a wire or database name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => ContentType::Text,
            "audio" => ContentType::Audio,
            "video" => ContentType::Video,
            "image" => ContentType::Image,
            "file" => ContentType::File,
            _ => return None,
        })
    }
}

/// A member's mark on a message.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

/// Where a message stands for the one who looks at it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
}

/// A persisted message, as events, frames and history show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
pub struct MessageView {
    pub message_id: MessageId,
    pub chat_id: ChatId,
    pub sender_id: UserId,
    /// The other member of a private chat; `null` in a group.
    pub receiver_id: Option<UserId>,
    pub content: String,
    pub content_type: ContentType,
    /// A URL to fetch the attachment: for an upload (`file_id`), a signed `/media/...` link
    /// valid for `MEDIA_URL_TTL`; otherwise the URL the sender gave.
    pub file_url: Option<String>,
    /// The upload the message carries (`POST /upload`), if any.
    #[serde(default)]
    pub file_id: Option<String>,
    pub client_msg_id: String,
    /// UTC, RFC 3339 with an offset.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: DateTime<Utc>,
    /// When the author last edited the text (absent for a message never edited).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<DateTime<Utc>>,
    /// A deleted message's tombstone: no content, no file (absent for a live message).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The message of this chat this one answers (absent for a message that answers none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_message_id: Option<MessageId>,
    /// A short quote of the answered message; absent once that message is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_quote: Option<ReplyQuote>,
    /// The original this message forwards (absent for one that is not a forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<ForwardedFrom>,
    /// The members the message mentions, ascending (absent for none, and for a tombstone);
    /// clients draw `@name` from the directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
}

/// Most users one message may mention.
pub const MAX_MENTIONS: usize = 50;

/// A message's mentions as `messages.mentions` stores them: ascending ids, comma-separated;
/// `None` for none.
pub fn stored_mentions(ids: &[UserId]) -> Option<String> {
    if ids.is_empty() {
        return None;
    }
    Some(
        ids.iter()
            .map(UserId::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The ids of a stored `messages.mentions` (none for null or garbage).
pub fn parse_mentions(stored: Option<&str>) -> Vec<UserId> {
    stored
        .map(|s| s.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default()
}

/// Most characters of the answered message a reply quotes.
pub const REPLY_QUOTE_CHARS: usize = 100;

/// What a reply shows of the message it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
pub struct ReplyQuote {
    /// The answered message's author.
    pub sender_id: UserId,
    /// Its first [`REPLY_QUOTE_CHARS`] characters, as it reads now (empty for a file only).
    pub text: String,
}

/// Where a forwarded message comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
pub struct ForwardedFrom {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// The original's author.
    pub sender_id: UserId,
}

/// The quote of `content`: its first [`REPLY_QUOTE_CHARS`] characters.
pub fn reply_quote_text(content: &str) -> String {
    content.chars().take(REPLY_QUOTE_CHARS).collect()
}

/// A chat and its members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
pub struct ChatView {
    pub chat_id: ChatId,
    pub name: Option<String>,
    pub is_group: bool,
    pub created_by: UserId,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub member_ids: Vec<UserId>,
    /// Who runs the group (its creator until handed over); null for a private chat, whose
    /// two members are equal.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// The group's admins (the owner not among them), sorted; every other member is a plain
    /// `member`.
    #[serde(default)]
    pub admin_ids: Vec<UserId>,
    /// The group's settings (a private chat's are the defaults and mean nothing).
    #[serde(default)]
    pub settings: GroupSettings,
}

/// A user as the directory shows them: the name and avatar Django gave (access-token claims
/// or `upsert_user`). A user the directory has no entry for reads as `"User <id>"` with no
/// avatar and a null `updated_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
pub struct UserProfile {
    pub user_id: UserId,
    /// Trimmed, 1 to 100 characters; `"User <id>"` for a user the directory does not know.
    pub display_name: String,
    /// An http(s) link Django gave (jetchat never fetches it); null: no avatar.
    pub avatar_url: Option<String>,
    /// When Django changed the profile (the newest change wins); null for a user the
    /// directory does not know.
    #[serde(default, serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Largest chat whose members' profiles a chat listing or a membership event carries; a
/// larger group's are read from `GET /users` for the members a client shows.
pub const MAX_LISTED_PROFILES: usize = 100;

impl UserProfile {
    /// The fallback for a user the directory has no entry for.
    pub fn unknown(user_id: UserId) -> Self {
        UserProfile {
            user_id,
            display_name: format!("User {user_id}"),
            avatar_url: None,
            updated_at: None,
        }
    }
}

/// Serialises a time as `2024-11-15T10:00:00.000000+00:00`.
pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, false))
}

/// [`rfc3339`] for a time that may be missing (`null`).
pub fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}
