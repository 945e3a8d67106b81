//! History (a chat's messages and my private chat with one user, with cursor pagination) and
//! changes to one message: its author edits it; staff read the text it had before.

use crate::limits::Limit;
use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::{Path, Query},
};
use crate::{
    auth::{AuthUser, StaffUser},
    bus::messages::{Command, DeleteMessage, EditMessage, Outcome, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, MessageStatus, MessageView, rfc3339},
    state::AppState,
    store::{chat, queries},
};

/// Largest page.
pub const MAX_LIMIT: u64 = 100;

/// Cursor pagination: `before` gives older pages, `after` newer ones.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Only messages with a smaller id (the oldest id of the previous page).
    pub before: Option<MessageId>,
    /// Only messages with a larger id: the `limit` oldest of them, still newest first.
    pub after: Option<MessageId>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<u64>,
}

impl HistoryQuery {
    /// The page size, or 422 when out of range.
    pub fn checked_limit(&self) -> Result<u64, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(limit)
    }
}

/// A message in history, with its status for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryMessage {
    /// Same as `message_id` (the Python service's clients read `id`).
    pub id: MessageId,
    #[serde(flatten)]
    pub message: MessageView,
    pub status: MessageStatus,
    /// Per emoji, how many reacted and whether I did; empty for none (and for a tombstone).
    pub reactions: Vec<queries::ReactionCount>,
    /// A tombstone's deleter: its author, or an admin or the owner of the group ("deleted by
    /// an admin"); absent for a live message, Django's moderation, and messages deleted
    /// before jetchat recorded who.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<UserId>,
}

/// One page of `chat`'s history as `user` sees it; 403 unless `user` is a member.
pub async fn page(
    state: &AppState,
    chat: &chat::Model,
    user: UserId,
    query: &HistoryQuery,
) -> Result<Vec<HistoryMessage>, ApiError> {
    let limit = query.checked_limit()?;
    let members = queries::members(&state.db, [chat.id]).await?;
    if !members.iter().any(|m| m.user_id == user) {
        return Err(ApiError::Forbidden(format!(
            "you are not a member of chat {}",
            chat.id
        )));
    }
    let rows = queries::history(&state.db, chat.id, query.before, query.after, limit).await?;
    let ids: Vec<MessageId> = rows.iter().map(|m| m.id).collect();
    let mut reactions = queries::reactions(&state.db, &ids, user).await?;
    let tombstones: Vec<MessageId> = rows
        .iter()
        .filter(|m| m.deleted_at.is_some())
        .map(|m| m.id)
        .collect();
    let deleters = queries::deleters(&state.db, &tombstones).await?;
    let now = chrono::Utc::now();
    Ok(rows
        .iter()
        .map(|m| {
            let mut message = m.view(chat.private_key.as_deref());
            state.media.signer.sign_view(&mut message, now);
            HistoryMessage {
                id: m.id,
                status: queries::status(m, user, &members),
                reactions: reactions.remove(&m.id).unwrap_or_default(),
                deleted_by: deleters.get(&m.id).copied(),
                message,
            }
        })
        .collect())
}

/// My private chat with `user_id`, newest first (empty when we never talked).
#[utoipa::path(get, path = "/messages/{user_id}", tag = "messages",
    params(("user_id" = i64, Path, description = "The other user"), HistoryQuery),
    responses(
        (status = 200, body = Vec<HistoryMessage>),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn direct_messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(other): Path<UserId>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryMessage>>, ApiError> {
    query.checked_limit()?;
    match queries::private_chat(&state.db, user, other).await? {
        Some(chat) if other != user => page(&state, &chat, user, &query).await.map(Json),
        _ => Ok(Json(Vec::new())),
    }
}

/// A message's new text.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// The new text: what a new message's text may be (1 to `MAX_CONTENT_CHARS` characters,
    /// no NUL).
    pub content: String,
    /// Your id for this edit: a retry with the same id is applied once (one is made up when
    /// absent).
    #[serde(default)]
    pub command_id: Option<String>,
}

/// The text a message had before an edit replaced it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revision {
    pub content: String,
    pub editor_id: UserId,
    /// When the edit replaced it, UTC.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub replaced_at: DateTime<Utc>,
}

/// One stored message of `chat_id` and the caller's membership of its chat; 404 for a message
/// of another chat, 403 for someone not in the chat.
pub(super) async fn message_of_chat(
    state: &AppState,
    user: UserId,
    chat_id: ChatId,
    message_id: MessageId,
) -> Result<crate::store::message::Model, ApiError> {
    let not_found = || ApiError::NotFound(format!("message {message_id} is not in chat {chat_id}"));
    if queries::membership(&state.db, chat_id, user)
        .await?
        .is_none()
    {
        return Err(ApiError::Forbidden(format!(
            "you are not a member of chat {chat_id}"
        )));
    }
    match queries::message(&state.db, message_id).await? {
        Some(m) if m.chat_id == chat_id => Ok(m),
        _ => Err(not_found()),
    }
}

/// Replaces the text of one of my messages (through the persister, like a new message); the
/// answer is the message as history now shows it.
#[utoipa::path(patch, path = "/chats/{chat_id}/messages/{message_id}", tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message")),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "Edited", body = MessageView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not your message, or not your chat", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Bad text, a deleted or file-only message, or past `EDIT_WINDOW`", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn edit_message(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id)): Path<(ChatId, MessageId)>,
    super::extract::Json(body): super::extract::Json<EditMessageRequest>,
) -> Result<Json<MessageView>, ApiError> {
    state.limits.check(Limit::Messages, user)?;
    let command_id = body
        .command_id
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let command = EditMessage {
        v: VERSION,
        command_id: command_id.clone(),
        chat_id,
        message_id,
        editor_id: user,
        content: body.content,
        reply_to: None,
    };
    // The persister checks the same; refused here, the caller hears at once.
    let rules = crate::persister::batch::Rules::from_config(&state.config);
    rules
        .check(&Command::EditMessage(command.clone()))
        .map_err(|refusal| ApiError::Invalid(refusal.detail))?;
    message_of_chat(&state, user, chat_id, message_id).await?;
    apply(
        &state,
        chat_id,
        user,
        &command_id,
        "edit_message",
        |reply_to| {
            Command::EditMessage(EditMessage {
                reply_to: Some(reply_to),
                ..command
            })
        },
    )
    .await?;
    let stored = message_of_chat(&state, user, chat_id, message_id).await?;
    let chat = queries::chat(&state.db, chat_id).await?;
    let mut view = stored.view(chat.and_then(|c| c.private_key).as_deref());
    state.media.signer.sign_view(&mut view, Utc::now());
    Ok(Json(view))
}

/// Publishes a change (`kind`) to a message and waits for the persister's outcome.
pub(super) async fn apply(
    state: &AppState,
    chat_id: ChatId,
    user: UserId,
    command_id: &str,
    kind: &str,
    command: impl FnOnce(String) -> Command,
) -> Result<(), ApiError> {
    let outcome = state
        .bus
        .command(
            state.bus.subjects.admin_command(chat_id, kind),
            // Per request: it guards this request's own publish retries, while a repeat of the
            // same `command_id` reaches the persister and is answered (applied once).
            format!("{kind}:{user}:{command_id}:{}", uuid::Uuid::now_v7()),
            command,
            state.config.command_timeout,
        )
        .await?;
    match outcome {
        Outcome::Applied { .. } => Ok(()),
        Outcome::Rejected { code, detail, .. } => Err(ApiError::refused(code, detail)),
        Outcome::ChatReady { .. } | Outcome::UploadReady { .. } | Outcome::Muted { .. } => {
            Err(ApiError::Internal(anyhow::anyhow!(
                "a {kind} command was answered with another outcome"
            )))
        }
    }
}

/// Deletes one of my messages (through the persister): history keeps a tombstone
/// (`deleted: true`, no content, no file), members get `message_deleted`, its upload is no
/// longer served to them. Deleting it again answers the same.
#[utoipa::path(delete, path = "/chats/{chat_id}/messages/{message_id}", tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message")),
    responses(
        (status = 204, description = "Deleted (or deleted before)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not your message, or not your chat", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn delete_message(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id)): Path<(ChatId, MessageId)>,
) -> Result<axum::http::StatusCode, ApiError> {
    state.limits.check(Limit::Messages, user)?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let command = DeleteMessage {
        v: VERSION,
        command_id: command_id.clone(),
        chat_id,
        message_id,
        deleter_id: Some(user),
        reply_to: None,
    };
    crate::persister::batch::Rules::default()
        .check(&Command::DeleteMessage(command.clone()))
        .map_err(|refusal| ApiError::Invalid(refusal.detail))?;
    message_of_chat(&state, user, chat_id, message_id).await?;
    apply(
        &state,
        chat_id,
        user,
        &command_id,
        "delete_message",
        |reply_to| {
            Command::DeleteMessage(DeleteMessage {
                reply_to: Some(reply_to),
                ..command
            })
        },
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The texts a message had before each edit, oldest first: for Django staff (a token with
/// `"is_staff": true`), never for members.
#[utoipa::path(get, path = "/chats/{chat_id}/messages/{message_id}/revisions", tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message")),
    responses(
        (status = 200, body = Vec<Revision>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`chat_id` or `message_id` is no 64-bit integer", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revisions(
    State(state): State<AppState>,
    StaffUser(_staff): StaffUser,
    Path((chat_id, message_id)): Path<(ChatId, MessageId)>,
) -> Result<Json<Vec<Revision>>, ApiError> {
    match queries::message(&state.db, message_id).await? {
        Some(m) if m.chat_id == chat_id => {}
        _ => {
            return Err(ApiError::NotFound(format!(
                "message {message_id} is not in chat {chat_id}"
            )));
        }
    }
    let rows = queries::revisions(&state.db, message_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| Revision {
                content: r.content,
                editor_id: r.editor_id,
                replaced_at: r.replaced_at,
            })
            .collect(),
    ))
}

/// The message routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(direct_messages))
        .routes(routes!(edit_message, delete_message))
        .routes(routes!(revisions))
}
