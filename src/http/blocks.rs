//! Blocks: `PUT /users/me/blocks/{user_id}` blocks a user, `DELETE` lifts the block, `GET
//! /users/me/blocks` lists mine. Each change is a `set_block` command applied by the
//! persister like every change, so REST, the socket and Django's NATS commands answer alike.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Path};
use crate::{
    auth::AuthUser,
    bus::messages::{Command, Outcome, SetBlock, VERSION},
    domain::{UserId, rfc3339},
    limits::Limit,
    persister::batch::Rules,
    state::AppState,
    store::blocks,
};

/// A user I block.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedUser {
    pub user_id: UserId,
    /// When I blocked them.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub blocked_at: DateTime<Utc>,
}

/// Blocks a user: they can no longer open a private chat with me, write in ours, or add me
/// to a group (`blocked`), and see my presence as unknown. My side is unchanged; group
/// messages are not hidden. Blocking again changes nothing; the user need not share a chat
/// with me. My sockets get `block_changed`.
#[utoipa::path(put, path = "/users/me/blocks/{user_id}", tag = "users",
    params(("user_id" = i64, Path, description = "The user to block")),
    responses(
        (status = 204, description = "Blocked (or blocked before)"),
        (status = 401, body = ErrorBody),
        (status = 422, description = "`invalid_field`: a user id that is not positive, not a 64-bit integer, or yours", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, blocked_id))]
pub async fn block_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(blocked_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    set_block(&state, user, blocked_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts my block of a user (nothing to lift changes nothing).
#[utoipa::path(delete, path = "/users/me/blocks/{user_id}", tag = "users",
    params(("user_id" = i64, Path, description = "The user to unblock")),
    responses(
        (status = 204, description = "Not blocked (any more)"),
        (status = 401, body = ErrorBody),
        (status = 422, description = "`invalid_field`: a user id that is not positive, not a 64-bit integer, or yours", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, blocked_id))]
pub async fn unblock_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(blocked_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    set_block(&state, user, blocked_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users I block, oldest block first.
#[utoipa::path(get, path = "/users/me/blocks", tag = "users",
    responses(
        (status = 200, body = Vec<BlockedUser>),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn list_blocks(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<BlockedUser>>, ApiError> {
    let rows = blocks::blocked_by(&state.db, user).await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| BlockedUser {
                user_id: row.blocked_id,
                blocked_at: row.created_at,
            })
            .collect(),
    ))
}

/// Publishes `user`'s block of `blocked_id` (or its lifting) and waits until it is applied.
async fn set_block(
    state: &AppState,
    user: UserId,
    blocked_id: UserId,
    blocked: bool,
) -> Result<(), ApiError> {
    state.limits.check(Limit::Messages, user)?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let command = |reply_to: Option<String>| {
        Command::SetBlock(SetBlock {
            v: VERSION,
            command_id: command_id.clone(),
            user_id: user,
            blocked_id,
            blocked,
            reply_to,
        })
    };
    Rules::default()
        .check(&command(None))
        .map_err(ApiError::Rejected)?;
    let outcome = state
        .bus
        .command(
            state.bus.subjects.set_block_command(),
            format!("block:{command_id}"),
            |reply_to| command(Some(reply_to)),
            state.config.command_timeout,
        )
        .await?;
    match outcome {
        Outcome::Applied { .. } => Ok(()),
        Outcome::Rejected { code, detail, .. } => Err(ApiError::refused(code, detail)),
        Outcome::ChatReady { .. } | Outcome::UploadReady { .. } | Outcome::Muted { .. } => {
            Err(ApiError::Internal(anyhow::anyhow!(
                "a set_block command was answered with another outcome"
            )))
        }
    }
}

/// The block routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_blocks))
        .routes(routes!(block_user, unblock_user))
}
