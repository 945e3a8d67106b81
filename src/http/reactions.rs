//! Reactions over REST: add or take back my emoji on a message of one of my chats, through
//! the persister like the socket's `react` and `unreact`.

use crate::limits::Limit;
use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::Path,
    messages::{apply, message_of_chat},
};
use crate::{
    auth::AuthUser,
    bus::messages::{Command, ReactToMessage, VERSION},
    domain::ChatId,
    domain::MessageId,
    domain::UserId,
    state::AppState,
};

/// Checks, publishes and waits for the persister's outcome of a `react` (`add`) or `unreact`.
async fn change(
    state: &AppState,
    user: UserId,
    chat_id: ChatId,
    message_id: MessageId,
    emoji: String,
    add: bool,
) -> Result<StatusCode, ApiError> {
    state.limits.check(Limit::Messages, user)?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let reaction = ReactToMessage {
        v: VERSION,
        command_id: command_id.clone(),
        chat_id,
        message_id,
        user_id: user,
        emoji,
        reply_to: None,
    };
    let wrap = move |reaction| {
        if add {
            Command::React(reaction)
        } else {
            Command::Unreact(reaction)
        }
    };
    crate::persister::batch::Rules::default()
        .check(&wrap(reaction.clone()))
        .map_err(|refusal| ApiError::Invalid(refusal.detail))?;
    message_of_chat(state, user, chat_id, message_id).await?;
    let kind = if add { "react" } else { "unreact" };
    apply(state, chat_id, user, &command_id, kind, |reply_to| {
        wrap(ReactToMessage {
            reply_to: Some(reply_to),
            ..reaction
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reacts to a message with one emoji (URL-encoded in the path); members get
/// `reaction_added`. Reacting again with the same emoji changes nothing (204).
#[utoipa::path(put, path = "/chats/{chat_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message"),
           ("emoji" = String, Path, description = "One grapheme cluster, at most 64 bytes")),
    responses(
        (status = 204, description = "Reacted (or had reacted)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Not one emoji, a deleted message, or already 20 different emoji", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn react(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id, emoji)): Path<(ChatId, MessageId, String)>,
) -> Result<StatusCode, ApiError> {
    change(&state, user, chat_id, message_id, emoji, true).await
}

/// Takes back my emoji on a message; members get `reaction_removed`. Without such a reaction
/// it changes nothing (204).
#[utoipa::path(delete, path = "/chats/{chat_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    params(("chat_id" = i64, Path, description = "The chat"),
           ("message_id" = i64, Path, description = "The message"),
           ("emoji" = String, Path, description = "The emoji, URL-encoded")),
    responses(
        (status = 204, description = "Taken back (or there was none)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, message_id))]
pub async fn unreact(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, message_id, emoji)): Path<(ChatId, MessageId, String)>,
) -> Result<StatusCode, ApiError> {
    change(&state, user, chat_id, message_id, emoji, false).await
}

/// The reaction routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(react, unreact))
}
