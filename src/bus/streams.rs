//! The JetStream topology: `CHAT_IN` (commands), `CHAT_EVENTS` (events), `CHAT_DLQ` (dead
//! letters) and the persisters' durable consumers, one per partition of `CHAT_IN`, created or
//! updated idempotently at start-up so instances can share them.
//!
//! **One writer per chat.** `CHAT_IN` stores each chat's commands in one partition (a subject
//! transform, [`Subjects::partition_transform`]); each partition has its own durable consumer
//! with a `pinned_client` priority group, so JetStream hands a partition's commands to one
//! persister at a time, wherever it runs, and to a standby one once the holder has not pulled
//! for [`Topology::handover`]. The partition count is the stream's own (its metadata,
//! [`PARTITIONS_KEY`]): `PERSIST_PARTITIONS` sets it when the stream is created.
//!
//! [`Subjects::partition_transform`]: super::Subjects::partition_transform

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{
    consumer::{self, AckPolicy, DeliverPolicy, PriorityPolicy},
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType, SubjectTransform},
};

use super::Bus;

/// Name of the durable pull consumer of partition 0 on `CHAT_IN` (the only one of an
/// unpartitioned stream, and the name every version before partitions used).
pub const PERSISTER: &str = "persister";

/// The partition a persister consumer's name says (`persister` 0, `persister-3` 3); `None`
/// for any other consumer.
pub fn partition_of(name: &str) -> Option<u16> {
    match name.strip_prefix(PERSISTER)? {
        "" => Some(0),
        rest => rest.strip_prefix('-')?.parse().ok().filter(|&p| p > 0),
    }
}

/// The persisters' consumers on `stream` (`CHAT_IN`), one per partition, with their state.
pub async fn persister_consumers(
    stream: &async_nats::jetstream::stream::Stream,
) -> anyhow::Result<Vec<consumer::Info>> {
    use futures_util::StreamExt as _;
    let mut infos = stream.consumers();
    let mut persisters = Vec::new();
    while let Some(info) = infos.next().await {
        let info = info.context("listing the consumers")?;
        if partition_of(&info.name).is_some() {
            persisters.push(info);
        }
    }
    Ok(persisters)
}

/// The priority group the persisters pull in; JetStream pins one client per consumer in it.
pub const PRIORITY_GROUP: &str = "persist";

/// The `CHAT_IN` metadata key holding its partition count (absent: one).
pub const PARTITIONS_KEY: &str = "jetchat.partitions";

/// The durable consumer of one partition: `persister`, `persister-1`, `persister-2`, …
pub fn persister_name(partition: u16) -> String {
    match partition {
        0 => PERSISTER.to_owned(),
        p => format!("{PERSISTER}-{p}"),
    }
}

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
    /// Partitions of a new `CHAT_IN` (an existing stream keeps its own).
    pub partitions: u16,
    /// How long a partition's persister stays pinned without pulling before JetStream hands
    /// the partition to another (an instance that died).
    pub handover: Duration,
}

impl Topology {
    /// The topology the settings ask for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Topology {
            replicas: config.stream_replicas,
            events_max_age: config.events_max_age,
            ack_wait: config.persist_ack_wait,
            partitions: config.persist_partitions,
            handover: config.persist_handover,
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
pub async fn ensure(bus: &Bus, topology: Topology) -> anyhow::Result<Vec<consumer::PullConsumer>> {
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

async fn ensure_once(bus: &Bus, topology: Topology) -> anyhow::Result<Vec<consumer::PullConsumer>> {
    let Topology {
        replicas,
        events_max_age,
        ack_wait,
        handover,
        ..
    } = topology;
    let partitions = partitions_of(bus, topology.partitions).await?;
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
    let commands = stream::Config {
        subject_transform: (partitions > 1).then(|| {
            let (source, destination) = s.partition_transform(partitions);
            SubjectTransform {
                source,
                destination,
            }
        }),
        metadata: HashMap::from([(PARTITIONS_KEY.to_owned(), partitions.to_string())]),
        ..file_stream(
            s.in_stream(),
            "jetchat commands: messages, receipts, chat administration",
            s.all_commands(),
        )
    };
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
    let mut consumers = Vec::with_capacity(usize::from(partitions));
    for partition in 0..partitions {
        let config = consumer::pull::Config {
            num_replicas: replicas,
            ack_wait,
            priority_timeout: handover,
            ..persister_config(s, partition, partitions)
        };
        consumers.push(ensure_consumer(bus, config).await?);
    }
    Ok(consumers)
}

/// The durable consumer of one partition of a stream in `partitions` partitions, with the
/// defaults of everything the settings do not say.
pub fn persister_config(
    subjects: &super::Subjects,
    partition: u16,
    partitions: u16,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(persister_name(partition)),
        description: Some(format!(
            "jetchat persister of partition {partition}: writes its commands to the database"
        )),
        filter_subjects: subjects.partition_filters(partition, partitions),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        max_ack_pending: 20_000,
        priority_policy: PriorityPolicy::PinnedClient,
        priority_groups: vec![PRIORITY_GROUP.to_owned()],
        ..Default::default()
    }
}

/// Creates the consumer `config` describes, or updates it if it exists — keeping where it
/// started (a consumer `jetchat partitions` added starts after the stream's end then).
pub async fn ensure_consumer(
    bus: &Bus,
    mut config: consumer::pull::Config,
) -> anyhow::Result<consumer::PullConsumer> {
    let name = config.durable_name.clone().unwrap_or_default();
    let stream = bus.subjects.in_stream();
    if let Ok(existing) = bus
        .jetstream
        .get_consumer_from_stream::<consumer::pull::Config, _, _>(&name, stream)
        .await
    {
        let current = &existing.cached_info().config;
        config.deliver_policy = current.deliver_policy;
        // An update, even to the settings it has, ends every persister's pull on it (and so
        // the holder's pin): an instance that starts leaves such a consumer alone.
        if same_settings(current, &config) {
            return Ok(existing);
        }
    }
    bus.jetstream
        .create_consumer_on_stream(config, stream)
        .await
        .with_context(|| format!("creating the persister consumer {name}"))
}

/// Whether a consumer's settings are already what `wanted` says (those the persisters set).
fn same_settings(current: &consumer::Config, wanted: &consumer::pull::Config) -> bool {
    let filters = |single: &str, many: &[String]| -> Vec<String> {
        match (single, many) {
            ("", many) => many.to_vec(),
            (single, _) => vec![single.to_owned()],
        }
    };
    filters(&current.filter_subject, &current.filter_subjects)
        == filters(&wanted.filter_subject, &wanted.filter_subjects)
        && current.ack_policy == wanted.ack_policy
        && current.ack_wait == wanted.ack_wait
        && current.max_ack_pending == wanted.max_ack_pending
        && current.num_replicas.max(1) == wanted.num_replicas.max(1)
        && current.priority_policy == wanted.priority_policy
        && current.priority_groups == wanted.priority_groups
        && current.priority_timeout == wanted.priority_timeout
        && current.description == wanted.description
}

/// The partition count of `CHAT_IN`: its own when it exists (a stream from before partitions
/// has one), else `wanted`. A `wanted` that differs is logged, not applied: changing the count
/// is an operator's step (docs/operations.md, "Partitions").
async fn partitions_of(bus: &Bus, wanted: u16) -> anyhow::Result<u16> {
    let name = bus.subjects.in_stream();
    let existing =
        match bus.jetstream.get_stream(name).await {
            Ok(stream) => stream
                .cached_info()
                .config
                .metadata
                .get(PARTITIONS_KEY)
                .map_or(Ok(1), |count| {
                    count.parse::<u16>().ok().filter(|&n| n > 0).with_context(|| {
                    format!("{name} metadata {PARTITIONS_KEY} = {count:?} is not a partition count")
                })
                })?,
            Err(error) => {
                use async_nats::jetstream::context::GetStreamErrorKind;
                if !matches!(
                    error.kind(),
                    GetStreamErrorKind::JetStream(ref e)
                        if e.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
                ) {
                    return Err(anyhow::Error::new(error).context(format!("reading stream {name}")));
                }
                return Ok(wanted.max(1));
            }
        };
    if existing != wanted {
        tracing::warn!(
            stream = name,
            partitions = existing,
            persist_partitions = wanted,
            "PERSIST_PARTITIONS differs from the stream's partition count, which is kept \
             (docs/operations.md, \"Partitions\")"
        );
    }
    Ok(existing)
}

/// True when both streams exist (for `/healthz`).
pub async fn exist(bus: &Bus) -> bool {
    let s = &bus.subjects;
    bus.jetstream.get_stream(s.in_stream()).await.is_ok()
        && bus.jetstream.get_stream(s.events_stream()).await.is_ok()
}

/// Commands the persisters of every partition have not finished: waiting to be delivered,
/// or delivered and not yet acked.
pub async fn persister_backlog(consumers: &[consumer::PullConsumer]) -> anyhow::Result<Backlog> {
    let mut backlog = Backlog::default();
    for consumer in consumers {
        let info = consumer.get_info().await?;
        let partition = PartitionBacklog {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
        };
        backlog.pending += partition.pending;
        backlog.ack_pending += partition.ack_pending;
        backlog.partitions.push(partition);
    }
    Ok(backlog)
}

/// The persisters' backlog, summed over the partitions, and each partition's.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    /// Commands not delivered yet.
    pub pending: u64,
    /// Commands delivered and not acked yet.
    pub ack_pending: u64,
    /// Each partition's, in partition order.
    pub partitions: Vec<PartitionBacklog>,
}

/// One partition's consumer.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartitionBacklog {
    /// Commands not delivered yet.
    pub pending: u64,
    /// Commands delivered and not acked yet.
    pub ack_pending: u64,
    /// Commands delivered more than once and not acked yet.
    pub redelivered: u64,
}

impl Backlog {
    /// Every command not finished.
    pub fn total(&self) -> u64 {
        self.pending + self.ack_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_and_partitions_agree() {
        for partition in [0, 1, 7, 1023] {
            assert_eq!(partition_of(&persister_name(partition)), Some(partition));
        }
        assert_eq!(persister_name(0), "persister");
        assert_eq!(partition_of("persister-0"), None);
        assert_eq!(partition_of("persisters"), None);
        assert_eq!(partition_of("replay-x"), None);
    }
}
