//! A client's frames: parsed, checked, and turned into requests or precise errors.

use crate::domain::ErrorCode;
use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::ServerFrame;
use crate::{
    bus::{live::TypingState, messages::muted_forever},
    domain::ChatId,
    domain::UserId,
    domain::rules::{self, MAX_CLIENT_MSG_ID},
    domain::{ContentType, MessageId, ReceiptStatus, Role, SettingsChange},
    metrics::FrameIn,
};

/// A frame as received; every field optional so a missing one gets a precise error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawFrame {
    action: Option<String>,
    chat_id: Option<ChatId>,
    receiver_id: Option<UserId>,
    content: Option<String>,
    content_type: Option<String>,
    file_url: Option<String>,
    file_id: Option<String>,
    client_msg_id: Option<String>,
    message_id: Option<MessageId>,
    token: Option<String>,
    state: Option<String>,
    since: Option<i64>,
    epoch: Option<String>,
    command_id: Option<String>,
    emoji: Option<String>,
    reply_to_message_id: Option<i64>,
    forwarded_from: Option<i64>,
    until: Option<String>,
    user_id: Option<UserId>,
    user_ids: Option<Vec<UserId>>,
    role: Option<String>,
    name: Option<String>,
    settings: Option<SettingsChange>,
    mentions: Option<Vec<UserId>>,
    mute_mentions: Option<bool>,
}

/// A checked client request.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// Post a message into `chat_id`, or to `receiver_id` (private chat).
    Send(SendRequest),
    /// Mark a message (and all before it) delivered or read.
    Mark {
        message_id: MessageId,
        chat_id: Option<ChatId>,
        status: ReceiptStatus,
    },
    /// Keep-alive at the application level; answered with `pong`.
    Ping,
    /// A new access token for this socket: it then lives until that token's `exp`.
    RefreshToken { token: String },
    /// The user is typing in a chat (or stopped); told to the other members, stored nowhere.
    Typing { chat_id: ChatId, state: TypingState },
    /// The presence of a chat's members, now.
    Presence { chat_id: ChatId },
    /// Everything the user missed after `since` (a cursor), then `synced`.
    Sync { since: u64, epoch: Option<String> },
    /// No push notifications for `chat_id` until `until` (`None`: unmute); with
    /// `mute_mentions`, not even for a message that mentions the user.
    Mute {
        chat_id: ChatId,
        until: Option<DateTime<Utc>>,
        mute_mentions: bool,
        /// The client's id for the request: `command_applied` (or a refusal) names it.
        command_id: Option<String>,
    },
    /// Replace the text of one of the user's messages.
    Edit(EditRequest),
    /// Delete one of the user's messages (a tombstone stays).
    Delete {
        chat_id: ChatId,
        message_id: MessageId,
        command_id: Option<String>,
    },
    /// Add (`add`) or take back an emoji on a message.
    React {
        chat_id: ChatId,
        message_id: MessageId,
        emoji: String,
        add: bool,
        command_id: Option<String>,
    },
    /// A change to a group's members, roles, name, settings or existence.
    Group(GroupRequest),
    /// Pin (`pinned`) or unpin a message of a chat.
    Pin {
        chat_id: ChatId,
        message_id: MessageId,
        pinned: bool,
        command_id: Option<String>,
    },
    /// Block `user_id` (`blocked`), or lift the block.
    Block {
        user_id: UserId,
        blocked: bool,
        command_id: Option<String>,
    },
}

/// A checked group action: what changes in which group, under the client's `command_id`.
#[derive(Debug, PartialEq)]
pub struct GroupRequest {
    pub chat_id: ChatId,
    pub change: GroupChange,
    pub command_id: Option<String>,
}

/// What a group action changes.
#[derive(Debug, PartialEq)]
pub enum GroupChange {
    /// `add_members`.
    AddMembers { user_ids: Vec<UserId> },
    /// `remove_member` (yourself: leave).
    RemoveMember { user_id: UserId },
    /// `leave_chat`.
    Leave,
    /// `set_member_role`.
    SetRole { user_id: UserId, role: Role },
    /// `update_chat`: a new name, settings, or both.
    Update {
        name: Option<String>,
        settings: Option<SettingsChange>,
    },
    /// `delete_chat`.
    Delete,
}

impl GroupChange {
    /// The frame's `action`.
    pub fn action(&self) -> &'static str {
        match self {
            GroupChange::AddMembers { .. } => "add_members",
            GroupChange::RemoveMember { .. } => "remove_member",
            GroupChange::Leave => "leave_chat",
            GroupChange::SetRole { .. } => "set_member_role",
            GroupChange::Update { .. } => "update_chat",
            GroupChange::Delete => "delete_chat",
        }
    }
}

/// A checked `edit_message`.
#[derive(Debug, PartialEq)]
pub struct EditRequest {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub content: String,
    /// The client's id for the edit (`command_applied` or a refusal names it).
    pub command_id: Option<String>,
}

impl Request {
    /// What kind of frame this was, for `jetchat_frames_in_total`.
    pub fn kind(&self) -> FrameIn {
        match self {
            Request::Send(_) => FrameIn::SendMessage,
            Request::Mark {
                status: ReceiptStatus::Delivered,
                ..
            } => FrameIn::Delivered,
            Request::Mark { .. } => FrameIn::Acknowledge,
            Request::Ping => FrameIn::Ping,
            Request::RefreshToken { .. } => FrameIn::RefreshToken,
            Request::Sync { .. } => FrameIn::Sync,
            Request::Typing { .. } => FrameIn::Typing,
            Request::Presence { .. } => FrameIn::Presence,
            Request::Edit(_) => FrameIn::EditMessage,
            Request::Delete { .. } => FrameIn::DeleteMessage,
            Request::React { add: true, .. } => FrameIn::React,
            Request::React { add: false, .. } => FrameIn::Unreact,
            Request::Mute { until: Some(_), .. } => FrameIn::Mute,
            Request::Mute { until: None, .. } => FrameIn::Unmute,
            Request::Group(group) => match group.change {
                GroupChange::AddMembers { .. } => FrameIn::AddMembers,
                GroupChange::RemoveMember { .. } => FrameIn::RemoveMember,
                GroupChange::Leave => FrameIn::LeaveChat,
                GroupChange::SetRole { .. } => FrameIn::SetMemberRole,
                GroupChange::Update { .. } => FrameIn::UpdateChat,
                GroupChange::Delete => FrameIn::DeleteChat,
            },
            Request::Pin { pinned: true, .. } => FrameIn::PinMessage,
            Request::Pin { pinned: false, .. } => FrameIn::UnpinMessage,
            Request::Block { blocked: true, .. } => FrameIn::BlockUser,
            Request::Block { blocked: false, .. } => FrameIn::UnblockUser,
        }
    }
}

/// A checked `send_message`.
#[derive(Debug, PartialEq)]
pub struct SendRequest {
    pub chat_id: Option<ChatId>,
    pub receiver_id: Option<UserId>,
    pub content: String,
    pub content_type: ContentType,
    pub file_url: Option<String>,
    /// An upload of the sender's, given as `file_id` or as its `/media/{id}` URL.
    pub file_id: Option<String>,
    pub client_msg_id: String,
    /// A message of the same chat this one answers.
    pub reply_to_message_id: Option<MessageId>,
    /// A message this one forwards.
    pub forwarded_from: Option<MessageId>,
    /// Users the message mentions (checked: positive, at most 50).
    pub mentions: Vec<UserId>,
}

/// Why a frame was refused; sent back as an `error` frame, the socket stays open.
#[derive(Debug, PartialEq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub detail: String,
    pub client_msg_id: Option<String>,
    /// The refused change's `command_id` (`edit_message`, `delete_message`, `react`, ...).
    pub command_id: Option<String>,
    /// For `rate_limited`: how long until the same frame would be taken.
    pub retry_after_ms: Option<u64>,
}

impl FrameError {
    /// An error about the frame as a whole.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        FrameError {
            code,
            detail: detail.into(),
            client_msg_id: None,
            command_id: None,
            retry_after_ms: None,
        }
    }

    /// A frame over the user's rate limit, to be sent again in `retry_after_ms`.
    pub fn rate_limited(what: &str, retry_after_ms: u64) -> Self {
        FrameError {
            retry_after_ms: Some(retry_after_ms),
            ..FrameError::new(
                ErrorCode::RateLimited,
                format!("too many {what}; retry in {retry_after_ms} ms"),
            )
        }
    }

    /// The same error, correlated with a send.
    pub fn about(mut self, client_msg_id: Option<&str>) -> Self {
        self.client_msg_id = client_msg_id.map(str::to_owned);
        self
    }

    /// The same error, naming the refused change's `command_id`.
    pub fn naming(mut self, command_id: &str) -> Self {
        self.command_id = Some(command_id.to_owned());
        self
    }

    /// [`FrameError::naming`] when there is a `command_id` to name.
    pub fn naming_opt(self, command_id: Option<&str>) -> Self {
        match command_id {
            Some(id) => self.naming(id),
            None => self,
        }
    }
}

/// Parses and checks a text frame.
pub fn parse(text: &str, max_content_chars: usize) -> Result<Request, FrameError> {
    if !text.trim_start().starts_with('{') {
        return Err(FrameError::new(
            ErrorCode::BadJson,
            "a frame must be a JSON object",
        ));
    }
    let raw: RawFrame = serde_json::from_str(text).map_err(|e| {
        // A type error may hide a syntax error further on: only valid JSON is "invalid_field".
        if e.is_syntax()
            || e.is_eof()
            || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err()
        {
            FrameError::new(ErrorCode::BadJson, format!("frame is not valid JSON: {e}"))
        } else {
            FrameError::new(
                ErrorCode::InvalidField,
                format!("frame has a field of the wrong type: {e}"),
            )
        }
    })?;
    let action = raw
        .action
        .as_deref()
        .ok_or_else(|| FrameError::new(ErrorCode::MissingField, "action is required"))?;
    match action {
        "send_message" => parse_send(raw, max_content_chars).map(Request::Send),
        "acknowledge" | "read" => mark(raw, ReceiptStatus::Read),
        "delivered" => mark(raw, ReceiptStatus::Delivered),
        "ping" => Ok(Request::Ping),
        "refresh_token" => match raw.token {
            Some(token) if !token.trim().is_empty() => Ok(Request::RefreshToken { token }),
            _ => Err(FrameError::new(
                ErrorCode::MissingField,
                "refresh_token needs the new access token in `token`",
            )),
        },
        "typing" => {
            let chat_id = positive_chat_id(raw.chat_id, "typing")?;
            let state = match raw.state.as_deref() {
                None | Some("started") => TypingState::Started,
                Some("stopped") => TypingState::Stopped,
                Some(other) => {
                    return Err(FrameError::new(
                        ErrorCode::InvalidField,
                        format!("state {other:?} is not started or stopped"),
                    ));
                }
            };
            Ok(Request::Typing { chat_id, state })
        }
        "edit_message" => {
            let named = valid_command_id(&raw);
            parse_edit(raw, max_content_chars)
                .map(Request::Edit)
                .map_err(|error| error.naming_opt(named.as_deref()))
        }
        "delete_message" => {
            let named = valid_command_id(&raw);
            parse_delete(raw).map_err(|error| error.naming_opt(named.as_deref()))
        }
        "react" | "unreact" => {
            let named = valid_command_id(&raw);
            let add = action == "react";
            parse_react(raw, add).map_err(|error| error.naming_opt(named.as_deref()))
        }
        "presence" => Ok(Request::Presence {
            chat_id: positive_chat_id(raw.chat_id, "presence")?,
        }),
        "sync" => {
            let since = raw.since.ok_or_else(|| {
                FrameError::new(ErrorCode::MissingField, "sync needs `since`, a cursor")
            })?;
            Ok(Request::Sync {
                since: cursor(since)?,
                epoch: raw.epoch,
            })
        }
        "mute" | "unmute" => {
            let named = valid_command_id(&raw);
            let mute = action == "mute";
            parse_mute(raw, mute).map_err(|error| error.naming_opt(named.as_deref()))
        }
        "add_members" | "remove_member" | "leave_chat" | "set_member_role" | "update_chat"
        | "delete_chat" => {
            let named = valid_command_id(&raw);
            let action = action.to_owned();
            parse_group(&action, raw)
                .map(Request::Group)
                .map_err(|error| error.naming_opt(named.as_deref()))
        }
        "pin_message" | "unpin_message" => {
            let named = valid_command_id(&raw);
            let pinned = action == "pin_message";
            parse_pin(pinned, raw).map_err(|error| error.naming_opt(named.as_deref()))
        }
        "block_user" | "unblock_user" => {
            let named = valid_command_id(&raw);
            parse_block(action == "block_user", raw)
                .map_err(|error| error.naming_opt(named.as_deref()))
        }
        other => Err(FrameError::new(
            ErrorCode::UnknownAction,
            format!("unknown action {other:?}"),
        )),
    }
}

/// `pin_message` or `unpin_message`: a positive `chat_id` and `message_id`.
fn parse_pin(pinned: bool, raw: RawFrame) -> Result<Request, FrameError> {
    let action = if pinned {
        "pin_message"
    } else {
        "unpin_message"
    };
    let chat_id = positive_chat_id(raw.chat_id, action)?;
    let command_id = frame_command_id(raw.command_id)?;
    let message_id = raw.message_id.ok_or_else(|| {
        FrameError::new(
            ErrorCode::MissingField,
            format!("{action} needs message_id"),
        )
    })?;
    rules::positive("message_id", message_id).map_err(|r| FrameError::new(r.code, r.detail))?;
    Ok(Request::Pin {
        chat_id,
        message_id,
        pinned,
        command_id,
    })
}

/// `block_user` or `unblock_user`: a positive `user_id`, not yours (checked by the caller,
/// who knows whose socket it is, and again by the persister).
fn parse_block(blocked: bool, raw: RawFrame) -> Result<Request, FrameError> {
    let action = if blocked {
        "block_user"
    } else {
        "unblock_user"
    };
    let command_id = frame_command_id(raw.command_id)?;
    let user_id = match raw.user_id {
        None => {
            return Err(FrameError::new(
                ErrorCode::MissingField,
                format!("{action} needs user_id"),
            ));
        }
        Some(id) => id,
    };
    rules::positive("user_id", user_id).map_err(|r| FrameError::new(r.code, r.detail))?;
    Ok(Request::Block {
        user_id,
        blocked,
        command_id,
    })
}

/// A group action (`add_members`, `remove_member`, `leave_chat`, `set_member_role`,
/// `update_chat`, `delete_chat`): its fields checked as the persister will; who may is the
/// persister's to decide.
fn parse_group(action: &str, raw: RawFrame) -> Result<GroupRequest, FrameError> {
    let refused = |r: rules::Refusal| FrameError::new(r.code, r.detail);
    let chat_id = positive_chat_id(raw.chat_id, action)?;
    let command_id = frame_command_id(raw.command_id)?;
    let user_id = || match raw.user_id {
        None => Err(FrameError::new(
            ErrorCode::MissingField,
            format!("{action} needs user_id"),
        )),
        Some(id) => rules::members("user_id", &[id])
            .map(|()| id)
            .map_err(refused),
    };
    let change = match action {
        "add_members" => {
            let user_ids = raw.user_ids.clone().unwrap_or_default();
            if user_ids.is_empty() {
                return Err(FrameError::new(
                    ErrorCode::MissingField,
                    "add_members needs user_ids, a non-empty list",
                ));
            }
            rules::members("user_ids", &user_ids).map_err(refused)?;
            GroupChange::AddMembers { user_ids }
        }
        "remove_member" => GroupChange::RemoveMember {
            user_id: user_id()?,
        },
        "leave_chat" => GroupChange::Leave,
        "set_member_role" => {
            let user_id = user_id()?;
            let role = raw.role.as_deref().ok_or_else(|| {
                FrameError::new(ErrorCode::MissingField, "set_member_role needs role")
            })?;
            let role = Role::from_request(role).map_err(refused)?;
            GroupChange::SetRole { user_id, role }
        }
        "update_chat" => {
            if let Some(name) = &raw.name {
                rules::group_name(name).map_err(refused)?;
            }
            if raw.name.is_none() && raw.settings.unwrap_or_default() == SettingsChange::default() {
                return Err(FrameError::new(
                    ErrorCode::MissingField,
                    "update_chat needs name, settings or both",
                ));
            }
            GroupChange::Update {
                name: raw.name,
                settings: raw.settings,
            }
        }
        _ => GroupChange::Delete,
    };
    Ok(GroupRequest {
        chat_id,
        change,
        command_id,
    })
}

/// The `chat_id` an action needs: present and positive.
fn positive_chat_id(chat_id: Option<ChatId>, action: &str) -> Result<ChatId, FrameError> {
    match chat_id {
        None => Err(FrameError::new(
            ErrorCode::MissingField,
            format!("{action} needs chat_id"),
        )),
        Some(id) if id <= 0 => Err(FrameError::new(
            ErrorCode::InvalidField,
            "chat_id must be a positive integer",
        )),
        Some(id) => Ok(id),
    }
}

/// The end of a mute a client asked for: an RFC 3339 time after `now`, or forever when absent.
pub fn mute_until(until: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, FrameError> {
    let Some(until) = until else {
        return Ok(muted_forever());
    };
    let until = DateTime::parse_from_rfc3339(until.trim())
        .map_err(|e| {
            FrameError::new(
                ErrorCode::InvalidField,
                format!("until must be an RFC 3339 time such as 2026-12-24T18:00:00Z: {e}"),
            )
        })?
        .to_utc();
    rules::muted_until(until).map_err(|r| FrameError::new(r.code, r.detail))?;
    if until <= now {
        return Err(FrameError::new(
            ErrorCode::InvalidField,
            "until has passed: give a time to come, or unmute",
        ));
    }
    Ok(until)
}

/// A cursor a client sent: 0 or a positive integer.
pub fn cursor(since: i64) -> Result<u64, FrameError> {
    u64::try_from(since).map_err(|_| {
        FrameError::new(
            ErrorCode::InvalidField,
            "since must be a cursor: 0 or a positive integer from a frame's `cursor`",
        )
    })
}

/// A message id a frame names: present and positive.
fn message_id(message_id: Option<MessageId>) -> Result<MessageId, FrameError> {
    match message_id {
        None => Err(FrameError::new(
            ErrorCode::MissingField,
            "message_id is required",
        )),
        Some(id) if id <= 0 => Err(FrameError::new(
            ErrorCode::InvalidField,
            "message_id must be a positive integer",
        )),
        Some(id) => Ok(id),
    }
}

/// The `command_id` of a frame that changes a message: the client's (checked like every
/// command id), or a new one.
/// The frame's `command_id` when it is one the rules accept: what a refusal of the frame
/// names, so the client knows which change failed.
fn valid_command_id(raw: &RawFrame) -> Option<String> {
    raw.command_id
        .clone()
        .filter(|id| rules::command_id(id).is_ok())
}

fn parse_mute(raw: RawFrame, mute: bool) -> Result<Request, FrameError> {
    let action = if mute { "mute" } else { "unmute" };
    Ok(Request::Mute {
        chat_id: positive_chat_id(raw.chat_id, action)?,
        until: if mute {
            Some(mute_until(raw.until.as_deref(), Utc::now())?)
        } else {
            None
        },
        mute_mentions: mute && raw.mute_mentions.unwrap_or(false),
        command_id: frame_command_id(raw.command_id)?,
    })
}

fn parse_delete(raw: RawFrame) -> Result<Request, FrameError> {
    Ok(Request::Delete {
        chat_id: positive_chat_id(raw.chat_id, "delete_message")?,
        message_id: message_id(raw.message_id)?,
        command_id: frame_command_id(raw.command_id)?,
    })
}

fn parse_react(raw: RawFrame, add: bool) -> Result<Request, FrameError> {
    let action = if add { "react" } else { "unreact" };
    let chat_id = positive_chat_id(raw.chat_id, action)?;
    let message_id = message_id(raw.message_id)?;
    let command_id = frame_command_id(raw.command_id)?;
    let emoji = raw.emoji.ok_or_else(|| {
        FrameError::new(ErrorCode::MissingField, format!("{action} needs an emoji"))
    })?;
    rules::emoji(&emoji).map_err(|r| FrameError::new(r.code, r.detail))?;
    Ok(Request::React {
        chat_id,
        message_id,
        emoji,
        add,
        command_id,
    })
}

/// The client's `command_id` of a frame, checked like every command id; `None` when it gave
/// none (the command then gets one the client never hears of).
fn frame_command_id(command_id: Option<String>) -> Result<Option<String>, FrameError> {
    command_id
        .map(|id| {
            rules::command_id(&id)
                .map(|()| id)
                .map_err(|r| FrameError::new(r.code, r.detail))
        })
        .transpose()
}

fn parse_edit(raw: RawFrame, max_content_chars: usize) -> Result<EditRequest, FrameError> {
    let chat_id = positive_chat_id(raw.chat_id, "edit_message")?;
    let message_id = message_id(raw.message_id)?;
    let command_id = frame_command_id(raw.command_id)?;
    if raw.file_id.is_some() || raw.file_url.is_some() || raw.content_type.is_some() {
        return Err(FrameError::new(
            ErrorCode::NotEditable,
            "an edit changes the text only; a message's file cannot be edited",
        ));
    }
    let content = raw
        .content
        .ok_or_else(|| FrameError::new(ErrorCode::MissingField, "edit_message needs content"))?;
    rules::edited_content(&content, max_content_chars)
        .map_err(|r| FrameError::new(r.code, r.detail))?;
    Ok(EditRequest {
        chat_id,
        message_id,
        content,
        command_id,
    })
}

fn mark(raw: RawFrame, status: ReceiptStatus) -> Result<Request, FrameError> {
    let message_id = raw
        .message_id
        .ok_or_else(|| FrameError::new(ErrorCode::MissingField, "message_id is required"))?;
    if message_id <= 0 {
        return Err(FrameError::new(
            ErrorCode::InvalidField,
            "message_id must be a positive integer",
        ));
    }
    Ok(Request::Mark {
        message_id,
        chat_id: raw.chat_id,
        status,
    })
}

fn parse_send(raw: RawFrame, max_content_chars: usize) -> Result<SendRequest, FrameError> {
    let client_msg_id = match raw.client_msg_id {
        Some(id) if id.is_empty() || id.chars().count() > MAX_CLIENT_MSG_ID => {
            return Err(FrameError::new(
                ErrorCode::InvalidField,
                format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} characters"),
            ));
        }
        Some(id) => id,
        None => uuid::Uuid::now_v7().to_string(),
    };
    let fail =
        |code, detail: String| Err(FrameError::new(code, detail).about(Some(&client_msg_id)));
    if raw.chat_id.is_none() && raw.receiver_id.is_none() {
        return fail(
            ErrorCode::MissingField,
            "chat_id or receiver_id is required".into(),
        );
    }
    if raw.chat_id.is_some_and(|id| id <= 0) || raw.receiver_id.is_some_and(|id| id <= 0) {
        return fail(
            ErrorCode::InvalidField,
            "chat_id and receiver_id must be positive integers".into(),
        );
    }
    let content_type = match raw.content_type.as_deref() {
        None => ContentType::Text,
        Some(name) => match ContentType::parse(name) {
            Some(t) => t,
            None => {
                return fail(
                    ErrorCode::InvalidField,
                    format!("content_type {name:?} is not text, audio, video, image or file"),
                );
            }
        },
    };
    let file_url = raw.file_url.filter(|u| !u.trim().is_empty());
    // The Python service's clients send the `file_url` of their upload: it names the file.
    let file_id = raw
        .file_id
        .filter(|id| !id.trim().is_empty())
        .or_else(|| file_url.as_deref().and_then(crate::media::file_id_from_url));
    if file_id.as_ref().is_some_and(|id| id.len() > 64) {
        return fail(
            ErrorCode::InvalidField,
            "file_id is longer than 64 characters".into(),
        );
    }
    for (name, id) in [
        ("reply_to_message_id", raw.reply_to_message_id),
        ("forwarded_from", raw.forwarded_from),
    ] {
        if id.is_some_and(|id| id <= 0) {
            return fail(
                ErrorCode::InvalidField,
                format!("{name} must be a positive message id"),
            );
        }
    }
    let content = raw.content.unwrap_or_default();
    // A forward without text or file copies the original's.
    if content.trim().is_empty()
        && file_url.is_none()
        && file_id.is_none()
        && raw.forwarded_from.is_none()
    {
        return fail(ErrorCode::EmptyContent, "content is empty".into());
    }
    // The persister's rules, checked before publishing so the client hears at once.
    let checked = rules::content(&content, max_content_chars)
        .and_then(|()| rules::client_msg_id(&client_msg_id))
        .and_then(|()| file_url.as_deref().map_or(Ok(()), rules::file_url))
        .and_then(|()| file_id.as_deref().map_or(Ok(()), rules::file_id))
        .and_then(|()| rules::mentions(raw.mentions.as_deref().unwrap_or_default()));
    if let Err(refusal) = checked {
        return fail(refusal.code, refusal.detail);
    }
    Ok(SendRequest {
        chat_id: raw.chat_id,
        receiver_id: if raw.chat_id.is_some() {
            None
        } else {
            raw.receiver_id
        },
        content,
        content_type,
        file_url: if file_id.is_some() { None } else { file_url },
        file_id,
        client_msg_id,
        reply_to_message_id: raw.reply_to_message_id,
        forwarded_from: raw.forwarded_from,
        mentions: raw.mentions.unwrap_or_default(),
    })
}

impl FrameError {
    /// The `error` frame for this error.
    pub fn render(&self) -> Utf8Bytes {
        ServerFrame::Error {
            code: self.code,
            detail: &self.detail,
            error: &self.detail,
            client_msg_id: self.client_msg_id.as_deref(),
            command_id: self.command_id.as_deref(),
            retry_after_ms: self.retry_after_ms,
        }
        .render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_frames_still_parse() {
        let r = parse(
            r#"{"action":"send_message","receiver_id":2,"content":"hi","content_type":"text"}"#,
            100,
        )
        .unwrap();
        let Request::Send(s) = r else { panic!() };
        assert_eq!(s.receiver_id, Some(2));
        assert_eq!(s.content_type, ContentType::Text);
        assert!(!s.client_msg_id.is_empty());
        assert_eq!(
            parse(r#"{"action":"acknowledge","message_id":42}"#, 100).unwrap(),
            Request::Mark {
                message_id: 42,
                chat_id: None,
                status: ReceiptStatus::Read
            }
        );
    }

    #[test]
    fn bad_frames_get_precise_codes() {
        let code = |t: &str| parse(t, 5).unwrap_err().code;
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code("[1, 2"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"action": 5, "#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"action": 5}"#), ErrorCode::InvalidField);
        assert_eq!(code(r#"{"content":"x"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"action":"dance"}"#), ErrorCode::UnknownAction);
        assert_eq!(
            code(r#"{"action":"send_message","content":"x"}"#),
            ErrorCode::MissingField
        );
        assert_eq!(
            code(r#"{"action":"send_message","chat_id":1,"content":"  "}"#),
            ErrorCode::EmptyContent
        );
        assert_eq!(
            code(r#"{"action":"send_message","chat_id":1,"content":"toolong"}"#),
            ErrorCode::ContentTooLong
        );
        assert_eq!(
            code(r#"{"action":"send_message","chat_id":"x","content":"a"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"action":"send_message","chat_id":1,"content":"a","content_type":"gif"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(code(r#"{"action":"acknowledge"}"#), ErrorCode::MissingField);
        assert_eq!(
            code(r#"{"action":"refresh_token"}"#),
            ErrorCode::MissingField
        );
        assert_eq!(
            code(r#"{"action":"refresh_token","token":" "}"#),
            ErrorCode::MissingField
        );
        assert_eq!(
            code(r#"{"action":"refresh_token","token":7}"#),
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn typing_and_presence_need_a_positive_chat() {
        let code = |t: &str| parse(t, 5).unwrap_err().code;
        assert_eq!(
            parse(r#"{"action":"typing","chat_id":7}"#, 5).unwrap(),
            Request::Typing {
                chat_id: 7,
                state: TypingState::Started
            }
        );
        assert_eq!(
            parse(r#"{"action":"typing","chat_id":7,"state":"stopped"}"#, 5).unwrap(),
            Request::Typing {
                chat_id: 7,
                state: TypingState::Stopped
            }
        );
        assert_eq!(
            parse(r#"{"action":"presence","chat_id":7}"#, 5).unwrap(),
            Request::Presence { chat_id: 7 }
        );
        assert_eq!(code(r#"{"action":"typing"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"action":"presence"}"#), ErrorCode::MissingField);
        assert_eq!(
            code(r#"{"action":"typing","chat_id":-1}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"action":"presence","chat_id":0}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"action":"typing","chat_id":"7"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"action":"typing","chat_id":99999999999999999999}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"action":"typing","chat_id":7,"state":"dancing"}"#),
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn sync_takes_a_cursor_and_refuses_anything_else() {
        assert_eq!(
            parse(r#"{"action":"sync","since":118,"epoch":"e1"}"#, 100),
            Ok(Request::Sync {
                since: 118,
                epoch: Some("e1".into())
            })
        );
        assert_eq!(
            parse(r#"{"action":"sync","since":0}"#, 100),
            Ok(Request::Sync {
                since: 0,
                epoch: None
            })
        );
        for (frame, code) in [
            (r#"{"action":"sync"}"#, "missing_field"),
            (r#"{"action":"sync","since":-1}"#, "invalid_field"),
            (r#"{"action":"sync","since":"1"}"#, "invalid_field"),
            (r#"{"action":"sync","since":1.5}"#, "invalid_field"),
            (
                r#"{"action":"sync","since":99999999999999999999}"#,
                "invalid_field",
            ),
        ] {
            assert_eq!(
                parse(frame, 100).unwrap_err().code.as_str(),
                code,
                "{frame}"
            );
        }
    }

    #[test]
    fn edit_message_needs_a_message_and_text_only() {
        let edit = parse(
            r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":"new","command_id":"e1"}"#,
            10,
        )
        .unwrap();
        assert_eq!(
            edit,
            Request::Edit(EditRequest {
                chat_id: 7,
                message_id: 9,
                content: "new".into(),
                command_id: Some("e1".into())
            })
        );
        for (frame, code) in [
            (
                r#"{"action":"edit_message","message_id":9,"content":"a"}"#,
                "missing_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"content":"a"}"#,
                "missing_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9}"#,
                "missing_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":-9,"content":"a"}"#,
                "invalid_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":0,"message_id":9,"content":"a"}"#,
                "invalid_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":" "}"#,
                "empty_content",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":"a\u0000"}"#,
                "invalid_field",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":"elevenchars"}"#,
                "content_too_long",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":"a","file_id":"f"}"#,
                "not_editable",
            ),
            (
                r#"{"action":"edit_message","chat_id":7,"message_id":9,"content":"a","command_id":""}"#,
                "invalid_field",
            ),
        ] {
            assert_eq!(parse(frame, 10).unwrap_err().code.as_str(), code, "{frame}");
        }
    }

    #[test]
    fn group_actions_parse_to_their_change_or_a_precise_code() {
        let group = |t: &str| match parse(t, 5) {
            Ok(Request::Group(request)) => request,
            other => panic!("{t}: {other:?}"),
        };
        let add =
            group(r#"{"action":"add_members","chat_id":7,"user_ids":[2,3],"command_id":"g"}"#);
        assert_eq!(
            (add.chat_id, add.change, add.command_id.as_deref()),
            (
                7,
                GroupChange::AddMembers {
                    user_ids: vec![2, 3]
                },
                Some("g")
            )
        );
        assert_eq!(
            group(r#"{"action":"set_member_role","chat_id":7,"user_id":9223372036854775807,"role":"owner"}"#)
                .change,
            GroupChange::SetRole {
                user_id: i64::MAX,
                role: Role::Owner
            }
        );
        assert_eq!(
            group(r#"{"action":"update_chat","chat_id":7,"settings":{"members_can_add":true}}"#)
                .change,
            GroupChange::Update {
                name: None,
                settings: Some(SettingsChange {
                    members_can_add: Some(true)
                })
            }
        );
        assert_eq!(
            group(r#"{"action":"leave_chat","chat_id":7}"#).change,
            GroupChange::Leave
        );
        assert_eq!(
            group(r#"{"action":"delete_chat","chat_id":7}"#).change,
            GroupChange::Delete
        );

        let code = |t: &str| parse(t, 5).unwrap_err().code;
        for (frame, expected) in [
            (
                r#"{"action":"add_members","chat_id":7}"#,
                ErrorCode::MissingField,
            ),
            (
                r#"{"action":"add_members","chat_id":7,"user_ids":[]}"#,
                ErrorCode::MissingField,
            ),
            (
                r#"{"action":"add_members","chat_id":7,"user_ids":[-1]}"#,
                ErrorCode::InvalidMember,
            ),
            (
                r#"{"action":"add_members","chat_id":0,"user_ids":[2]}"#,
                ErrorCode::InvalidField,
            ),
            (
                r#"{"action":"remove_member","chat_id":7,"user_id":0}"#,
                ErrorCode::InvalidMember,
            ),
            (
                r#"{"action":"set_member_role","chat_id":7,"user_id":2,"role":"king"}"#,
                ErrorCode::InvalidRole,
            ),
            (
                r#"{"action":"set_member_role","chat_id":7,"user_id":2}"#,
                ErrorCode::MissingField,
            ),
            (
                r#"{"action":"update_chat","chat_id":7,"settings":{}}"#,
                ErrorCode::MissingField,
            ),
            (
                r#"{"action":"update_chat","chat_id":7,"name":" "}"#,
                ErrorCode::InvalidName,
            ),
            (
                r#"{"action":"update_chat","chat_id":7,"settings":{"members_can_add":1}}"#,
                ErrorCode::InvalidField,
            ),
            (
                r#"{"action":"delete_chat","chat_id":7,"command_id":"a\u0000"}"#,
                ErrorCode::InvalidField,
            ),
        ] {
            assert_eq!(code(frame), expected, "{frame}");
        }
        // A refusal names the frame's command_id when it is a valid one.
        let refused = parse(r#"{"action":"leave_chat","command_id":"l1"}"#, 5).unwrap_err();
        assert_eq!(refused.command_id.as_deref(), Some("l1"));
    }

    #[test]
    fn refresh_token_carries_the_token() {
        assert_eq!(
            parse(r#"{"action":"refresh_token","token":"a.b.c"}"#, 5).unwrap(),
            Request::RefreshToken {
                token: "a.b.c".into()
            }
        );
    }

    #[test]
    fn rate_limited_errors_say_when_to_retry() {
        let frame = FrameError::rate_limited("messages", 50)
            .about(Some("c9"))
            .render();
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["retry_after_ms"], 50);
        assert_eq!(v["client_msg_id"], "c9");
        let plain = FrameError::new(ErrorCode::BadJson, "nope").render();
        assert!(!plain.as_str().contains("retry_after_ms"), "{plain}");
    }

    #[test]
    fn error_frame_repeats_detail_under_error() {
        let frame = FrameError::new(ErrorCode::BadJson, "nope")
            .about(Some("c1"))
            .render();
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(v["action"], "error");
        assert_eq!(v["error"], "nope");
        assert_eq!(v["detail"], "nope");
        assert_eq!(v["client_msg_id"], "c1");
    }
}
