//! History: a chat's messages and my private chat with one user, with cursor pagination.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::{Path, Query},
};
use crate::{
    app::AppState,
    auth::{AuthUser, UserId},
    domain::{MessageId, MessageStatus, MessageView},
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
    let now = chrono::Utc::now();
    Ok(rows
        .iter()
        .map(|m| {
            let mut message = m.view(chat.private_key.as_deref());
            state.media.signer.sign_view(&mut message, now);
            HistoryMessage {
                id: m.id,
                status: queries::status(m, user, &members),
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

/// The message routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(direct_messages))
}
