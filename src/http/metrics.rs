//! `GET /metrics`: the Prometheus scrape, with the persister consumer's backlog read from
//! JetStream at that moment.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long a scrape waits for the consumer's info before it answers without fresh figures.
const CONSUMER_INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenMetrics text format, which Prometheus asks for and parses.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Metrics in the Prometheus (OpenMetrics) text format.
///
/// Sockets, frames in and out by kind, messages accepted, persisted and delivered, errors by
/// code, rate-limited frames, persister batch sizes and commit latencies, the persister
/// consumer's pending and ack-pending commands and the dead letters waiting (read from
/// JetStream when scraped), router subscriptions, media bytes. Not behind a token: keep it off the public proxy (the compose
/// deployment's nginx refuses it) or turn it off with `METRICS=off` (then 404).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String),
        (status = 404, description = "Turned off (`METRICS=off`)", body = ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if !state.config.metrics {
        return ApiError::NotFound("metrics are turned off (METRICS=off)".into()).into_response();
    }
    let metrics = &state.metrics;
    let backlog = crate::bus::streams::persister_backlog(&state.consumers);
    match tokio::time::timeout(CONSUMER_INFO_TIMEOUT, backlog).await {
        Ok(Ok(backlog)) => {
            metrics
                .consumer_pending
                .set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
            metrics
                .consumer_ack_pending
                .set(i64::try_from(backlog.ack_pending).unwrap_or(i64::MAX));
            metrics.partitions(&backlog);
            metrics.consumer_info_up.set(1);
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "consumer info unavailable for /metrics");
            metrics.consumer_info_up.set(0);
        }
        Err(_) => {
            tracing::debug!("consumer info timed out for /metrics");
            metrics.consumer_info_up.set(0);
        }
    }
    let dead_letters = crate::persister::dead_letters::waiting(&state.bus);
    match tokio::time::timeout(CONSUMER_INFO_TIMEOUT, dead_letters).await {
        Ok(Ok(count)) => {
            metrics
                .dead_letters
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        // Kept from the last scrape; `consumer_info_up` tells that NATS did not answer.
        Ok(Err(error)) => tracing::debug!(%error, "dead-letter count unavailable for /metrics"),
        Err(_) => tracing::debug!("dead-letter count timed out for /metrics"),
    }
    let mut response = metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// `/metrics` with its documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}
