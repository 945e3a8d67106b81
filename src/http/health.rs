//! `GET /healthz`: 200 only when the database and NATS answer and the streams exist.

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{app::AppState, bus, store};

/// Each dependency's state.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub database: bool,
    pub nats: bool,
    pub streams: bool,
}

/// Reports whether jetchat can do its work.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = store::ping(&state.db).await;
    let nats = state.bus.client.connection_state() == async_nats::connection::State::Connected;
    let streams = nats && bus::streams::exist(&state.bus).await;
    let ok = database && nats && streams;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ok" } else { "unavailable" },
            database,
            nats,
            streams,
        }),
    )
}

/// The health route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}
