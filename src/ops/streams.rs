//! `jetchat streams`: both streams and their consumers with counts, pending and redelivered
//! messages, so a stuck persister is visible at a glance.

use anyhow::Context as _;
use futures_util::StreamExt;
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
    pub consumers: Vec<ConsumerReport>,
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

/// Reads the state of `CHAT_IN` and `CHAT_EVENTS`.
pub async fn report(bus: &Bus) -> anyhow::Result<Vec<StreamReport>> {
    let mut reports = Vec::new();
    for name in [bus.subjects.in_stream(), bus.subjects.events_stream()] {
        let mut stream = bus
            .jetstream
            .get_stream(name)
            .await
            .with_context(|| format!("stream {name}"))?;
        let state = stream.info().await?.state.clone();
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
        reports.push(StreamReport {
            name: name.to_owned(),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: state.first_sequence,
            last_seq: state.last_sequence,
            consumers,
        });
    }
    Ok(reports)
}

/// The reports as a table.
pub fn render(reports: &[StreamReport]) -> String {
    let mut out = String::new();
    for s in reports {
        out += &format!(
            "{:<14} {:>10} msgs {:>12} bytes  seq {}..{}\n",
            s.name, s.messages, s.bytes, s.first_seq, s.last_seq
        );
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
