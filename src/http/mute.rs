//! Mutes: `PUT /chats/{id}/mute` and `DELETE /chats/{id}/mute`, the caller's own, applied by
//! the persister like every change.

use crate::limits::Limit;
use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Path};
use crate::{
    auth::AuthUser,
    bus::messages::{Command, MuteChat, Outcome, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::rfc3339_opt,
    gateway::protocol::mute_until,
    state::AppState,
};

/// How long to mute a chat.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MuteRequest {
    /// Until when (RFC 3339, to come); absent or null: forever (stored as
    /// `9999-12-31T23:59:59Z`).
    #[serde(default)]
    pub until: Option<String>,
    /// Mute the chat's mentions of me too (absent: false: a message that mentions me is still
    /// pushed, `push_needed` with `mentioned`).
    #[serde(default)]
    pub mute_mentions: bool,
}

/// My mute of a chat as stored now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MuteState {
    pub chat_id: ChatId,
    /// Null: not muted.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Whether the mute covers the chat's mentions of me too.
    pub mentions_muted: bool,
}

/// Mutes a chat for me: no push notifications (`push_needed`) for its messages until then,
/// and none later for the messages of the muted period.
#[utoipa::path(put, path = "/chats/{chat_id}/mute", tag = "chats",
    params(("chat_id" = i64, Path, description = "The chat")),
    request_body(content = MuteRequest, description = "An empty body mutes forever"),
    responses(
        (status = 200, body = MuteState),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
        (status = 422, description = "`until` is not a time to come, or `chat_id` is no 64-bit integer",
         body = ErrorBody),
        (status = 429, description = "Over `RATE_MARKS_PER_SEC` (mutes count as marks)", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn mute_chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
    body: axum::body::Bytes,
) -> Result<Json<MuteState>, ApiError> {
    // No body at all mutes forever; a body must be the JSON object.
    let request: MuteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MuteRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Invalid(format!("the body is not a mute request: {e}")))?
    };
    let until = mute_until(request.until.as_deref(), Utc::now())
        .map_err(|e| ApiError::Invalid(e.detail))?;
    set_mute(&state, user, chat_id, Some(until), request.mute_mentions)
        .await
        .map(Json)
}

/// Unmutes a chat for me.
#[utoipa::path(delete, path = "/chats/{chat_id}/mute", tag = "chats",
    params(("chat_id" = i64, Path, description = "The chat")),
    responses(
        (status = 200, body = MuteState),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
        (status = 422, description = "`chat_id` is no 64-bit integer", body = ErrorBody),
        (status = 429, description = "Over `RATE_MARKS_PER_SEC` (mutes count as marks)", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn unmute_chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
) -> Result<Json<MuteState>, ApiError> {
    set_mute(&state, user, chat_id, None, false).await.map(Json)
}

/// Publishes `user`'s mute of `chat_id` and waits for the persister's outcome.
async fn set_mute(
    state: &AppState,
    user: UserId,
    chat_id: ChatId,
    until: Option<DateTime<Utc>>,
    mute_mentions: bool,
) -> Result<MuteState, ApiError> {
    state.limits.check(Limit::Marks, user)?;
    super::presence::member_of(state, chat_id, user).await?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let outcome = state
        .bus
        .command(
            state.bus.subjects.mute_command(chat_id),
            format!("mute:{command_id}"),
            |reply_to| {
                Command::MuteChat(MuteChat {
                    v: VERSION,
                    command_id: command_id.clone(),
                    chat_id,
                    user_id: user,
                    muted_until: until,
                    mute_mentions,
                    reply_to: Some(reply_to),
                })
            },
            state.config.command_timeout,
        )
        .await?;
    match outcome {
        Outcome::Muted {
            chat_id,
            muted_until,
            mentions_muted,
            ..
        } => Ok(MuteState {
            chat_id,
            muted_until,
            mentions_muted,
        }),
        Outcome::Rejected { code, detail, .. } => Err(ApiError::refused(code, detail)),
        Outcome::ChatReady { .. } | Outcome::UploadReady { .. } | Outcome::Applied { .. } => {
            Err(ApiError::Internal(anyhow::anyhow!(
                "a mute_chat command was answered with another outcome"
            )))
        }
    }
}

/// The mute routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mute_chat, unmute_chat))
}
