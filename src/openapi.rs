//! The OpenAPI document: the `ApiDoc` root; paths and schemas come from the handlers through
//! `utoipa_axum`, so a route cannot exist without its documentation.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The root of `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "jetchat",
        description = "Real-time chat on NATS JetStream. WebSocket at `/ws/chat?token=<JWT>`: \
                       its frames are in the [WebSocket protocol](/protocol) (docs/protocol.md). \
                       REST below, all behind an access token (`Authorization: Bearer <token>`, \
                       the **Authorize** button): in production the Django site issues it \
                       (SimpleJWT); for development, `jetchat token <user_id>` prints one \
                       signed with `JWT_SECRET`. Errors are `{\"detail\": \"...\", \"code\": \"...\"}` (`code` from the \
                       same vocabulary as the socket's `error` frames)."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "chats", description = "Create chats, list mine, read history"),
        (name = "groups", description = "Groups their members run: add, remove, leave, roles, rename, settings, delete"),
        (name = "messages", description = "Private history with one user; full-text search over my chats"),
        (name = "media", description = "Upload audio, video and images; fetch them back"),
        (name = "websocket", description = "The real-time socket"),
        (name = "users", description = "Names and avatars of the users I share a chat with (the directory Django feeds); the users I block"),
        (name = "sync", description = "What a client missed since a cursor (the socket's catch-up, paged)"),
        (name = "health", description = "Readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the handlers refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
