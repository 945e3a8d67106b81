//! CORS for REST: which pages on other origins may call jetchat from a browser
//! (`CORS_ALLOWED_ORIGINS`), answered by `tower-http`'s layer, preflights included.
//!
//! Credentials (cookies, TLS client certificates) are never allowed: jetchat authenticates
//! with a bearer token the page sends in `Authorization`, which needs no credentials mode.
//! That is also what makes `*` acceptable: a page on any origin still needs a token.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header, request::Parts};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::origins::AllowedOrigins;

/// How long a browser may cache a preflight's answer (Chromium caps it at 2 h).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The layer for `allowed`, or `None` when no origin is: other origins then get no CORS
/// headers and preflights are answered as any unknown `OPTIONS` request (405).
pub fn layer(allowed: &AllowedOrigins) -> Option<CorsLayer> {
    if allowed.is_none() {
        return None;
    }
    let allowed = allowed.clone();
    let origin = AllowOrigin::predicate(move |origin: &HeaderValue, _: &Parts| {
        allowed.allows(origin.as_bytes())
    });
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::RANGE,
                header::IF_NONE_MATCH,
                header::IF_RANGE,
            ])
            // What a page needs to read back: media ranges and sizes, caching, how long to
            // wait after a 429.
            .expose_headers([
                header::CONTENT_RANGE,
                header::ACCEPT_RANGES,
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::CONTENT_DISPOSITION,
                header::ETAG,
                header::RETRY_AFTER,
                HeaderName::from_static("x-content-type-options"),
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
