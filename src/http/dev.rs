//! `POST /dev/token`: an access token for any user, for the web app's "sign in as user N"
//! form. Only with `DEV_LOGIN=true` (loopback binds) or `force`; the route does not exist
//! otherwise. Signed like `jetchat token` (HMAC `JWT_SECRET` only).

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiError, extract::Json};
use crate::{domain::UserId, state::AppState};

/// How long a development token lives; the app asks for a new one before it expires.
const TOKEN_MINUTES: i64 = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    user_id: UserId,
}

#[derive(Serialize)]
pub struct DevToken {
    token: String,
    user_id: UserId,
}

/// Mints a token for `user_id` (a positive id, as Django's are).
pub async fn dev_token(
    State(state): State<AppState>,
    Json(request): Json<DevTokenRequest>,
) -> Result<axum::Json<DevToken>, ApiError> {
    if request.user_id < 1 {
        return Err(ApiError::Invalid(
            "user_id must be a positive integer".into(),
        ));
    }
    let token = crate::auth::dev_token(&state.config.jwt, request.user_id, TOKEN_MINUTES)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    Ok(axum::Json(DevToken {
        token,
        user_id: request.user_id,
    }))
}
