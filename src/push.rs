//! The push scanner: finds members whose messages reached none of their sockets within
//! `PUSH_AFTER` and publishes a `push_due` command for each to `CHAT_IN`; the persister turns
//! it into one `push_needed` event (docs/events.md, "Push notifications").
//!
//! Every instance runs one. It keeps nothing that matters: what was pushed is the members'
//! push watermarks in the database, which only the persister raises, so two scanners (or one
//! after a restart) finding the same member publish the same command (`Nats-Msg-Id`) and the
//! second one raises nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{
        Bus,
        messages::{Command, PushDue, VERSION},
    },
    store::push::{self, DuePush, ScanKey},
};

/// Most members one round asks for (one query); the next round goes on after the last.
pub const SCAN_LIMIT: u64 = 500;

/// How far back a scanner that has just started looks: messages older than this plus
/// `PUSH_AFTER` when it starts are not pushed (after an outage that long, a notification is
/// noise).
pub const CATCH_UP: Duration = Duration::from_secs(10 * 60);

/// How often a scanner with `push_after` runs a round.
pub fn period(push_after: Duration) -> Duration {
    (push_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Where a scanner stands: the messages stored up to `floor` were looked at, and a bounded
/// round that filled its page goes on after `key` in the same window.
struct Scan {
    floor: DateTime<Utc>,
    /// The window end and the last member of a full page, while paging.
    paging: Option<(DateTime<Utc>, ScanKey)>,
}

/// Starts the scanner (nothing when `push_after` is zero: `PUSH_AFTER=0` turns pushes off).
pub fn spawn_scanner(
    bus: Bus,
    db: DatabaseConnection,
    push_after: Duration,
    shutdown: CancellationToken,
) {
    if push_after.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let after = chrono::Duration::from_std(push_after).unwrap_or(chrono::Duration::MAX);
        let catch_up = chrono::Duration::from_std(CATCH_UP).expect("ten minutes");
        let mut scan = Scan {
            floor: Utc::now() - after - catch_up,
            paging: None,
        };
        let mut every = tokio::time::interval(period(push_after));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(error) = round(&bus, &db, &mut scan, after).await {
                tracing::warn!(error = %error, "push scan failed; retrying next round");
            }
        }
    });
}

/// One round: one query, then one `push_due` per member found.
async fn round(
    bus: &Bus,
    db: &DatabaseConnection,
    scan: &mut Scan,
    push_after: chrono::Duration,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let (to, key) = scan.paging.unwrap_or((now - push_after, (0, 0)));
    // Looking again as far back as PUSH_AFTER before the floor catches the messages that
    // were committed late (a batch of another instance, a slow persister): the watermarks make
    // a second look at the others free of effects.
    let from = scan.floor - push_after;
    let found = push::due(db, from, to, now, key, SCAN_LIMIT).await?;
    publish(bus, &found).await?;
    scan.paging = match found.last() {
        Some(last) if found.len() as u64 == SCAN_LIMIT => Some((to, (last.chat_id, last.user_id))),
        _ => {
            scan.floor = to;
            None
        }
    };
    Ok(())
}

/// Publishes a `push_due` per member found and waits for `CHAT_IN` to hold them all.
async fn publish(bus: &Bus, found: &[DuePush]) -> anyhow::Result<()> {
    let mut messages = Vec::with_capacity(found.len());
    for due in found {
        let command = PushDue {
            v: VERSION,
            chat_id: due.chat_id,
            user_id: due.user_id,
            through_message_id: due.through_message_id,
        };
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(&Command::PushDue(command.clone()))?.into())
            .message_id(command.dedupe_id());
        messages.push((bus.subjects.push_due_command(due.chat_id), message));
    }
    crate::bus::publish_all(&bus.jetstream, messages)
        .await
        .map_err(|error| anyhow::anyhow!(error))
}
