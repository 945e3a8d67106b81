//! The web app (`clients/web`, built into `clients/web/dist` and embedded in the binary):
//! `index.html` at `/` (never cached: it names the current assets), the content-hashed
//! `/assets/*` (cached for a year), and `/app-config.json`, what the page needs to know of
//! this server. Only these paths: REST, `/ws/chat`, `/docs` and the rest are not shadowed.
//! Off with `WEB_APP=off`.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_embed::RustEmbed;
use serde::Serialize;

use crate::{origins::AllowedOrigins, state::AppState};

/// `clients/web/dist`, committed, so `cargo build` needs no npm (`debug-embed`: debug builds
/// embed it too, so a binary works wherever it is started from).
#[derive(RustEmbed)]
#[folder = "clients/web/dist"]
struct Dist;

/// A content-hashed file's name changes with its content: cache it for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page itself: always asked again, so a new release's assets are picked up at once.
const NO_CACHE: &str = "no-cache";
/// What the page may load: only this server (its scripts, styles, media and socket), and
/// images from anywhere on http(s): the avatars Django links to (asked without a Referer).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: https: http:; \
     media-src 'self' blob:; object-src 'none'; base-uri 'none'";

/// `GET /`: the app's page.
pub async fn index() -> Response {
    file("index.html", NO_CACHE)
}

/// `GET /assets/{path}`: the app's scripts and styles.
pub async fn asset(Path(path): Path<String>) -> Response {
    file(&format!("assets/{path}"), IMMUTABLE)
}

fn file(path: &str, cache: &'static str) -> Response {
    let Some(file) = Dist::get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = file.metadata.mimetype();
    let content_type = match mime.starts_with("text/") || mime.ends_with("javascript") {
        true => format!("{mime}; charset=utf-8"),
        false => mime.to_owned(),
    };
    let mut response = (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        file.data,
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if path == "index.html" {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// What the page needs to know of this server.
#[derive(Serialize)]
struct AppConfig {
    /// Whether the "sign in as user N" form is offered (`DEV_LOGIN`).
    dev_login: bool,
    /// The claim that carries the user id (`JWT_USER_ID_CLAIM`).
    user_id_claim: String,
    /// Origins whose pages may hand the app a token by `postMessage`: `CORS_ALLOWED_ORIGINS`
    /// (`["*"]` for every origin).
    token_origins: Vec<String>,
}

/// `GET /app-config.json`.
pub async fn config(State(state): State<AppState>) -> impl IntoResponse {
    let config = &state.config;
    let token_origins = match &config.cors_allowed_origins {
        AllowedOrigins::None => vec![],
        AllowedOrigins::Any => vec!["*".to_owned()],
        AllowedOrigins::List(list) => list.clone(),
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE))],
        Json(AppConfig {
            dev_login: config.dev_login.enabled(),
            user_id_claim: config.jwt.user_id_claim.clone(),
            token_origins,
        }),
    )
}
