//! `GET /sync`: the catch-up of a reconnecting socket, for clients that sync in the
//! background (a service worker, a mobile app woken by a push): the same frames, paged.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Query};
use crate::{
    auth::AuthUser,
    gateway::{
        protocol,
        sync::{self, Plan, SyncRequest},
    },
    state::AppState,
};

/// Most changes one page answers.
const MAX_LIMIT: u64 = 500;

/// Where to read from.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SyncQuery {
    /// The cursor of the last change the client has (a frame's `cursor`, `synced.cursor`,
    /// `unread.cursor`, or a previous answer's `cursor` with `more: false`). Changes
    /// committed within `SYNC_OVERLAP` before it come again.
    pub since: Option<i64>,
    /// Instead of `since`: the `cursor` of the previous page when it said `more: true`; the
    /// next page starts exactly there.
    pub after: Option<i64>,
    /// The epoch the cursor came with; a cursor of another database answers 410.
    pub epoch: Option<String>,
    /// Changes per page, 1 to 500 (default 500).
    pub limit: Option<u64>,
}

/// A page of missed changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncPage {
    /// The frames a socket would have got, oldest first (`new_message`, `status_update`,
    /// `chat_created`, `member_added`, `member_removed`, `member_role_changed`,
    /// `chat_renamed`, `chat_updated`, `chat_deleted`, `message_deleted`, …; see
    /// docs/protocol.md), each with its `cursor`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<serde_json::Value>,
    /// With `more`, the next page is `after=cursor`; without, the client now stands here
    /// (its next `since`).
    pub cursor: u64,
    pub epoch: String,
    /// More changes wait: ask again with `after=cursor`.
    pub more: bool,
}

/// Why a sync cannot be answered exactly.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResyncRequired {
    /// `too_far_behind`, `pruned`, `unknown_cursor` or `other_epoch`.
    pub reason: String,
    pub detail: String,
    /// Resume from here after reloading from history.
    pub cursor: u64,
    pub epoch: String,
}

/// What the caller missed since a cursor: the frames of every change of their chats, in
/// order, paged. A cursor too far behind (over `SYNC_MAX` changes, or older than
/// `SYNC_RETENTION`) or from another database answers 410: reload from history and resume
/// from the answer's `cursor`. Changes committed within `SYNC_OVERLAP` before `since` come
/// again (drop those whose cursor you have).
#[utoipa::path(get, path = "/sync", tag = "sync",
    params(SyncQuery),
    responses(
        (status = 200, description = "Missed changes", body = SyncPage),
        (status = 401, body = ErrorBody),
        (status = 410, description = "Reload from history, then resume from `cursor`", body = ResyncRequired),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn sync_changes(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<SyncQuery>,
) -> Result<axum::response::Response, ApiError> {
    let (since, continued) = match (query.since, query.after) {
        (Some(since), None) => (since, false),
        (None, Some(after)) => (after, true),
        _ => {
            return Err(ApiError::Invalid(
                "give either since (a cursor you have) or after (the previous page's cursor)"
                    .into(),
            ));
        }
    };
    let since = protocol::cursor(since).map_err(|e| ApiError::Invalid(e.detail))?;
    let limit = query.limit.unwrap_or(MAX_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Invalid(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let unavailable = |_| ApiError::Unavailable("database unavailable, retry later".into());
    let request = SyncRequest {
        since,
        epoch: query.epoch,
        continued,
    };
    let plan = sync::plan(&state.db, &state.config, user, &request)
        .await
        .map_err(unavailable)?;
    let (after, point) = match plan {
        Plan::Resync {
            reason,
            detail,
            point,
        } => {
            let body = ResyncRequired {
                reason: reason.into(),
                detail,
                cursor: point.last_cursor,
                epoch: point.epoch,
            };
            return Ok((StatusCode::GONE, Json(body)).into_response());
        }
        Plan::Replay { after, point } => (after, point),
    };
    let page = sync::page(
        &state.db,
        &state.media.signer,
        user,
        after,
        point.last_cursor,
        limit,
    )
    .await
    .map_err(unavailable)?;
    let changes = page
        .rendered
        .iter()
        .filter_map(|r| serde_json::from_str(&r.frame).ok())
        .collect::<Vec<serde_json::Value>>();
    let (cursor, more) = match page.next {
        Some(next) if page.full => (next, true),
        _ => (point.last_cursor, false),
    };
    Ok(Json(SyncPage {
        changes,
        cursor,
        epoch: point.epoch,
        more,
    })
    .into_response())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync_changes))
}
