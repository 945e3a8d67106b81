//! The scenarios, one per file, and what they share: run lengths, message budgets and the
//! merging of what every socket logged.

pub mod ceiling;
pub mod fanout;
pub mod idle;
pub mod live;
pub mod many_chats;
pub mod order;
pub mod pairs;
pub mod rate;
pub mod reconnect;
pub mod slow;
pub mod soak;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::bail;
use hdrhistogram::Histogram;

use crate::{
    client::{ConnLog, MsgKey},
    stats::merge,
};

/// The longest any scenario runs: loops are bounded in time whatever the arguments say.
const MAX_SECONDS: f64 = 3600.0;

/// How long a run waits, after its last send, for every answer it is owed.
pub const DRAIN: Duration = Duration::from_secs(20);

/// A length in seconds from the command line, checked.
pub fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !((0.0..=MAX_SECONDS).contains(&value)) {
        bail!("--{name} must be between 0 and {MAX_SECONDS} seconds");
    }
    Ok(Duration::from_secs_f64(value))
}

/// At most so many messages, shared by every sender of a run.
pub struct Budget {
    limit: u64,
    taken: AtomicU64,
}

impl Budget {
    /// `None` is unlimited (the run's duration ends it).
    pub fn new(limit: Option<u64>) -> Arc<Budget> {
        Arc::new(Budget {
            limit: limit.unwrap_or(u64::MAX),
            taken: AtomicU64::new(0),
        })
    }

    /// Takes one message; `false` once the budget is spent.
    pub fn take(&self) -> bool {
        self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

/// Every socket's log of one stage, added up.
#[derive(Default)]
pub struct Merged {
    pub accepted: Option<Histogram<u64>>,
    pub acked: Option<Histogram<u64>>,
    pub delivered: Option<Histogram<u64>>,
    pub accepted_keys: HashSet<MsgKey>,
    pub acked_count: u64,
    pub delivered_count: u64,
    pub last_ack_us: u64,
    pub last_delivery_us: u64,
    pub errors: BTreeMap<String, u64>,
    pub status_updates: u64,
    pub reordered: u64,
    /// Sockets the server closed, by close code.
    pub closed: BTreeMap<u16, u64>,
}

impl Merged {
    /// Adds up `stage` (or every stage) of the logs of the sockets `(conn, log)`.
    pub fn of(logs: &[(u32, Arc<Mutex<ConnLog>>)], stage: Option<u16>) -> Merged {
        let mut merged = Merged::default();
        for (conn, log) in logs {
            let log = log.lock().expect("log lock");
            for (i, s) in log.stages.iter().enumerate() {
                if stage.is_some_and(|want| usize::from(want) != i) {
                    continue;
                }
                merge(&mut merged.accepted, &s.accepted);
                merge(&mut merged.acked, &s.acked);
                merge(&mut merged.delivered, &s.delivered);
                merged.acked_count += s.acked_count;
                merged.delivered_count += s.delivered_count;
                merged.last_ack_us = merged.last_ack_us.max(s.last_ack_us);
                merged.last_delivery_us = merged.last_delivery_us.max(s.last_delivery_us);
                merged
                    .accepted_keys
                    .extend(s.accepted_seqs.iter().map(|&seq| MsgKey {
                        conn: *conn,
                        stage: i as u16,
                        seq,
                    }));
            }
            for (code, n) in &log.errors {
                *merged.errors.entry(code.clone()).or_default() += n;
            }
            merged.status_updates += log.status_updates;
            merged.reordered += log.reordered;
            if let Some(code) = log.closed_with {
                *merged.closed.entry(code).or_default() += 1;
            }
        }
        merged
    }

    /// Errors and server closes as one JSON object for the report.
    pub fn problems(&self) -> serde_json::Value {
        serde_json::json!({
            "errors": self.errors,
            "closed_by_server": self.closed.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "reordered_deliveries": self.reordered,
        })
    }
}

/// A fresh log for a socket.
pub fn new_log() -> Arc<Mutex<ConnLog>> {
    Arc::new(Mutex::new(ConnLog::default()))
}

/// `n` per `elapsed`, as a rate per second.
pub fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}
