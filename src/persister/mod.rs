//! The persister: a durable pull consumer on one partition of `CHAT_IN` that writes each batch
//! of commands in one transaction, publishes the resulting events to `CHAT_EVENTS`, and acks
//! the commands only after both — so a crash at any point means redelivery, never loss.
//!
//! Every instance runs a persister for every partition; JetStream hands each partition to one
//! of them at a time (a pinned client, `bus::streams`), the others wait on standby. The holder
//! writes its partition's commands in stream order, across a handover too ([`order`]), so each
//! chat's commits, cursors and events follow its send order.
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
pub mod order;
pub mod partition;
mod traces;
pub mod write;

use crate::domain::ErrorCode;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

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
    /// The partition this persister writes (when JetStream pins it).
    pub partition: u16,
    /// The partition's durable consumer.
    pub consumer: PullConsumer,
    /// How long the partition's consumer keeps a silent holder pinned
    /// (`PERSIST_HANDOVER`): the pull is renewed well within it.
    pub handover: Duration,
    /// How long to wait for the commands a previous holder was handed before writing later
    /// ones anyway (`bus::streams`: they come back after the ack wait).
    pub patience: Duration,
    /// What the instance's persisters hold, for sharing the partitions among instances.
    pub holdings: Arc<partition::Holdings>,
    pub batching: Batching,
    pub rules: Rules,
    pub pipeline: Arc<Pipeline>,
    /// Batch sizes, commit latencies, messages persisted.
    pub metrics: Arc<Metrics>,
    /// Media storage, where an erasure's blobs are deleted after its commit.
    pub storage: Arc<dyn crate::media::Storage>,
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
        // Commands written and not acked yet: the handover check counts them as in hand.
        let unacked = Arc::new(AtomicU64::new(0));
        let announcer = tokio::spawn({
            let bus = self.bus.clone();
            let unacked = unacked.clone();
            async move {
                while let Some(batch) = to_announce.recv().await {
                    let size = batch.command_count() as u64;
                    batch.announce(&bus).await;
                    unacked.fetch_sub(size, Ordering::Relaxed);
                }
            }
        });
        let holding = self.write_batches(&committed, &unacked, &shutdown).await;
        drop(committed);
        let _ = announcer.await;
        if holding {
            // Everything in hand is acked: the next holder need not wait for the handover.
            self.release_pin().await;
            self.holdings.gave_up(&self.metrics);
        }
    }

    /// The first stage: pulls, decodes and commits batches until `shutdown`; true when this
    /// persister still holds its partition (was handed commands in its last pull).
    async fn write_batches(
        &self,
        committed: &tokio::sync::mpsc::Sender<Committed>,
        unacked: &AtomicU64,
        shutdown: &CancellationToken,
    ) -> bool {
        let batching = self.batching;
        // Well within the handover, so a live holder keeps its pin.
        let expires = (self.handover / 3).clamp(Duration::from_millis(500), Duration::from_secs(5));
        let balance_every = self.handover * 3;
        let mut turns = order::Turns::default();
        let mut holding = false;
        loop {
            let stream = self
                .consumer
                .stream()
                .group(crate::bus::streams::PRIORITY_GROUP)
                .max_messages_per_batch(batching.size)
                // Short pulls with frequent heartbeats: after a NATS node dies the pull is
                // renewed (and reaches the consumer's new leader) within seconds.
                .heartbeat((expires / 4).min(Duration::from_secs(1)))
                .expires(expires)
                .messages()
                .await;
            let mut pulled = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, partition = self.partition, "persister cannot pull yet; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return holding,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            turns.new_pull();
            // A pull that waits is progress too: nothing is pending here.
            self.pipeline.progressed();
            let mut balanced_at = tokio::time::Instant::now();
            let mut step_aside = false;
            loop {
                let first = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {
                        partition::hand_back(&mut pulled).await;
                        return holding;
                    }
                    first = pulled.next() => first,
                };
                let Some(first) = first else { break };
                let (mut messages, mut ended) =
                    gather(first, &mut pulled, batching, shutdown).await;
                if !holding && !messages.is_empty() {
                    holding = true;
                    self.holdings.took(&self.metrics);
                }
                if messages
                    .iter()
                    .map(|m| turns.out_of_turn(partition::delivery(m)))
                    .fold(false, |any, out| any | out)
                {
                    let waited;
                    (messages, waited) = self
                        .in_stream_order(messages, &mut pulled, &mut turns, unacked, shutdown)
                        .await;
                    ended |= waited.ended;
                    if waited.shutdown {
                        return holding;
                    }
                }
                let mut messages = messages.into_iter().peekable();
                while messages.peek().is_some() {
                    let chunk: Vec<_> = messages.by_ref().take(batching.size).collect();
                    let Some(batch) = self.commit(chunk, shutdown).await else {
                        return holding;
                    };
                    unacked.fetch_add(batch.command_count() as u64, Ordering::Relaxed);
                    self.pipeline.progressed();
                    if committed.send(batch).await.is_err() {
                        return holding;
                    }
                }
                if balanced_at.elapsed() >= balance_every {
                    balanced_at = tokio::time::Instant::now();
                    step_aside = self.should_step_aside().await;
                }
                if ended || step_aside {
                    break;
                }
            }
            // What this pull was handed is written (its acks follow) or handed back: the next
            // holder, this persister's next pull or another instance's, takes over now rather
            // than after the handover.
            partition::hand_back(&mut pulled).await;
            drop(pulled);
            if holding {
                self.release_pin().await;
                self.holdings.gave_up(&self.metrics);
                holding = false;
            }
            if step_aside {
                self.stepped_aside(expires * 2, shutdown).await;
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
        self.delete_erased_blobs(&written.applied.erased_blobs)
            .await;
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

impl Persister {
    /// Deletes the blobs a committed erasure left without an upload row, before its
    /// `user_erased` goes out. A blob that cannot be deleted now is logged by key (a content
    /// hash, no secret) for an operator: the erasure itself is committed and not repeated.
    async fn delete_erased_blobs(&self, keys: &[String]) {
        for key in keys {
            if let Err(error) = self.storage.delete(key).await {
                tracing::error!(%error, key, "an erased user's blob could not be deleted");
            }
        }
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
