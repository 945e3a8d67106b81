//! Presence: who of a chat's members is online now, and when the others were last seen.

use crate::limits::Limit;
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Path};
use crate::{
    auth::AuthUser, domain::ChatId, domain::UserId, presence::MemberPresence, state::AppState,
    store::queries,
};

/// `Ok` when `user` is a member of `chat_id`; 404 for a chat that does not exist, 403 for one
/// the user is not in.
pub async fn member_of(state: &AppState, chat_id: ChatId, user: UserId) -> Result<(), ApiError> {
    if queries::chat(&state.db, chat_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("chat {chat_id} does not exist")));
    }
    if queries::membership(&state.db, chat_id, user)
        .await?
        .is_none()
    {
        return Err(ApiError::Forbidden(format!(
            "you are not a member of chat {chat_id}"
        )));
    }
    Ok(())
}

/// A chat's members and their presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatPresence {
    pub chat_id: ChatId,
    /// `false` with `PRESENCE=off`: nothing is tracked and `members` is empty.
    pub enabled: bool,
    pub members: Vec<MemberPresence>,
}

/// The presence of each member of a chat I belong to (the same as the `presence` frame); a
/// member who blocks me is shown offline and never seen.
#[utoipa::path(get, path = "/chats/{chat_id}/presence", tag = "chats",
    params(("chat_id" = i64, Path, description = "The chat")),
    responses(
        (status = 200, body = ChatPresence),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of the chat", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many presence queries", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn chat_presence(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
) -> Result<Json<ChatPresence>, ApiError> {
    state.limits.check(Limit::PresenceQueries, user)?;
    member_of(&state, chat_id, user).await?;
    let members = state
        .presence
        .of_chat_seen_by(&state.db, chat_id, user)
        .await?;
    Ok(Json(ChatPresence {
        chat_id,
        enabled: state.presence.enabled(),
        members,
    }))
}

/// The presence route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chat_presence))
}
