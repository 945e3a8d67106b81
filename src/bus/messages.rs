//! The typed payloads on the bus: commands on `CHAT_IN`, events on `CHAT_EVENTS`, and the
//! outcomes sent to a command's `reply_to`. Every payload carries `v` (the contract version).

use serde::{Deserialize, Serialize};

use crate::{
    auth::UserId,
    domain::{ChatView, ContentType, MessageId, MessageView, ReceiptStatus},
    store::ChatId,
};

/// The version of every payload; additive changes keep it.
pub const VERSION: u8 = 1;

fn version() -> u8 {
    VERSION
}

/// A command on `CHAT_IN`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    SendMessage(SendMessage),
    Receipt(MarkReceipt),
    CreateChat(CreateChat),
}

/// Post a message into a chat (or to a user, creating the private chat on first use).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendMessage {
    #[serde(default = "version")]
    pub v: u8,
    /// The authenticated author (or the account Django posts as).
    pub sender_id: UserId,
    pub chat_id: Option<ChatId>,
    pub receiver_id: Option<UserId>,
    pub content: String,
    pub content_type: ContentType,
    #[serde(default)]
    pub file_url: Option<String>,
    /// The sender's idempotency key: a retry with the same key is stored once.
    pub client_msg_id: String,
    /// A core NATS subject for a rejection, if the sender wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A member marks a message (and everything before it) delivered or read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MarkReceipt {
    #[serde(default = "version")]
    pub v: u8,
    pub user_id: UserId,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub status: ReceiptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Create a group, or find-or-create a private chat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateChat {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command; a redelivered command returns the chat it created.
    pub command_id: String,
    pub creator_id: UserId,
    #[serde(default)]
    pub name: Option<String>,
    pub is_group: bool,
    /// The other members; the creator is added by the persister.
    pub member_ids: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Something the persister committed, on `CHAT_EVENTS`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageCreated(MessageCreated),
    Receipt(ReceiptEvent),
    ChatCreated(ChatCreated),
    MemberAdded(MemberAdded),
}

impl Event {
    /// The last token of the event's subject.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MessageCreated(_) => "message_created",
            Event::Receipt(_) => "receipt",
            Event::ChatCreated(_) => "chat_created",
            Event::MemberAdded(_) => "member_added",
        }
    }

    /// The chat the event belongs to.
    pub fn chat_id(&self) -> ChatId {
        match self {
            Event::MessageCreated(e) => e.message.chat_id,
            Event::Receipt(e) => e.chat_id,
            Event::ChatCreated(e) => e.chat.chat_id,
            Event::MemberAdded(e) => e.chat_id,
        }
    }
}

/// A message was stored (or, on a redelivery, found stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageCreated {
    #[serde(default = "version")]
    pub v: u8,
    pub message: MessageView,
    /// The `CHAT_IN` sequence of the command that created it.
    pub stream_seq: u64,
}

/// A member's delivered or read watermark moved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceiptEvent {
    #[serde(default = "version")]
    pub v: u8,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who marked it.
    pub user_id: UserId,
    pub status: ReceiptStatus,
    /// The author of the message, who is told.
    pub sender_id: UserId,
}

/// A chat was created with its first members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatCreated {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: Option<String>,
    pub chat: ChatView,
}

/// A user joined an existing chat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberAdded {
    #[serde(default = "version")]
    pub v: u8,
    pub chat_id: ChatId,
    pub user_id: UserId,
    /// The newest message before the join: later ones are the member's to see.
    pub after_message_id: MessageId,
}

/// What became of a command, sent to its `reply_to` (core NATS, at most once).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A `create_chat` command's chat (`created` is false for an existing private chat).
    ChatReady {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
        chat: ChatView,
        created: bool,
    },
    /// The command was refused; `command_id` is its `command_id` or `client_msg_id`.
    Rejected {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
        code: String,
        detail: String,
    },
}
