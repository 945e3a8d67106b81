//! The JetStream topology: `CHAT_IN` (commands), `CHAT_EVENTS` (events), `CHAT_DLQ` (dead
//! letters) and the persister's durable consumer, created or updated idempotently at start-up so instances can share them.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{
    consumer::{self, AckPolicy, DeliverPolicy},
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};

use super::Bus;

/// Name of the persister's durable pull consumer on `CHAT_IN`.
pub const PERSISTER: &str = "persister";

/// How long a duplicate `Nats-Msg-Id` is recognised.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How streams and the persister's consumer are set up.
#[derive(Clone, Copy, Debug)]
pub struct Topology {
    /// Replicas of each stream and of the consumer (1 alone, 3 in a cluster).
    pub replicas: usize,
    /// How long `CHAT_EVENTS` keeps events for consumers that were away.
    pub events_max_age: Duration,
    /// How long the persister has to ack a command before JetStream redelivers it.
    pub ack_wait: Duration,
}

impl Topology {
    /// The topology the settings ask for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Topology {
            replicas: config.stream_replicas,
            events_max_age: config.events_max_age,
            ack_wait: config.persist_ack_wait,
        }
    }
}

/// How long start-up waits for a JetStream that cannot place the streams yet.
pub const PLACEMENT_PATIENCE: Duration = Duration::from_secs(30);

/// Creates or updates the streams and the persister consumer, waiting (with backoff, for at
/// most [`PLACEMENT_PATIENCE`]) while JetStream cannot do it *yet*: a cluster that is still
/// forming has no meta leader or too few peers for the replicas asked. Any other refusal
/// (a stream of that name with other subjects, more replicas than the cluster has) ends
/// start-up at once with its reason.
pub async fn ensure(bus: &Bus, topology: Topology) -> anyhow::Result<consumer::PullConsumer> {
    let deadline = tokio::time::Instant::now() + PLACEMENT_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        match ensure_once(bus, topology).await {
            Err(e) if not_yet(&e) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = pause.as_millis() as u64,
                    "JetStream cannot place the streams yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            done => return done,
        }
    }
}

/// True when the failure is JetStream not being ready rather than refusing the topology.
fn not_yet(error: &anyhow::Error) -> bool {
    use async_nats::jetstream::{
        context::{CreateStreamError, CreateStreamErrorKind},
        stream::{ConsumerError, ConsumerErrorKind},
    };
    let transient_code = |e: &async_nats::jetstream::Error| {
        use async_nats::jetstream::ErrorCode;
        [
            ErrorCode::CLUSTER_NO_PEERS,
            ErrorCode::CLUSTER_NOT_AVAILABLE,
            ErrorCode::CLUSTER_INCOMPLETE,
        ]
        .contains(&e.error_code())
    };
    error.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<CreateStreamError>() {
            return match e.kind() {
                CreateStreamErrorKind::JetStreamUnavailable | CreateStreamErrorKind::TimedOut => {
                    true
                }
                CreateStreamErrorKind::JetStream(e) => transient_code(&e),
                _ => false,
            };
        }
        if let Some(e) = cause.downcast_ref::<ConsumerError>() {
            return match e.kind() {
                ConsumerErrorKind::TimedOut => true,
                ConsumerErrorKind::JetStream(e) => transient_code(&e),
                _ => false,
            };
        }
        false
    })
}

async fn ensure_once(bus: &Bus, topology: Topology) -> anyhow::Result<consumer::PullConsumer> {
    let Topology {
        replicas,
        events_max_age,
        ack_wait,
    } = topology;
    let s = &bus.subjects;
    // Both streams: file storage, kept by limits, duplicates recognised for two minutes.
    let file_stream = |name: &str, description: &str, subjects: String| stream::Config {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        subjects: vec![subjects],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    };
    let commands = file_stream(
        s.in_stream(),
        "jetchat commands: messages, receipts, chat administration",
        s.all_commands(),
    );
    let events = stream::Config {
        max_age: events_max_age,
        ..file_stream(
            s.events_stream(),
            "jetchat events: what the persister committed",
            s.all_events(),
        )
    };
    // Kept until an operator replays or removes them (`jetchat dlq`); a few per incident.
    let dead_letters = file_stream(
        s.dead_letter_stream(),
        "jetchat dead letters: commands refused because no retry could apply them",
        s.all_dead_letters(),
    );
    for config in [commands, events, dead_letters] {
        let name = config.name.clone();
        bus.jetstream
            .create_or_update_stream(config)
            .await
            .with_context(|| format!("creating stream {name}"))?;
    }
    bus.jetstream
        .create_consumer_on_stream(
            consumer::pull::Config {
                durable_name: Some(PERSISTER.to_owned()),
                description: Some("jetchat persister: writes commands to the database".into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                deliver_policy: DeliverPolicy::All,
                max_ack_pending: 20_000,
                num_replicas: replicas,
                ..Default::default()
            },
            s.in_stream(),
        )
        .await
        .context("creating the persister consumer")
}

/// True when both streams exist (for `/healthz`).
pub async fn exist(bus: &Bus) -> bool {
    let s = &bus.subjects;
    bus.jetstream.get_stream(s.in_stream()).await.is_ok()
        && bus.jetstream.get_stream(s.events_stream()).await.is_ok()
}

/// Commands the persister has not finished: waiting to be delivered, or delivered and not
/// yet acked.
pub async fn persister_backlog(bus: &Bus) -> anyhow::Result<u64> {
    let mut consumer: consumer::PullConsumer = bus
        .jetstream
        .get_consumer_from_stream(PERSISTER, bus.subjects.in_stream())
        .await?;
    let info = consumer.info().await?;
    Ok(info.num_pending + info.num_ack_pending as u64)
}
