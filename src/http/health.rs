//! `GET /healthz`: 200 only when the database and NATS answer, the streams exist, the
//! background tasks run and the persister keeps up; else 503 with the reasons. The dead letters
//! waiting are reported beside, without failing it.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{bus, state::AppState, store};

/// Each dependency's state.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub database: bool,
    pub nats: bool,
    pub streams: bool,
    /// The persister made progress within `PERSIST_STALL`, or has nothing to do.
    pub persister: bool,
    /// Why the instance is unavailable, in sentences (empty when `ok`).
    pub problems: Vec<String>,
    /// Dead letters waiting in `CHAT_DLQ` for an operator (`jetchat dlq`): reported, never a
    /// reason for 503 (the instance works on); null when NATS did not say within 2 s.
    pub dead_letters: Option<u64>,
}

/// Reports whether jetchat can do its work.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = store::ping(&state.db).await;
    let nats = state.bus.client.connection_state() == async_nats::connection::State::Connected;
    let streams = nats && bus::streams::exist(&state.bus).await;
    let mut problems = state.pipeline.problems();
    if !database {
        problems.push("the database does not answer".into());
    }
    if !nats {
        problems.push("NATS is not connected".into());
    } else if !streams {
        problems.push("the streams do not exist".into());
    }
    let persister = match stalled(&state).await {
        Some(problem) => {
            problems.push(problem);
            false
        }
        None => true,
    };
    let dead_letters = if nats {
        dead_letters(&state).await
    } else {
        None
    };
    let ok = problems.is_empty();
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
            persister,
            problems,
            dead_letters,
        }),
    )
}

/// The dead letters waiting in the dead-letter stream, if JetStream says within 2 s.
async fn dead_letters(state: &AppState) -> Option<u64> {
    let waiting = crate::persister::dead_letters::waiting(&state.bus);
    match tokio::time::timeout(std::time::Duration::from_secs(2), waiting).await {
        Ok(Ok(count)) => Some(count),
        _ => None,
    }
}

/// Why the persister counts as stalled: this instance's persisters showed no progress for
/// `PERSIST_STALL` (none of them committed, nor started a pull) and a partition has commands
/// waiting whose consumer neither delivered nor had an ack for that long either (so a
/// partition another instance holds and keeps up with is no problem of this one).
async fn stalled(state: &AppState) -> Option<String> {
    let stall = state.config.persist_stall;
    let idle = state.pipeline.since_progress();
    if idle < stall {
        return None;
    }
    let now = time::OffsetDateTime::now_utc();
    let mut waiting = 0;
    let mut stalled_for = Duration::ZERO;
    for consumer in state.consumers.iter() {
        let Ok(info) = consumer.get_info().await else {
            return Some(format!(
                "the persister has made no progress for {} s and its consumer cannot be read",
                idle.as_secs()
            ));
        };
        let backlog = info.num_pending + info.num_ack_pending as u64;
        let active = [info.ack_floor.last_active, info.delivered.last_active]
            .into_iter()
            .flatten()
            .max();
        let quiet = active.map_or(idle, |at| {
            Duration::try_from(now - at).unwrap_or(Duration::ZERO)
        });
        if backlog > 0 && quiet >= stall {
            waiting += backlog;
            stalled_for = stalled_for.max(quiet.min(idle));
        }
    }
    (waiting > 0).then(|| {
        format!(
            "the persister has made no progress for {} s while {waiting} commands wait",
            stalled_for.as_secs()
        )
    })
}

/// The health route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}
