//! The persister: a durable pull consumer on `CHAT_IN` that writes each batch of commands in
//! one transaction, publishes the resulting events to `CHAT_EVENTS`, and acks the commands
//! only after both — so a crash at any point means redelivery, never loss.
//!
//! No command can stop it: a failure that may pass (the database is away or busy) is retried
//! with backoff; any other failure ([`failure`]) isolates the commands at fault ([`write`]),
//! refuses them with `command_rejected` and keeps them in the dead-letter stream
//! ([`dead_letters`]), and every other command of the batch is applied.

pub mod agreement;
mod announce;
pub mod batch;
pub mod dead_letters;
mod decode;
pub mod failure;
pub mod journal;
mod traces;
pub mod write;

use crate::domain::ErrorCode;
use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{PullConsumer, pull::MessagesError as PullError},
};
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{bus::Bus, health::Pipeline, metrics::Metrics};
use announce::Committed;
use batch::Rules;
use dead_letters::DeadLetter;
pub use decode::{decode, read};
pub use write::write;

/// How the persister groups commands into transactions.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most commands in one transaction.
    pub size: usize,
    /// How long to wait for more commands after the first of a batch, when fewer than `size`
    /// are at hand. Each commit writes every page it touched (the tables' and the indexes'
    /// leaves) to the WAL, so a few more commands per commit cost far less per command.
    pub linger: Duration,
}

/// What the persister works with; cheap to clone, so a supervisor can start it again.
#[derive(Clone)]
pub struct Persister {
    pub bus: Bus,
    pub db: DatabaseConnection,
    pub consumer: PullConsumer,
    pub batching: Batching,
    pub rules: Rules,
    pub pipeline: Arc<Pipeline>,
    /// Batch sizes, commit latencies, messages persisted.
    pub metrics: Arc<Metrics>,
}

/// The `/healthz` problem source of the persister.
const SOURCE: &str = "persister";

impl Persister {
    /// Runs until `shutdown`; the batches in hand are finished first.
    ///
    /// Two stages, so the database and NATS work at the same time: this task decodes and
    /// commits batch N+1 while a second one publishes batch N's events and acks its commands.
    /// At most one committed batch waits for the second stage, and events leave in commit
    /// order.
    pub async fn run(self, shutdown: CancellationToken) {
        let (committed, mut to_announce) = tokio::sync::mpsc::channel::<Committed>(1);
        let announcer = tokio::spawn({
            let bus = self.bus.clone();
            async move {
                while let Some(batch) = to_announce.recv().await {
                    batch.announce(&bus).await;
                }
            }
        });
        self.write_batches(&committed, &shutdown).await;
        drop(committed);
        let _ = announcer.await;
    }

    /// The first stage: pulls, decodes and commits batches until `shutdown`.
    async fn write_batches(
        &self,
        committed: &tokio::sync::mpsc::Sender<Committed>,
        shutdown: &CancellationToken,
    ) {
        let batching = self.batching;
        loop {
            let stream = self
                .consumer
                .stream()
                .max_messages_per_batch(batching.size)
                // Short pulls with frequent heartbeats: after a NATS node dies the pull is
                // renewed (and reaches the consumer's new leader) within seconds.
                .heartbeat(Duration::from_secs(1))
                .expires(Duration::from_secs(5))
                .messages()
                .await;
            let mut pulled = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "persister cannot pull yet; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            // A pull that waits is progress too: nothing is pending here.
            self.pipeline.progressed();
            loop {
                let first = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    first = pulled.next() => first,
                };
                let Some(first) = first else { break };
                let (messages, ended) = gather(first, &mut pulled, batching, shutdown).await;
                if !messages.is_empty() {
                    let Some(batch) = self.commit(messages, shutdown).await else {
                        return;
                    };
                    self.pipeline.progressed();
                    if committed.send(batch).await.is_err() {
                        return;
                    }
                }
                if ended {
                    break; // the pull is renewed
                }
            }
        }
    }

    /// Decodes and commits one batch, retrying while the database fails transiently;
    /// `None` on shutdown.
    #[tracing::instrument(skip_all, fields(size = messages.len()))]
    async fn commit(
        &self,
        messages: Vec<jetstream::Message>,
        shutdown: &CancellationToken,
    ) -> Option<Committed> {
        let mut incoming = Vec::with_capacity(messages.len());
        let mut valid = Vec::with_capacity(messages.len());
        let mut refused = Vec::new();
        let mut rejections = Vec::new();
        let mut dead_letters = Vec::new();
        for message in messages {
            match read(&message) {
                Ok(command) => {
                    incoming.push(command);
                    valid.push(message);
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        seq = message.info().map_or(0, |i| i.stream_sequence),
                        subject = %message.subject,
                        "undecodable command refused"
                    );
                    rejections.push(decode::unreadable_command(&message, &error));
                    dead_letters.push(DeadLetter::of(
                        &message,
                        ErrorCode::InvalidCommand,
                        format!("not a valid command: {error}"),
                    ));
                    refused.push(message);
                }
            }
        }
        let spans = traces::PersistSpans::open(&valid);
        let mut backoff = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let written = loop {
            match write(&self.db, &incoming, &self.rules).await {
                Ok(written) => break written,
                Err(error) => {
                    tracing::error!(%error, "persisting a batch failed; retrying");
                    for message in &valid {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                    tokio::select! {
                        // Not acked: JetStream redelivers these to whoever persists next.
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let trace_headers = spans.close();
        let metrics = &self.metrics;
        metrics
            .persist_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics
            .persist_batch_size
            .observe((incoming.len() + refused.len()) as f64);
        // New rows only: a redelivered or replayed send is announced again, not stored again.
        metrics
            .messages_persisted
            .inc_by(written.applied.messages_stored);
        let mut id_taken = None;
        // Highest index first, so removing keeps the other indexes right.
        for poisoned in written.poisoned.iter().rev() {
            let message = valid.remove(poisoned.index);
            if poisoned.id_taken {
                id_taken = Some(poisoned.refusal.detail.clone());
            }
            dead_letters.push(DeadLetter::of(
                &message,
                poisoned.refusal.code,
                poisoned.cause.clone(),
            ));
            refused.push(message);
        }
        if let Some(detail) = id_taken {
            // Lasting until an operator acts: every new message would collide the same way.
            self.pipeline.report(
                SOURCE,
                Some(format!(
                    "{detail}; new messages are refused (docs/operations.md: CHAT_IN behind the database)"
                )),
            );
        }
        let mut applied = written.applied;
        applied.events.extend(rejections);
        metrics.persister_refusals(&applied.events);
        Some(Committed {
            applied,
            valid,
            refused,
            dead_letters,
            trace_headers,
        })
    }
}

/// A batch: `first`, what else is ready, and what arrives until the linger is over, up to
/// `size` commands; `true` when the pull ended meanwhile. (A timeout polls its future before
/// its deadline, so a zero linger still takes what is ready.)
async fn gather(
    first: Result<jetstream::Message, PullError>,
    pulled: &mut (impl futures_util::Stream<Item = Result<jetstream::Message, PullError>> + Unpin),
    batching: Batching,
    shutdown: &CancellationToken,
) -> (Vec<jetstream::Message>, bool) {
    let mut messages = Vec::with_capacity(batching.size);
    keep(&mut messages, first);
    let deadline = tokio::time::Instant::now() + batching.linger;
    while messages.len() < batching.size {
        let more = tokio::select! {
            biased;
            // Only a linger waits: shutting down ends it, and what is in hand is written.
            _ = shutdown.cancelled(), if !batching.linger.is_zero() => break,
            more = tokio::time::timeout_at(deadline, pulled.next()) => more,
        };
        match more {
            Ok(Some(item)) => keep(&mut messages, item),
            Ok(None) => return (messages, true),
            Err(_) => break,
        }
    }
    (messages, false)
}

/// Adds a pulled message to the batch (a failed pull is logged; the pull goes on).
fn keep(messages: &mut Vec<jetstream::Message>, item: Result<jetstream::Message, PullError>) {
    match item {
        Ok(message) => messages.push(message),
        Err(error) => tracing::warn!(%error, "pull failed"),
    }
}
