//! REST: one file per resource, the error type every handler returns, and the router that
//! registers each route together with its OpenAPI documentation.

pub mod chats;
pub mod cors;
pub mod dev;
pub mod extract;
pub mod health;
pub mod home;
pub mod linger;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod mute;
pub mod presence;
pub mod reactions;
pub mod search;
pub mod sync;
pub mod web;
pub mod ws;

use crate::domain::ErrorCode;
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::{auth::AuthError, state::AppState};

/// Every REST error answers `{"detail": "..."}` (FastAPI's shape, which existing clients read).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// What a handler can fail with; each maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("{0}")]
    UpgradeRequired(String),
    #[error("{0}")]
    Unavailable(String),
    /// Over a per-user limit; `retry_after` becomes the `Retry-After` header when known.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("timed out waiting for the command's outcome; it is queued and will still be applied")]
    Timeout,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// The answer to a command the persister refused with `code`: the caller's fault (422)
    /// unless jetchat itself failed on it (500) or the log disagrees with the database (503).
    pub fn refused(code: ErrorCode, detail: String) -> Self {
        match code.http_status() {
            500 => ApiError::Internal(anyhow::anyhow!(detail)),
            503 => ApiError::Unavailable(detail),
            404 => ApiError::NotFound(detail),
            403 => ApiError::Forbidden(detail),
            401 => ApiError::Unauthorized(crate::auth::AuthError::Invalid),
            429 => ApiError::RateLimited {
                detail,
                retry_after: None,
            },
            _ => ApiError::Invalid(detail),
        }
    }
}

impl From<crate::limits::OverLimit> for ApiError {
    fn from(over: crate::limits::OverLimit) -> Self {
        let secs = crate::limits::retry_after_secs(over.wait);
        ApiError::RateLimited {
            detail: format!("too many {}; retry in {secs} s", over.what),
            retry_after: Some(over.wait),
        }
    }
}

impl From<crate::bus::CommandError> for ApiError {
    fn from(error: crate::bus::CommandError) -> Self {
        match error {
            crate::bus::CommandError::Timeout => ApiError::Timeout,
            crate::bus::CommandError::NotAccepted(e) => ApiError::Unavailable(e),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        ApiError::Internal(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = (
            self.status(),
            Json(ErrorBody {
                detail: self.to_string(),
            }),
        )
            .into_response();
        match &self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited {
                retry_after: Some(wait),
                ..
            } => {
                let secs = crate::limits::retry_after_secs(*wait);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        response
    }
}

/// Every REST route with its documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(chats::router())
        .merge(messages::router())
        .merge(reactions::router())
        .merge(media::router())
        .merge(presence::router())
        .merge(search::router())
        .merge(mute::router())
        .merge(health::router())
        .merge(sync::router())
        .merge(metrics::router())
}
