//! The live counters every socket of a scenario adds to: what the progress bar shows and what
//! tells a run it has drained.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter shared between tasks.
#[derive(Default)]
pub struct Count(AtomicU64);

impl Count {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What every socket adds to while a scenario runs.
#[derive(Default)]
pub struct Counters {
    /// `send_message` frames written.
    pub sent: Count,
    pub accepted: Count,
    pub acked: Count,
    /// `new_message` frames received (one per recipient socket).
    pub delivered: Count,
    /// `new_message` frames the sends so far should produce.
    pub expected_deliveries: Count,
    pub errors: Count,
    /// Sockets that ended (closed by the server or broken).
    pub closed: Count,
    /// `typing` frames written, and `typing` (`started`) frames received from others.
    pub typing_sent: Count,
    pub typing_received: Count,
    /// `presence` frames received about users from `presence_from_user` on (0: about anyone).
    pub presence_received: Count,
    pub presence_from_user: Count,
    /// `edit_message` / `react` frames written, and the `message_edited` / `reaction_added`
    /// frames received (every member's socket gets one, the author's or reactor's included).
    pub edits_sent: Count,
    pub edits_received: Count,
    pub reactions_sent: Count,
    pub reactions_received: Count,
}

impl Counters {
    /// Whether every send has an answer, every accepted send its ack, and every delivery
    /// expected so far has arrived.
    pub fn settled(&self) -> bool {
        self.accepted.get() + self.errors.get() >= self.sent.get()
            && self.acked.get() >= self.accepted.get()
            && self.delivered.get() >= self.expected_deliveries.get()
    }
}

/// Waits (at most `limit`) until the counters are [`Counters::settled`]; `true` if they are.
pub async fn wait_settled(counters: &Counters, limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !counters.settled() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}
