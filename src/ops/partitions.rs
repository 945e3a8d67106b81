//! `jetchat partitions N`: changes how many partitions `CHAT_IN` has (one persister at a time
//! writes a partition). Done with every instance stopped and no command waiting, so no chat
//! has commands under two partitions at once: the stream's subject transform and partition
//! count change, the consumers of new partitions start after the stream's end, and those of
//! partitions no longer used are removed (docs/operations.md, "Partitions").

use anyhow::{Context as _, bail};
use async_nats::jetstream::{
    consumer::{self, DeliverPolicy, FromConsumer as _},
    stream::SubjectTransform,
};
use serde::Serialize;

use crate::bus::{
    Bus,
    streams::{self, PARTITIONS_KEY, persister_name},
};

/// What `partitions` did.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The partition count before.
    pub before: u16,
    /// The partition count now.
    pub after: u16,
    /// The consumers added (they start after the stream's last sequence).
    pub added: Vec<String>,
    /// The consumers removed.
    pub removed: Vec<String>,
    /// Consumers of partitions no longer used that were not removed, and why.
    pub kept: Vec<String>,
}

/// Partitions `CHAT_IN` in `count`. Refused while any persister has commands waiting or in
/// hand: they would be written by the old partitioning while new ones of the same chat are
/// written by the new.
pub async fn run(bus: &Bus, count: u16) -> anyhow::Result<Report> {
    if !(1..=1024).contains(&count) {
        bail!("{count} partitions: use 1 to 1024");
    }
    let name = bus.subjects.in_stream();
    let mut stream = super::stream(bus, name).await?;
    let config = stream.info().await?.config.clone();
    let before = config
        .metadata
        .get(PARTITIONS_KEY)
        .and_then(|n| n.parse::<u16>().ok())
        .unwrap_or(1);
    if before == count {
        bail!("{name} has {count} partitions already");
    }
    let persisters = streams::persister_consumers(&stream).await?;
    let template = persisters
        .iter()
        .find(|info| info.name == streams::PERSISTER)
        .with_context(|| {
            format!("{name} has no `persister` consumer: start jetchat once to create it")
        })?;
    let template = consumer::pull::Config::try_from_consumer_config(template.config.clone())
        .map_err(|e| anyhow::anyhow!("the persister consumer's settings: {e}"))?;
    let waiting: Vec<String> = persisters
        .iter()
        .filter(|info| info.num_pending + info.num_ack_pending as u64 > 0)
        .map(|info| {
            format!(
                "{}: {} waiting, {} in hand",
                info.name, info.num_pending, info.num_ack_pending
            )
        })
        .collect();
    if !waiting.is_empty() {
        bail!(
            "commands wait for the persisters ({}). Stop every jetchat instance and whatever \
             publishes commands (Django), start one instance until `jetchat streams` shows \
             nothing pending for any persister, stop it, then run this again",
            waiting.join("; ")
        );
    }

    // New commands go to the new partitions from here on.
    let mut updated = config.clone();
    updated.subject_transform = (count > 1).then(|| {
        let (source, destination) = bus.subjects.partition_transform(count);
        SubjectTransform {
            source,
            destination,
        }
    });
    updated
        .metadata
        .insert(PARTITIONS_KEY.to_owned(), count.to_string());
    bus.jetstream
        .update_stream(&updated)
        .await
        .with_context(|| format!("updating {name}"))?;
    let next = stream.info().await?.state.last_sequence + 1;

    let mut added = Vec::new();
    for partition in 0..count {
        let consumer_name = persister_name(partition);
        let exists = persisters.iter().any(|info| info.name == consumer_name);
        let config = consumer::pull::Config {
            durable_name: Some(consumer_name.clone()),
            name: Some(consumer_name.clone()),
            description: streams::persister_config(&bus.subjects, partition, count).description,
            filter_subjects: bus.subjects.partition_filters(partition, count),
            // A new partition's subjects may hold commands of an older partitioning, written
            // long ago: it starts after them.
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: next,
            },
            ..template.clone()
        };
        streams::ensure_consumer(bus, config).await?;
        if !exists {
            added.push(consumer_name);
        }
    }
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for info in &persisters {
        let unused = streams::partition_of(&info.name).is_none_or(|p| p >= count);
        if !unused {
            continue;
        }
        // A command published between the check and the new transform would be lost with
        // its consumer: such a consumer stays until it is drained.
        let now = stream.consumer_info(&info.name).await?;
        if now.num_pending + now.num_ack_pending as u64 > 0 {
            kept.push(format!(
                "{} ({} commands arrived meanwhile: start one instance with `jetchat partitions \
                 {before}` undone, or replay them with `jetchat replay`)",
                info.name, now.num_pending
            ));
            continue;
        }
        stream
            .delete_consumer(&info.name)
            .await
            .with_context(|| format!("removing consumer {}", info.name))?;
        removed.push(info.name.clone());
    }
    Ok(Report {
        before,
        after: count,
        added,
        removed,
        kept,
    })
}

/// What `partitions` prints.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "CHAT_IN: {} partitions, was {}\n",
        report.after, report.before
    );
    if !report.added.is_empty() {
        out += &format!("  added:   {}\n", report.added.join(", "));
    }
    if !report.removed.is_empty() {
        out += &format!("  removed: {}\n", report.removed.join(", "));
    }
    for kept in &report.kept {
        out += &format!("  kept:    {kept}\n");
    }
    out += "Start the instances: each runs a persister per partition.\n";
    out
}
