//! `jetchat streams`: every stream of the subject prefix (`CHAT_IN`, `CHAT_EVENTS` and any
//! other `CHAT_*`, such as a dead-letter stream) with its size, sequences, times and limits,
//! and its consumers with pending and redelivered messages, so a stuck persister or a stream
//! that grows without bound is visible at a glance.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::bus::Bus;

/// One stream's state.
#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// When the oldest message still held was stored (`None` for an empty stream).
    pub first_time: Option<DateTime<Utc>>,
    /// When the newest message was stored.
    pub last_time: Option<DateTime<Utc>>,
    pub limits: Limits,
    pub consumers: Vec<ConsumerReport>,
    /// `CHAT_IN` only: every command up to this sequence is in the database (what the
    /// persisters acked; `trim-stream --through` takes at most this). `None` for the other
    /// streams, and without a persister consumer.
    pub applied_through: Option<u64>,
}

/// What a stream keeps; `None` is no limit.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Limits {
    /// Oldest message kept, in seconds.
    pub max_age_secs: Option<u64>,
    /// Bytes kept at most.
    pub max_bytes: Option<i64>,
    /// Messages kept at most.
    pub max_messages: Option<i64>,
    /// `limits`, `interest` or `workqueue`.
    pub retention: String,
    /// `file` or `memory`.
    pub storage: String,
    /// Copies of each message in a cluster.
    pub replicas: usize,
}

/// One consumer's state.
#[derive(Debug, Serialize)]
pub struct ConsumerReport {
    pub name: String,
    /// Durable (like `persister`), or an ephemeral reader such as a running `replay`.
    pub durable: bool,
    /// Messages not yet delivered to it.
    pub pending: u64,
    /// Delivered but not acked.
    pub ack_pending: usize,
    /// Delivered more than once.
    pub redelivered: usize,
    /// The stream sequence everything up to which is acked.
    pub ack_floor: u64,
}

/// Reads the state of `CHAT_IN`, `CHAT_EVENTS` and then every other `CHAT_*` stream by name.
pub async fn report(bus: &Bus) -> anyhow::Result<Vec<StreamReport>> {
    let (in_stream, events_stream) = (bus.subjects.in_stream(), bus.subjects.events_stream());
    let prefix = in_stream.strip_suffix("IN").unwrap_or(in_stream);
    let mut others: Vec<String> = bus
        .jetstream
        .stream_names()
        .try_collect::<Vec<String>>()
        .await
        .context("listing the streams")?
        .into_iter()
        .filter(|name| name.starts_with(prefix) && name != in_stream && name != events_stream)
        .collect();
    others.sort();
    let mut names = vec![in_stream.to_owned(), events_stream.to_owned()];
    names.extend(others);
    let mut reports = Vec::new();
    for name in names {
        let mut report = stream_report(bus, &name).await?;
        if name == in_stream {
            report.applied_through = super::trim_stream::applied_through(bus).await?;
        }
        reports.push(report);
    }
    Ok(reports)
}

async fn stream_report(bus: &Bus, name: &str) -> anyhow::Result<StreamReport> {
    let mut stream = bus
        .jetstream
        .get_stream(name)
        .await
        .with_context(|| format!("stream {name}"))?;
    let info = stream.info().await?.clone();
    let (state, config) = (info.state, info.config);
    let mut consumers = Vec::new();
    let mut infos = stream.consumers();
    while let Some(info) = infos.next().await {
        let info = info?;
        consumers.push(ConsumerReport {
            durable: info.config.durable_name.is_some(),
            name: info.name,
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            redelivered: info.num_redelivered,
            ack_floor: info.ack_floor.stream_sequence,
        });
    }
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let time = |t: time::OffsetDateTime| {
        (state.messages > 0)
            .then(|| DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()))
            .flatten()
    };
    // JetStream says "no limit" with 0 for the age and -1 for the counts.
    let limit = |n: i64| (n > 0).then_some(n);
    Ok(StreamReport {
        name: name.to_owned(),
        messages: state.messages,
        bytes: state.bytes,
        first_seq: state.first_sequence,
        last_seq: state.last_sequence,
        first_time: time(state.first_timestamp),
        last_time: time(state.last_timestamp),
        limits: Limits {
            max_age_secs: (config.max_age > Duration::ZERO).then_some(config.max_age.as_secs()),
            max_bytes: limit(config.max_bytes),
            max_messages: limit(config.max_messages),
            retention: format!("{:?}", config.retention).to_lowercase(),
            storage: format!("{:?}", config.storage).to_lowercase(),
            replicas: config.num_replicas,
        },
        consumers,
        applied_through: None,
    })
}

/// The reports as a table.
pub fn render(reports: &[StreamReport]) -> String {
    let mut out = String::new();
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    let unlimited = |n: Option<String>| n.unwrap_or_else(|| "unlimited".to_owned());
    for s in reports {
        out += &format!(
            "{:<14} {:>10} msgs {:>12} bytes  seq {}..{}  time {} .. {}\n",
            s.name,
            s.messages,
            s.bytes,
            s.first_seq,
            s.last_seq,
            time(s.first_time),
            time(s.last_time)
        );
        let l = &s.limits;
        out +=
            &format!(
                "    limits: age {}, bytes {}, msgs {}; {} retention, {} storage, {} replica(s)\n",
                unlimited(l.max_age_secs.map(|secs| {
                    humantime::format_duration(Duration::from_secs(secs)).to_string()
                })),
                unlimited(l.max_bytes.map(|n| n.to_string())),
                unlimited(l.max_messages.map(|n| n.to_string())),
                l.retention,
                l.storage,
                l.replicas
            );
        if let Some(applied) = s.applied_through {
            out += &format!("    applied to the database up to {applied}\n");
        }
        if s.consumers.is_empty() {
            out += "    (no consumers)\n";
        }
        for c in &s.consumers {
            out += &format!(
                "    {:<24} {:<9} pending {:>8}  ack pending {:>6}  redelivered {:>6}  acked up to {}\n",
                c.name,
                if c.durable { "durable" } else { "ephemeral" },
                c.pending,
                c.ack_pending,
                c.redelivered,
                c.ack_floor
            );
        }
    }
    out
}
