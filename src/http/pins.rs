//! Pins over REST: `PUT`/`DELETE /chats/{id}/messages/{mid}/pin` pin and unpin a message
//! through the persister like the socket's `pin_message`/`unpin_message`; `GET /chats/{id}`
//! is the chat with its pinned messages.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::Path,
    messages::{apply, message_of_chat},
};
use crate::{
    auth::AuthUser,
    bus::messages::{Command, PinMessage, VERSION},
    domain::{ChatId, ChatView, MessageId, MessageView, UserId, rfc3339},
    limits::Limit,
    persister::batch::Rules,
    state::AppState,
    store::{pins, queries, roles},
};

/// A pinned message: the message as history shows it, who pinned it and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinnedMessage {
    #[serde(flatten)]
    pub message: MessageView,
    /// Who pinned it; null when Django did.
    pub pinned_by: Option<UserId>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub pinned_at: DateTime<Utc>,
}

/// A chat with its pinned messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatDetail {
    #[serde(flatten)]
    pub chat: ChatView,
    /// Its pinned messages that are not deleted, newest pin first (at most 100).
    pub pinned: Vec<PinnedMessage>,
}

/// One of my chats, with its members, roles and pinned messages.
#[utoipa::path(get, path = "/chats/{chat_id}", tag = "chats",
    params(("chat_id" = i64, Path, description = "The chat")),
    responses(
        (status = 200, body = ChatDetail),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn chat_detail(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
) -> Result<Json<ChatDetail>, ApiError> {
    super::presence::member_of(&state, chat_id, user).await?;
    let chat = queries::chat(&state.db, chat_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("chat {chat_id} does not exist")))?;
    let member_ids = queries::members(&state.db, [chat_id])
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let group_roles = roles::of_chat(&state.db, chat_id).await?;
    let now = Utc::now();
    let pinned = pins::of_chat(&state.db, chat_id)
        .await?
        .into_iter()
        .map(|(pin, message)| {
            let mut message = message.view(chat.private_key.as_deref());
            state.media.signer.sign_view(&mut message, now);
            PinnedMessage {
                message,
                pinned_by: pin.pinned_by,
                pinned_at: pin.pinned_at,
            }
        })
        .collect();
    Ok(Json(ChatDetail {
        chat: chat.view(member_ids, &group_roles),
        pinned,
    }))
}

/// Checks, publishes and waits for the persister's outcome of a pin (`pinned`) or unpin.
async fn change(
    state: &AppState,
    user: UserId,
    chat_id: ChatId,
    message_id: MessageId,
    pinned: bool,
) -> Result<StatusCode, ApiError> {
    state.limits.check(Limit::Messages, user)?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let pin = PinMessage {
        v: VERSION,
        command_id: command_id.clone(),
        chat_id,
        message_id,
        pinned,
        actor_id: Some(user),
        reply_to: None,
    };
    Rules::default()
        .check(&Command::PinMessage(pin.clone()))
        .map_err(ApiError::Rejected)?;
    message_of_chat(state, user, chat_id, message_id).await?;
    apply(
        state,
        chat_id,
        user,
        &command_id,
        "pin_message",
        |reply_to| {
            Command::PinMessage(PinMessage {
                reply_to: Some(reply_to),
                ..pin
            })
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pins a message: a group's admins and owner may, in a private chat either member; members
/// get `message_pinned`. Pinning it again changes nothing (204).
#[utoipa::path(put, path = "/chats/{chat_id}/messages/{message_id}/pin", tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message")),
    responses(
        (status = 204, description = "Pinned (or pinned before)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member (`forbidden`, `not_a_member`), or `forbidden`: pinning in a group needs the admin role", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A deleted message (`message_deleted`), 100 pinned already (`too_many_pins`), ids that are not positive 64-bit integers", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn pin_message(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id)): Path<(ChatId, MessageId)>,
) -> Result<StatusCode, ApiError> {
    change(&state, user, chat_id, message_id, true).await
}

/// Unpins a message (the same who may pin); members get `message_unpinned`. A message that
/// is not pinned changes nothing (204).
#[utoipa::path(delete, path = "/chats/{chat_id}/messages/{message_id}/pin", tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message")),
    responses(
        (status = 204, description = "Unpinned (or was not pinned)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn unpin_message(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id)): Path<(ChatId, MessageId)>,
) -> Result<StatusCode, ApiError> {
    change(&state, user, chat_id, message_id, false).await
}

/// The pin routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_detail))
        .routes(routes!(pin_message, unpin_message))
}
