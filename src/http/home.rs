//! `/` with `WEB_APP=off`: a small page for whoever opens jetchat in a browser, pointing at
//! what there is to read; and `/protocol`, the WebSocket protocol document.

use axum::{
    http::header,
    response::{Html, IntoResponse},
};

/// The WebSocket protocol, as in the repository's `docs/protocol.md`.
const PROTOCOL: &str = include_str!("../../docs/protocol.md");

/// A page naming the documentation, the health and metrics endpoints and how to get a token.
/// Not in the OpenAPI document: it is for people, not for API clients.
pub async fn home() -> Html<&'static str> {
    Html(include_str!("home.html"))
}

/// The WebSocket protocol document, as Markdown.
pub async fn protocol() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        PROTOCOL,
    )
}
