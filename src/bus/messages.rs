//! The typed payloads on the bus: commands on `CHAT_IN`, events on `CHAT_EVENTS`, and the
//! outcomes sent to a command's `reply_to`. Every payload carries `v` (the contract version).

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    domain::ChatId,
    domain::UserId,
    domain::{ChatView, ContentType, MessageId, MessageView, ReceiptStatus},
};

/// The version of every payload; additive changes keep it.
pub const VERSION: u8 = 1;

fn version() -> u8 {
    VERSION
}

/// A command on `CHAT_IN`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    SendMessage(SendMessage),
    Receipt(MarkReceipt),
    DeliveredMarks(DeliveredMarks),
    CreateChat(CreateChat),
    AddMembers(AddMembers),
    RemoveMembers(RemoveMembers),
    RenameChat(RenameChat),
    UpdateChat(UpdateChat),
    SetMemberRole(SetMemberRole),
    DeleteChat(DeleteChat),
    DeleteMessage(DeleteMessage),
    RegisterUpload(RegisterUpload),
    EditMessage(EditMessage),
    React(ReactToMessage),
    Unreact(ReactToMessage),
    MuteChat(MuteChat),
    PushDue(PushDue),
    UpsertUser(UpsertUser),
    SetBlock(SetBlock),
    PinMessage(PinMessage),
    EraseUser(EraseUser),
}

impl Command {
    /// The command's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::SendMessage(_) => "send_message",
            Command::Receipt(_) => "receipt",
            Command::DeliveredMarks(_) => "delivered_marks",
            Command::CreateChat(_) => "create_chat",
            Command::AddMembers(_) => "add_members",
            Command::RemoveMembers(_) => "remove_members",
            Command::RenameChat(_) => "rename_chat",
            Command::UpdateChat(_) => "update_chat",
            Command::SetMemberRole(_) => "set_member_role",
            Command::DeleteChat(_) => "delete_chat",
            Command::DeleteMessage(_) => "delete_message",
            Command::RegisterUpload(_) => "register_upload",
            Command::EditMessage(_) => "edit_message",
            Command::React(_) => "react",
            Command::Unreact(_) => "unreact",
            Command::MuteChat(_) => "mute_chat",
            Command::PushDue(_) => "push_due",
            Command::UpsertUser(_) => "upsert_user",
            Command::SetBlock(_) => "set_block",
            Command::PinMessage(_) => "pin_message",
            Command::EraseUser(_) => "erase_user",
        }
    }

    /// The id an outcome refers to: `command_id`, or a message's `client_msg_id`.
    pub fn command_id(&self) -> String {
        match self {
            Command::SendMessage(c) => c.client_msg_id.clone(),
            Command::Receipt(c) => format!("receipt:{}:{}", c.user_id, c.message_id),
            Command::DeliveredMarks(c) => c.command_id.clone(),
            Command::CreateChat(c) => c.command_id.clone(),
            Command::AddMembers(c) => c.command_id.clone(),
            Command::RemoveMembers(c) => c.command_id.clone(),
            Command::RenameChat(c) => c.command_id.clone(),
            Command::UpdateChat(c) => c.command_id.clone(),
            Command::SetMemberRole(c) => c.command_id.clone(),
            Command::DeleteChat(c) => c.command_id.clone(),
            Command::DeleteMessage(c) => c.command_id.clone(),
            Command::RegisterUpload(c) => c.command_id.clone(),
            Command::EditMessage(c) => c.command_id.clone(),
            Command::React(c) | Command::Unreact(c) => c.command_id.clone(),
            Command::MuteChat(c) => c.command_id.clone(),
            Command::PushDue(c) => c.dedupe_id(),
            Command::UpsertUser(c) => c.command_id.clone(),
            Command::SetBlock(c) => c.command_id.clone(),
            Command::PinMessage(c) => c.command_id.clone(),
            Command::EraseUser(c) => c.command_id.clone(),
        }
    }

    /// Where the command's outcome should also be sent (core NATS), if anywhere.
    pub fn reply_to(&self) -> Option<&str> {
        match self {
            Command::SendMessage(c) => c.reply_to.as_deref(),
            Command::Receipt(c) => c.reply_to.as_deref(),
            Command::DeliveredMarks(_) => None,
            Command::CreateChat(c) => c.reply_to.as_deref(),
            Command::AddMembers(c) => c.reply_to.as_deref(),
            Command::RemoveMembers(c) => c.reply_to.as_deref(),
            Command::RenameChat(c) => c.reply_to.as_deref(),
            Command::UpdateChat(c) => c.reply_to.as_deref(),
            Command::SetMemberRole(c) => c.reply_to.as_deref(),
            Command::DeleteChat(c) => c.reply_to.as_deref(),
            Command::DeleteMessage(c) => c.reply_to.as_deref(),
            Command::RegisterUpload(c) => c.reply_to.as_deref(),
            Command::EditMessage(c) => c.reply_to.as_deref(),
            Command::React(c) | Command::Unreact(c) => c.reply_to.as_deref(),
            Command::MuteChat(c) => c.reply_to.as_deref(),
            Command::PushDue(_) => None,
            Command::UpsertUser(c) => c.reply_to.as_deref(),
            Command::SetBlock(c) => c.reply_to.as_deref(),
            Command::PinMessage(c) => c.reply_to.as_deref(),
            Command::EraseUser(c) => c.reply_to.as_deref(),
        }
    }

    /// The chat the command is about, when it names one.
    pub fn chat_id(&self) -> Option<ChatId> {
        match self {
            Command::SendMessage(c) => c.chat_id,
            Command::Receipt(c) => Some(c.chat_id),
            Command::DeliveredMarks(_) => None,
            Command::CreateChat(_) => None,
            Command::AddMembers(c) => Some(c.chat_id),
            Command::RemoveMembers(c) => Some(c.chat_id),
            Command::RenameChat(c) => Some(c.chat_id),
            Command::UpdateChat(c) => Some(c.chat_id),
            Command::SetMemberRole(c) => Some(c.chat_id),
            Command::DeleteChat(c) => Some(c.chat_id),
            Command::DeleteMessage(c) => Some(c.chat_id),
            Command::RegisterUpload(_) => None,
            Command::EditMessage(c) => Some(c.chat_id),
            Command::React(c) | Command::Unreact(c) => Some(c.chat_id),
            Command::MuteChat(c) => Some(c.chat_id),
            Command::PushDue(c) => Some(c.chat_id),
            Command::PinMessage(c) => Some(c.chat_id),
            Command::UpsertUser(_) | Command::SetBlock(_) | Command::EraseUser(_) => None,
        }
    }
}

/// Post a message into a chat (or to a user, creating the private chat on first use).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
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
    /// An upload of the sender's (`POST /upload`) the message carries; the persister checks
    /// the ownership and fills `file_url` and `content_type` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The sender's idempotency key: a retry with the same key is stored once.
    pub client_msg_id: String,
    /// A message of the same chat this one answers (`invalid_reply` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_message_id: Option<MessageId>,
    /// A message the sender can read (a member of its chat, not deleted) that this one
    /// forwards (`invalid_forward` otherwise); with no content and no file, the original's
    /// text and file are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<MessageId>,
    /// Users the message mentions: positive ids, at most `MAX_MENTIONS` (50; `invalid_field`
    /// otherwise). Those who are not members of the chat, and the sender, are dropped;
    /// repeats count once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// A core NATS subject for a rejection, if the sender wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A member marks a message (and everything before it) delivered or read.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
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

/// Most marks one [`DeliveredMarks`] command carries.
pub const MAX_DELIVERED_MARKS: usize = 1000;

/// What an instance's sockets pushed to their users (`AUTO_DELIVERED`), gathered from all of
/// them over a short window: each mark moves a member's delivered watermark as a `delivered`
/// [`MarkReceipt`] would, and is told the same way (a `receipt` event each). One command
/// instead of one per socket and chat; a mark that no longer applies (the user left the chat)
/// is skipped, not refused. No outcome is sent.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeliveredMarks {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command (logs, dead letters).
    pub command_id: String,
    /// At most [`MAX_DELIVERED_MARKS`], each member of a chat once.
    pub marks: Vec<DeliveredMark>,
}

/// One member's newest message pushed to them in one chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveredMark {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub message_id: MessageId,
}

/// Create a group, or find-or-create a private chat.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
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

impl CreateChat {
    /// The members besides the creator, sorted, each once: `member_ids` may list the creator
    /// or an id twice (`[me, other]` is the same private chat as `[other]`).
    pub fn other_members(&self) -> Vec<UserId> {
        let mut ids: Vec<UserId> = self
            .member_ids
            .iter()
            .copied()
            .filter(|id| *id != self.creator_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Add users to a group. Without `actor_id` it is Django's (the system: no role needed);
/// with it, the actor must be an admin or the owner, or a member of a group whose
/// `members_can_add` is on.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AddMembers {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    pub user_ids: Vec<UserId>,
    /// The member who adds them (sockets and REST set it); absent for Django's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Remove users from a group; their sockets stop receiving it at once. Without `actor_id` it
/// is Django's (the system: anyone, the owner too, whose group then passes to a successor);
/// with it, the actor leaves (`user_ids` is just them) or removes others as an admin (a
/// member) or the owner (an admin too). An owner who leaves hands the group to the
/// longest-serving admin, else the longest-serving member.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RemoveMembers {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    pub user_ids: Vec<UserId>,
    /// The member who removes them, or who leaves; absent for Django's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Rename a group.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RenameChat {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Rename a group or change its settings (`name` and `settings` each optional, at least one).
/// Without `actor_id` it is Django's; with it, the actor must be an admin or the owner.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UpdateChat {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    /// The new name (trimmed, 1 to 255 characters, no NUL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The settings to change; those absent are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::domain::SettingsChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Give a member of a group a role. `owner` hands the group over (the previous owner becomes
/// an admin); the owner cannot give themselves another role (`owner_required`). Without
/// `actor_id` it is Django's; with it, the actor must be the owner.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SetMemberRole {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    /// The member whose role changes (`not_a_member` for a user who is not one).
    pub user_id: UserId,
    pub role: crate::domain::Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Delete a group with its whole history, for everyone (messages, reactions, revisions,
/// receipts, the change journal's entries): members are told `chat_deleted`. Without
/// `actor_id` it is Django's; with it, the actor must be the owner. A private chat cannot be
/// deleted (`not_a_group`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeleteChat {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Delete a message: its content and file are erased, history shows a tombstone. Without
/// `deleter_id` it is moderation (Django, trusted); with it, the author may, and in a group
/// its admins and owner (the event's `deleted_by` then names them).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeleteMessage {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// The user deleting their own message (sockets and REST set it); absent for moderation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleter_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// The author changes a message's text: the previous text is kept as a revision, the
/// message keeps its id, order, receipts and file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EditMessage {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per edit; a redelivered edit is applied once.
    pub command_id: String,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who edits: refused unless it is the message's author.
    pub editor_id: UserId,
    /// The new text, under the rules of a new message's content.
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A member adds (`react`) or takes back (`unreact`) an emoji on a message: one of each emoji
/// per user and message, at most `MAX_REACTION_EMOJI` distinct emoji per message.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReactToMessage {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command; a redelivered `react` is applied once.
    pub command_id: String,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who reacts: a member of the chat.
    pub user_id: UserId,
    /// One grapheme cluster (an emoji, with its modifiers and joiners), at most
    /// `MAX_EMOJI_BYTES` bytes of UTF-8, no control character.
    pub emoji: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Record a file `POST /upload` stored (jetchat's REST publishes it): the row that lets the
/// owner attach it to messages, in the log like every other change, so `reproject` rebuilds
/// it. The blob itself is already in media storage under `storage_key`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegisterUpload {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    /// The id proposed for the upload (a UUID); an earlier upload of the same bytes by the
    /// same owner keeps its own id instead.
    pub file_id: String,
    pub owner_id: UserId,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub size: i64,
    /// The MIME type detected from the content.
    pub content_type: String,
    /// `audio`, `video` or `image`.
    pub kind: String,
    /// The sanitised client file name (metadata only).
    pub filename: String,
    /// Where the blob lives in media storage.
    pub storage_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Mute a chat for one member until a time (`muted_until` absent or null: unmute). A muted
/// member gets no `push_needed` for the messages of the muted period, then or later.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MuteChat {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub chat_id: ChatId,
    /// The member whose mute this is.
    pub user_id: UserId,
    /// Until when (RFC 3339, after the command's time and before the year 10000; "forever" is
    /// [`MUTED_FOREVER`]); absent or null unmutes.
    #[serde(default)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Mute the chat's mentions of the member too (absent: false). A muted member is still
    /// pushed a message that mentions them (`push_needed` with `mentioned`) unless this is on;
    /// unmuting turns it off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mute_mentions: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

pub use crate::domain::rules::{MUTED_FOREVER, muted_forever};

/// The push scanner's finding: `user_id` has messages from others in `chat_id` up to
/// `through_message_id` that no socket of theirs got within `PUSH_AFTER`. The persister
/// raises the member's push watermark to it and, if that covers messages not yet delivered,
/// pushed or muted, emits `push_needed`; a `push_due` that no longer raises the watermark (a
/// second instance's, a repeat after a restart) changes nothing.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PushDue {
    #[serde(default = "version")]
    pub v: u8,
    pub chat_id: ChatId,
    pub user_id: UserId,
    /// A message of `chat_id`: the push covers the member's messages up to it.
    pub through_message_id: MessageId,
}

impl PushDue {
    /// Its identity (its `Nats-Msg-Id` and its `command_id`): two scanners that find the
    /// same thing publish the same command, which `CHAT_IN` stores once.
    pub fn dedupe_id(&self) -> String {
        format!(
            "push:{}:{}:{}",
            self.chat_id, self.user_id, self.through_message_id
        )
    }
}

/// Django's word on a user's name and avatar, for the user directory: Django publishes it
/// when a user changes, and jetchat itself when an access token's claims (`JWT_NAME_CLAIM`,
/// `JWT_AVATAR_CLAIM`) differ from the directory. An update older than the stored one
/// (`updated_at`) changes nothing; one that changes something is told as `user_updated`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UpsertUser {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command (logs, dead letters, the outcome).
    pub command_id: String,
    /// A positive id (Django's user id).
    pub user_id: UserId,
    /// Trimmed, 1 to 100 characters, no control character (`invalid_display_name`).
    pub display_name: String,
    /// An http(s) URL of at most 2048 bytes (`invalid_avatar_url`); absent or null: no avatar.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// When the user changed (RFC 3339); absent: when `CHAT_IN` stored the command. An
    /// update older than the directory's is ignored, so the newest one wins whatever the
    /// order of arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A user blocks another (`blocked: true`) or lifts the block. Published by jetchat for
/// `PUT`/`DELETE /users/me/blocks/{user_id}` and the socket's `block_user`/`unblock_user`, and
/// by Django. The blocked user can no longer open a private chat with the blocker, send in
/// their private chat, or add the blocker to a group (`blocked`), and sees the blocker
/// offline, never seen; the blocker's side is unchanged, group messages are not hidden. A
/// repeat changes nothing and is applied; blocking yourself or a user id <= 0 is
/// `invalid_field`. Told to the blocker's sockets as `block_changed`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SetBlock {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command (logs, dead letters, the outcome).
    pub command_id: String,
    /// Who blocks (a positive id).
    pub user_id: UserId,
    /// Whom (a positive id, not `user_id`); need not share a chat with `user_id`.
    pub blocked_id: UserId,
    /// True to block, false to lift the block.
    pub blocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Pin a message of a chat (`pinned: true`) or unpin it: a group's admins and owner may, in a
/// private chat either member; without `actor_id`, Django acts as the system. A chat keeps at
/// most `MAX_PINS` (100) pinned messages (`too_many_pins`). Pinning a pinned message, or
/// unpinning one that is not, changes nothing and is applied.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PinMessage {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command; a redelivered pin is announced again, never pinned twice.
    pub command_id: String,
    pub chat_id: ChatId,
    /// A message of `chat_id`, not deleted (`not_found`, `message_deleted` otherwise).
    pub message_id: MessageId,
    /// True to pin, false to unpin.
    pub pinned: bool,
    /// The member who pins; absent: Django, as the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Django's right-to-erasure (a user deleted there): the user's messages become tombstones,
/// their uploads (rows and blobs), reactions, receipts, mutes, memberships and profile go,
/// and the groups they owned pass on as when an owner leaves. Django's only: no socket or
/// REST route sends it. Applied again (a redelivery, a second command) it finds nothing left
/// and changes nothing; either way `user_erased` says it is done (docs/events.md, "Erasure").
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EraseUser {
    #[serde(default = "version")]
    pub v: u8,
    /// Unique per command (logs, dead letters, the outcome, `user_erased`).
    pub command_id: String,
    /// A positive id (Django's user id); one jetchat never saw is erased all the same.
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Something the persister committed, on `CHAT_EVENTS`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageCreated(MessageCreated),
    Receipt(ReceiptEvent),
    ChatCreated(ChatCreated),
    MemberAdded(MemberAdded),
    MemberRemoved(MemberRemoved),
    ChatRenamed(ChatRenamed),
    ChatUpdated(ChatUpdated),
    MemberRoleChanged(MemberRoleChanged),
    ChatDeleted(ChatDeleted),
    MessageDeleted(MessageDeleted),
    CommandRejected(CommandRejected),
    UploadRegistered(UploadRegistered),
    MessageEdited(MessageEdited),
    ReactionAdded(Reaction),
    ReactionRemoved(Reaction),
    ChatMuted(ChatMuted),
    PushNeeded(PushNeeded),
    UserUpdated(UserUpdated),
    BlockChanged(BlockChanged),
    MessagePinned(PinChange),
    MessageUnpinned(PinChange),
    UserErased(UserErased),
}

impl Event {
    /// The last token of the event's subject.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MessageCreated(_) => "message_created",
            Event::Receipt(_) => "receipt",
            Event::ChatCreated(_) => "chat_created",
            Event::MemberAdded(_) => "member_added",
            Event::MemberRemoved(_) => "member_removed",
            Event::ChatRenamed(_) => "chat_renamed",
            Event::ChatUpdated(_) => "chat_updated",
            Event::MemberRoleChanged(_) => "member_role_changed",
            Event::ChatDeleted(_) => "chat_deleted",
            Event::MessageDeleted(_) => "message_deleted",
            Event::CommandRejected(_) => "command_rejected",
            Event::UploadRegistered(_) => "upload_registered",
            Event::MessageEdited(_) => "message_edited",
            Event::ReactionAdded(_) => "reaction_added",
            Event::ReactionRemoved(_) => "reaction_removed",
            Event::ChatMuted(_) => "chat_muted",
            Event::PushNeeded(_) => "push_needed",
            Event::UserUpdated(_) => "user_updated",
            Event::BlockChanged(_) => "block_changed",
            Event::MessagePinned(_) => "message_pinned",
            Event::MessageUnpinned(_) => "message_unpinned",
            Event::UserErased(_) => "user_erased",
        }
    }

    /// The event's identity, the same for every re-emission of it: its `Nats-Msg-Id` (so
    /// `CHAT_EVENTS` stores it once) and its key in the change journal.
    pub fn key(&self) -> String {
        let command = |id: &Option<String>| id.clone().unwrap_or_else(|| "-".into());
        match self {
            Event::MessageCreated(e) => format!("created:{}", e.message.message_id),
            Event::Receipt(e) => {
                let status = match e.status {
                    ReceiptStatus::Delivered => "delivered",
                    ReceiptStatus::Read => "read",
                };
                // The message first: a batch's receipts are of recent messages, so their
                // keys go in at the end of the journal's key index, not all over it.
                format!("receipt:{}:{}:{status}", e.message_id, e.user_id)
            }
            Event::ChatCreated(e) => format!("chat:{}:{}", e.chat.chat_id, command(&e.command_id)),
            Event::MemberAdded(e) => {
                format!(
                    "member:{}:{}:{}",
                    e.chat_id,
                    e.user_id,
                    command(&e.command_id)
                )
            }
            Event::MemberRemoved(e) => {
                format!(
                    "left:{}:{}:{}",
                    e.chat_id,
                    e.user_id,
                    command(&e.command_id)
                )
            }
            Event::ChatRenamed(e) => format!("renamed:{}:{}", e.chat_id, command(&e.command_id)),
            Event::ChatUpdated(e) => ChatUpdated::key_of(e.chat_id, &e.command_id),
            Event::MemberRoleChanged(e) => {
                format!("role:{}:{}:{}", e.chat_id, e.user_id, e.command_id)
            }
            // A group is deleted once, whichever command did it.
            Event::ChatDeleted(e) => ChatDeleted::key_of(e.chat_id),
            Event::MessageDeleted(e) => format!("deleted:{}", e.message_id),
            // One refusal per command, whoever sent it and whatever id it carries.
            Event::CommandRejected(e) => format!("rejected:{}", e.stream_seq),
            Event::UploadRegistered(e) => format!("upload:{}:{}", e.file_id, e.command_id),
            Event::MessageEdited(e) => format!("edited:{}:{}", e.message_id, e.command_id),
            Event::ReactionAdded(e) => format!("reacted:{}:{}", e.message_id, e.command_id),
            Event::ReactionRemoved(e) => format!("unreacted:{}:{}", e.message_id, e.command_id),
            Event::ChatMuted(e) => format!("muted:{}:{}:{}", e.chat_id, e.user_id, e.command_id),
            Event::PushNeeded(e) => {
                format!("push:{}:{}:{}", e.chat_id, e.user_id, e.through_message_id)
            }
            Event::UserUpdated(e) => format!("user:{}:{}", e.user.user_id, e.command_id),
            Event::BlockChanged(e) => {
                format!("block:{}:{}:{}", e.user_id, e.blocked_id, e.command_id)
            }
            Event::MessagePinned(e) => format!("pinned:{}:{}", e.message_id, e.command_id),
            Event::MessageUnpinned(e) => format!("unpinned:{}:{}", e.message_id, e.command_id),
            Event::UserErased(e) => format!("erased:{}:{}", e.user_id, e.command_id),
        }
    }

    /// The event's place in the change journal, when it has one (refusals and uploads are
    /// nobody's chat history and have none).
    pub fn cursor(&self) -> Option<u64> {
        match self {
            Event::MessageCreated(e) => e.cursor,
            Event::Receipt(e) => e.cursor,
            Event::ChatCreated(e) => e.cursor,
            Event::MemberAdded(e) => e.cursor,
            Event::MemberRemoved(e) => e.cursor,
            Event::ChatRenamed(e) => e.cursor,
            Event::ChatUpdated(e) => e.cursor,
            Event::MemberRoleChanged(e) => e.cursor,
            Event::ChatDeleted(e) => e.cursor,
            Event::MessageDeleted(e) => e.cursor,
            Event::MessageEdited(e) => e.cursor,
            Event::ReactionAdded(e) | Event::ReactionRemoved(e) => e.cursor,
            Event::ChatMuted(e) => e.cursor,
            Event::BlockChanged(e) => e.cursor,
            Event::MessagePinned(e) | Event::MessageUnpinned(e) => e.cursor,
            Event::CommandRejected(_)
            | Event::UploadRegistered(_)
            | Event::PushNeeded(_)
            | Event::UserUpdated(_)
            | Event::UserErased(_) => None,
        }
    }

    /// The cursor slot of a journaled event (`None` for the kinds that are not journaled).
    pub fn cursor_mut(&mut self) -> Option<&mut Option<u64>> {
        match self {
            Event::MessageCreated(e) => Some(&mut e.cursor),
            Event::Receipt(e) => Some(&mut e.cursor),
            Event::ChatCreated(e) => Some(&mut e.cursor),
            Event::MemberAdded(e) => Some(&mut e.cursor),
            Event::MemberRemoved(e) => Some(&mut e.cursor),
            Event::ChatRenamed(e) => Some(&mut e.cursor),
            Event::ChatUpdated(e) => Some(&mut e.cursor),
            Event::MemberRoleChanged(e) => Some(&mut e.cursor),
            Event::ChatDeleted(e) => Some(&mut e.cursor),
            Event::MessageDeleted(e) => Some(&mut e.cursor),
            Event::MessageEdited(e) => Some(&mut e.cursor),
            Event::ReactionAdded(e) | Event::ReactionRemoved(e) => Some(&mut e.cursor),
            Event::ChatMuted(e) => Some(&mut e.cursor),
            Event::BlockChanged(e) => Some(&mut e.cursor),
            Event::MessagePinned(e) | Event::MessageUnpinned(e) => Some(&mut e.cursor),
            Event::CommandRejected(_)
            | Event::UploadRegistered(_)
            | Event::PushNeeded(_)
            | Event::UserUpdated(_)
            | Event::UserErased(_) => None,
        }
    }

    /// The chat the event belongs to (`None` for a refused command that named none).
    pub fn chat_id(&self) -> Option<ChatId> {
        Some(match self {
            Event::MessageCreated(e) => e.message.chat_id,
            Event::Receipt(e) => e.chat_id,
            Event::ChatCreated(e) => e.chat.chat_id,
            Event::MemberAdded(e) => e.chat_id,
            Event::MemberRemoved(e) => e.chat_id,
            Event::ChatRenamed(e) => e.chat_id,
            Event::ChatUpdated(e) => e.chat_id,
            Event::MemberRoleChanged(e) => e.chat_id,
            Event::ChatDeleted(e) => e.chat_id,
            Event::MessageDeleted(e) => e.chat_id,
            Event::MessageEdited(e) => e.chat_id,
            Event::ReactionAdded(e) | Event::ReactionRemoved(e) => e.chat_id,
            Event::ChatMuted(e) => e.chat_id,
            Event::PushNeeded(e) => e.chat_id,
            Event::MessagePinned(e) | Event::MessageUnpinned(e) => e.chat_id,
            Event::CommandRejected(e) => return e.chat_id,
            Event::UploadRegistered(_)
            | Event::UserUpdated(_)
            | Event::BlockChanged(_)
            | Event::UserErased(_) => {
                return None;
            }
        })
    }
}

/// A message was stored (or, on a redelivery, found stored).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MessageCreated {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub message: MessageView,
    /// The `CHAT_IN` sequence of the command that created it.
    pub stream_seq: u64,
}

/// A member's delivered or read watermark moved.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptEvent {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who marked it.
    pub user_id: UserId,
    pub status: ReceiptStatus,
    /// The author of the message, who is told.
    pub sender_id: UserId,
}

/// A chat was created with its first members.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatCreated {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub command_id: Option<String>,
    pub chat: ChatView,
    /// The members' names and avatars from the user directory (`"User <id>"` for those it
    /// does not know), so clients draw the new chat at once; empty for a group of over 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<crate::domain::UserProfile>,
}

/// A user joined an existing chat.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemberAdded {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub user_id: UserId,
    /// The newest message before the join: later ones are the member's to see.
    pub after_message_id: MessageId,
    #[serde(default)]
    pub command_id: Option<String>,
    /// The member who added them; absent when Django did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<UserId>,
    /// The group with its members after the join (absent for groups of over 1,000 members:
    /// read `GET /chats/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatView>,
    /// Names and avatars from the user directory: every member's after the join, or only the
    /// new member's in a group of over 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<crate::domain::UserProfile>,
}

/// A user left (was removed from) a chat.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemberRemoved {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub user_id: UserId,
    #[serde(default)]
    pub command_id: Option<String>,
    /// Who removed them: `user_id` itself when they left, an admin or the owner; absent when
    /// Django did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<UserId>,
}

/// A group's name or settings changed: both as they are now.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatUpdated {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub name: Option<String>,
    pub settings: crate::domain::GroupSettings,
    /// The admin or owner who changed it; absent when Django did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<UserId>,
    pub command_id: String,
}

impl ChatUpdated {
    /// The event key (`Nats-Msg-Id`, journal key) of `command_id`'s update of `chat_id`, known
    /// before the event is made (a repeat looks it up).
    pub fn key_of(chat_id: ChatId, command_id: &str) -> String {
        format!("updated:{chat_id}:{command_id}")
    }
}

/// A member of a group got a role (`owner`: the group was handed to them).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemberRoleChanged {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub role: crate::domain::Role,
    /// The owner who gave it; absent when Django did or when the group passed to a successor
    /// because its owner left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<UserId>,
    pub command_id: String,
}

/// A group was deleted with its history; nothing more of it reaches anyone.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatDeleted {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    /// Its members when it was deleted: who is told.
    pub member_ids: Vec<UserId>,
    /// The owner who deleted it; absent when Django did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<UserId>,
    pub command_id: String,
}

impl ChatDeleted {
    /// The event key of `chat_id`'s deletion: a group is deleted once, whichever command did it
    /// (a repeat looks it up).
    pub fn key_of(chat_id: ChatId) -> String {
        format!("chat_deleted:{chat_id}")
    }
}

/// A group got a new name.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatRenamed {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub name: String,
    #[serde(default)]
    pub command_id: Option<String>,
}

/// A message was deleted.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MessageDeleted {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    #[serde(default)]
    pub command_id: Option<String>,
    /// Who deleted it: its author, or an admin or the owner of its group; absent when Django
    /// did (moderation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<UserId>,
}

/// A message's text was edited by its author.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MessageEdited {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// The author (who edited).
    pub sender_id: UserId,
    /// The new text.
    pub content: String,
    /// When the edit was made (the command's time in `CHAT_IN`), UTC.
    #[serde(serialize_with = "crate::domain::rfc3339")]
    pub edited_at: chrono::DateTime<chrono::Utc>,
    pub command_id: String,
}

/// A member added (`reaction_added`) or took back (`reaction_removed`) an emoji on a message.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Reaction {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who reacted.
    pub user_id: UserId,
    pub emoji: String,
    pub command_id: String,
}

/// A message was pinned (`message_pinned`) or unpinned (`message_unpinned`); told to every
/// member, journaled.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PinChange {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who pinned or unpinned it; absent when Django did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<UserId>,
    pub command_id: String,
}

/// A member muted (or unmuted) a chat; told to that member's sockets only.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatMuted {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub chat_id: ChatId,
    pub user_id: UserId,
    /// Null: not muted (any more).
    #[serde(serialize_with = "crate::domain::rfc3339_opt")]
    pub muted_until: Option<DateTime<Utc>>,
    /// Whether the mute covers the chat's mentions of the member too.
    #[serde(default)]
    pub mentions_muted: bool,
    pub command_id: String,
}

/// Most message ids one `push_needed` lists; `count` and `first_message_id` cover the rest.
pub const MAX_PUSH_MESSAGE_IDS: usize = 20;

/// Messages from others reached none of `user_id`'s sockets within `PUSH_AFTER`: Django sends
/// the member's devices a notification. Emitted once per member and message (docs/events.md,
/// "Push notifications"), never while the member has the chat muted.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PushNeeded {
    #[serde(default = "version")]
    pub v: u8,
    pub chat_id: ChatId,
    /// Whom to notify.
    pub user_id: UserId,
    /// The newest [`MAX_PUSH_MESSAGE_IDS`] of the messages covered, oldest first.
    pub message_ids: Vec<MessageId>,
    /// The oldest message covered.
    pub first_message_id: MessageId,
    /// The newest message covered: the next `push_needed` for this member and chat covers
    /// only later ones.
    pub through_message_id: MessageId,
    /// How many messages are covered (deleted ones and the member's own are not counted).
    pub count: u64,
    /// Some of the covered messages mention the member: in a chat the member muted (without
    /// its mentions), those are the only ones covered.
    #[serde(default)]
    pub mentioned: bool,
}

/// A user's directory entry changed (an `upsert_user` or a token's claims): on
/// `chat.events.none.user_updated`. Every instance's router tells the sockets of the members of
/// `chat_ids` (and the user's own) with a `user_updated` frame.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserUpdated {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    /// The profile as stored now.
    pub user: crate::domain::UserProfile,
    /// The chats the user is a member of: whose members are told.
    pub chat_ids: Vec<ChatId>,
}

/// A user blocked another or lifted the block (`set_block`): on
/// `chat.events.none.block_changed`, journaled (no chat: the journal's `chat_id` is 0) and
/// told to the blocker's sockets only, and replayed by their catch-up. Routers also hide the
/// blocker's presence from the blocked user's sockets, who are told nothing else of it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BlockChanged {
    #[serde(default = "version")]
    pub v: u8,
    /// Where this change stands in the order of every stored change (see docs/protocol.md,
    /// "Reconnect without gaps"); set by the persister when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    pub command_id: String,
    /// The blocker.
    pub user_id: UserId,
    pub blocked_id: UserId,
    /// True: blocked now; false: the block was lifted.
    pub blocked: bool,
}

/// A user was erased (`erase_user`), or found erased by a repeat: on
/// `chat.events.none.user_erased`, after the per-chat events of the erasure and after the
/// user's blobs were deleted from storage. Django's sign that it is done.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserErased {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    pub user_id: UserId,
    /// Messages that became tombstones now (0 for a repeat).
    pub messages_erased: u64,
    /// Groups left without a member, deleted with their history (`chat_deleted`).
    pub chats_deleted: Vec<ChatId>,
}

/// An upload was recorded (or, for a repeat, found recorded): on `chat.events.none.`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UploadRegistered {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    /// The upload's id: the proposed one, or the earlier upload's of the same bytes.
    pub file_id: String,
    pub owner_id: UserId,
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
    pub kind: String,
    /// False when the owner had uploaded the same bytes before (its `file_id` is answered).
    pub created: bool,
}

/// A command was refused; nothing changed. `command_id` is the command's `command_id` (or a
/// message's `client_msg_id`), so the sender can correlate.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommandRejected {
    #[serde(default = "version")]
    pub v: u8,
    pub command_id: String,
    /// The command's type, e.g. `add_members`.
    pub command: String,
    pub chat_id: Option<ChatId>,
    pub code: ErrorCode,
    pub detail: String,
    /// The refused command's `CHAT_IN` sequence (its dead letter's `Jetchat-Stream-Sequence`
    /// when it was kept): what tells two refusals apart when their `command_id`s are equal
    /// (two senders' ids, payloads that carry none). 0 in events from before this field.
    #[serde(default)]
    pub stream_seq: u64,
}

/// What became of a command, sent to its `reply_to` (core NATS, at most once).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
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
    /// A `register_upload` command's upload (`created` is false for an earlier upload of the
    /// same bytes, whose `file_id` this is).
    UploadReady {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
        file_id: String,
        created: bool,
    },
    /// An `edit_message`, `delete_message`, `react`, `unreact`, `upsert_user`, `set_block`, `pin_message` or group command
    /// (`add_members`, `remove_members`, `update_chat`, `set_member_role`, `delete_chat`) was applied (or,
    /// for a repeat, had been; an `unreact` of no reaction changes nothing and is applied).
    Applied {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
    },
    /// A `mute_chat` command's result: the member's mute as stored now.
    Muted {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
        chat_id: ChatId,
        muted_until: Option<DateTime<Utc>>,
        /// Whether the mute covers the chat's mentions of the member too.
        #[serde(default)]
        mentions_muted: bool,
    },
    /// The command was refused; `command_id` is its `command_id` or `client_msg_id`.
    Rejected {
        #[serde(default = "version")]
        v: u8,
        command_id: String,
        code: ErrorCode,
        detail: String,
    },
}
