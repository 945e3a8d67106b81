//! `GET /ws/chat`: the handshake that opens a socket: origin, token, the socket limit and the
//! catch-up asked for are checked here, then [`crate::gateway`] serves it.

use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    auth::{AuthError, bearer_token},
    gateway::{protocol, session, socket, sync},
    http::{ApiError, extract::Query},
    origins::{self, AllowedOrigins},
    state::AppState,
};

/// The query of `/ws/chat`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WsParams {
    /// The access token (browsers cannot set headers on a WebSocket).
    token: Option<String>,
    /// The cursor of the last frame the client got: everything it missed since is sent
    /// first, then `synced` (docs/protocol.md, "Reconnect without gaps").
    since: Option<i64>,
    /// The epoch that cursor came with (from `synced` or `unread`): a cursor of another
    /// database is answered with `resync_required`.
    epoch: Option<String>,
}

/// Opens a chat WebSocket.
///
/// A browser's `Origin` must be the page jetchat serves itself or one listed in
/// `CORS_ALLOWED_ORIGINS`, else 403; clients that send no `Origin` (apps, servers) are not
/// concerned. The token comes from `?token=` or `Authorization: Bearer`; a missing, expired, refresh or
/// badly signed token is refused with 401 before the upgrade, and so with 429 is a socket
/// beyond `MAX_SOCKETS_PER_USER` on this server. The socket lives until the token's `exp`
/// (`refresh_token` extends it). The frames are described in `docs/protocol.md`.
#[utoipa::path(
    get,
    path = "/ws/chat",
    tag = "websocket",
    params(WsParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "Missing or invalid token", body = super::ErrorBody),
        (status = 403, description = "A browser page whose origin is not in `CORS_ALLOWED_ORIGINS`", body = super::ErrorBody),
        (status = 422, description = "`since` is not a cursor (a non-negative 64-bit integer), or a malformed query", body = super::ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = super::ErrorBody),
        (status = 429, description = "The user already has `MAX_SOCKETS_PER_USER` sockets open on this server", body = super::ErrorBody),
        (status = 503, description = "The database is unavailable", body = super::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn ws_chat(
    State(state): State<AppState>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refused) = check_origin(&state.config.cors_allowed_origins, &headers) {
        tracing::info!("socket refused: origin not allowed");
        return refused.into_response();
    }
    let token = params.token.as_deref().or_else(|| bearer_token(&headers));
    let token = match token.map(|t| state.keys.verify_access(t)) {
        Some(Ok(token)) => token,
        Some(Err(e)) => return ApiError::Unauthorized(e).into_response(),
        None => return ApiError::Unauthorized(AuthError::Missing).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::UpgradeRequired(rejection.body_text()).into_response(),
    };
    let sync = match params.since.map(protocol::cursor).transpose() {
        Ok(since) => since.map(|since| sync::SyncRequest {
            since,
            epoch: params.epoch.clone(),
            continued: false,
        }),
        Err(error) => return ApiError::Invalid(error.detail).into_response(),
    };
    let limit = state.config.max_frame_bytes;
    let tracker = state.tracker.clone();
    let user_id = token.user_id;
    crate::gateway::directory::record_claims(&state, user_id, token.profile.as_ref());
    let session = match session::Session::open(state, token, sync).await {
        Ok(session) => Box::new(session),
        Err(session::OpenError::TooManySockets(refused)) => {
            tracing::info!(user_id, "socket refused: too many for the user");
            return ApiError::RateLimited {
                detail: refused.to_string(),
                retry_after: None,
            }
            .into_response();
        }
        Err(error) => {
            tracing::error!(%error, user_id, "cannot open a socket session");
            return ApiError::Unavailable("database unavailable, retry later".into())
                .into_response();
        }
    };
    upgrade
        // The read buffer is per socket, allocated up front and kept (tungstenite's default is
        // 128 KiB). Chat frames are a few hundred bytes; a larger one grows the buffer as it
        // arrives. 1 KiB instead of 4 KiB took an idle socket from ~9.8 to ~7 KB of RSS;
        // 512 B instead of 1 KiB, at 19,000 sockets, from 7,805 to 7,336 B (no CPU cost the
        // cost guard sees: a send frame is ~250 B).
        .read_buffer_size(512)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |ws| tracker.track_future(socket::serve(ws, session)))
}

/// Lets a handshake through when it has no `Origin` (not a browser), comes from a page of
/// jetchat's own host, or from an allowed origin. A browser sends `Origin` on every WebSocket
/// handshake and a page cannot forge it, so this is what stops a page on another site from
/// chatting with a token it got hold of.
fn check_origin(allowed: &AllowedOrigins, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).map_or(&b""[..], |h| h.as_bytes());
    if origins::is_same_origin(origin.as_bytes(), host) || allowed.allows(origin.as_bytes()) {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(origin.as_bytes());
    let shown: String = shown.chars().take(100).collect();
    Err(ApiError::Forbidden(format!(
        "origin {shown:?} may not open sockets here; the operator lists the web app's origin \
         in CORS_ALLOWED_ORIGINS"
    )))
}
