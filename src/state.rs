//! The handles every handler and socket shares, built once by [`crate::app`].

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::JwtKeys,
    bus::Bus,
    config::Config,
    gateway::{delivered::DeliveredMarksGatherer, router::RouterHandle},
    health::Pipeline,
    limits::Limits,
    media::Media,
    metrics::Metrics,
    presence::Presence,
};

/// The handles every handler and socket shares: one allocation for the process, so a clone
/// (every request and every socket holds one) is a pointer.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares `services` with every handler and socket.
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Services {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub bus: Bus,
    pub keys: Arc<JwtKeys>,
    /// Uploaded files: storage, staging and signed URLs.
    pub media: Media,
    pub router: RouterHandle,
    /// This process's id on the bus (its sockets' replies come to it).
    pub instance: Arc<str>,
    pub shutdown: CancellationToken,
    /// The open sockets, waited for at shutdown.
    pub tracker: TaskTracker,
    /// What `/healthz` knows of the background tasks.
    pub pipeline: Arc<Pipeline>,
    /// Per-user rate limits of this instance.
    pub limits: Arc<Limits>,
    /// Who is online (does nothing with `PRESENCE=off`).
    pub presence: Presence,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// The delivered marks of this instance's sockets, published together (`AUTO_DELIVERED`).
    pub delivered_marks: Arc<DeliveredMarksGatherer>,
    /// The persisters' consumers, one per partition of `CHAT_IN`, whose info `/metrics` and
    /// `/healthz` read.
    pub consumers: Arc<[async_nats::jetstream::consumer::PullConsumer]>,
}

impl axum::extract::FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}
