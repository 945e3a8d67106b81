//! REST: one file per resource, the error type every handler returns, and the router that
//! registers each route together with its OpenAPI documentation.

pub mod blocks;
pub mod chats;
pub mod cors;
pub mod dev;
pub mod extract;
pub mod groups;
pub mod health;
pub mod home;
pub mod linger;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod mute;
pub mod pins;
pub mod presence;
pub mod reactions;
pub mod search;
pub mod sync;
pub mod users;
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

use crate::{auth::AuthError, domain::rules::Refusal, state::AppState};

/// Every REST error answers `{"detail": "..."}` (FastAPI's shape, which existing clients read),
/// with the refusal's `code` from the one vocabulary when there is one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
    /// The same code a socket's `error` frame would carry (`forbidden`, `not_a_member`, ...);
    /// absent for a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

/// What a handler can fail with; each maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(String),
    /// A request REST refused by a rule of the vocabulary, before publishing (what the
    /// persister would refuse the same way): its code decides the status.
    #[error("{}", .0.detail)]
    Rejected(crate::domain::rules::Refusal),
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
    /// A command the persister refused: its code decides the status. Counted by the
    /// persister (`jetchat_refusals_total{source="persister"}`), not again here.
    #[error("{}", if *.code == ErrorCode::InternalError { "internal error" } else { .detail.as_str() })]
    Refused { code: ErrorCode, detail: String },
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
            ApiError::Refused { code, .. } | ApiError::Rejected(Refusal { code, .. }) => {
                StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
            }
        }
    }

    /// The code `jetchat_refusals_total{source="rest"}` counts this answer under: the nearest
    /// [`ErrorCode`] (REST answers carry none on the wire). `None` for what REST did not
    /// refuse: a timeout (the command is queued) and a command the persister refused.
    fn rest_refusal(&self) -> Option<ErrorCode> {
        Some(match self {
            ApiError::Unauthorized(_) => ErrorCode::InvalidToken,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::Rejected(refusal) => refusal.code,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Invalid(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::RangeNotSatisfiable(_)
            | ApiError::UpgradeRequired(_) => ErrorCode::InvalidField,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Internal(_) => ErrorCode::InternalError,
            ApiError::Timeout | ApiError::Refused { .. } => return None,
        })
    }
}

/// Marks a response as a refusal REST decided, for [`count_refusals`].
#[derive(Clone, Copy, Debug)]
struct RestRefusal(ErrorCode);

/// Counts the answers REST refused (`jetchat_refusals_total{source="rest"}`) by the code
/// their [`ApiError`] left on them.
pub async fn count_refusals(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(RestRefusal(code)) = response.extensions().get() {
        state
            .metrics
            .refusal(crate::metrics::RefusalSource::Rest, *code);
    }
    response
}

impl ApiError {
    /// The answer to a command the persister refused with `code`: the caller's fault (422)
    /// unless jetchat itself failed on it (500) or the log disagrees with the database (503).
    pub fn refused(code: ErrorCode, detail: String) -> Self {
        ApiError::Refused { code, detail }
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
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            ApiError::Refused {
                code: ErrorCode::InternalError,
                detail,
            } => tracing::error!(error = %detail, "request failed"),
            _ => {}
        }
        let code = match &self {
            ApiError::Refused { code, .. } => Some(*code),
            other => other.rest_refusal(),
        };
        let mut response = (
            self.status(),
            Json(ErrorBody {
                detail: self.to_string(),
                code,
            }),
        )
            .into_response();
        if let Some(code) = self.rest_refusal() {
            response.extensions_mut().insert(RestRefusal(code));
        }
        match &self {
            ApiError::Unauthorized(_)
            | ApiError::Refused {
                code: ErrorCode::InvalidToken,
                ..
            } => {
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
        .merge(groups::router())
        .merge(messages::router())
        .merge(reactions::router())
        .merge(media::router())
        .merge(presence::router())
        .merge(search::router())
        .merge(mute::router())
        .merge(users::router())
        .merge(blocks::router())
        .merge(pins::router())
        .merge(health::router())
        .merge(sync::router())
        .merge(metrics::router())
}
