//! `jetchat trim-stream --through N --snapshot URL`: bounds `CHAT_IN` behind a database
//! snapshot (docs/operations.md, "Snapshot, then trim"). It removes the commands up to and
//! including `N`, and only when that loses nothing: every one of them is applied (the
//! persisters acked them) and the snapshot holds them, so that the snapshot plus
//! `reproject --from-seq N+1` still rebuilds the whole database.

use anyhow::{Context as _, bail};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use crate::{
    bus::Bus,
    store::{self, message},
};

/// What `trim-stream` did.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The stream's first sequence before the trim.
    pub first_seq_before: u64,
    /// Commands removed (sequences `first_seq_before..=through`; none when the stream already
    /// started after `through`).
    pub removed: u64,
    /// The stream's first sequence now: a rebuild is the snapshot plus
    /// `reproject --from-seq <first_seq>`.
    pub first_seq: u64,
    /// The stream's last sequence (untouched).
    pub last_seq: u64,
    /// Everything up to this sequence was applied to the database (the persisters' lowest
    /// ack floor) when the trim was checked.
    pub applied_through: u64,
    /// The newest message the removed commands created, found in the snapshot (0: none).
    pub snapshot_message: u64,
}

/// Why `CHAT_IN` may be trimmed up to `through`: what the persisters acked and what the
/// snapshot holds.
struct Guard {
    applied_through: u64,
    snapshot_message: u64,
}

/// Removes `CHAT_IN`'s commands up to and including `through`, after checking that the
/// persisters have applied them (`live` is jetchat's database) and that `snapshot`, a copy of
/// `live` taken after they were applied, holds them. Nothing is removed when a check fails.
pub async fn run(
    bus: &Bus,
    live: &DatabaseConnection,
    snapshot: &DatabaseConnection,
    through: u64,
) -> anyhow::Result<Report> {
    let name = bus.subjects.in_stream();
    let mut stream = super::stream(bus, name).await?;
    let state = stream.info().await?.state.clone();
    if through == 0 {
        bail!("--through 0 removes nothing: give the sequence written next to the snapshot");
    }
    if through > state.last_sequence {
        bail!(
            "--through {through} is past {name}'s last sequence {}: nothing was removed",
            state.last_sequence
        );
    }
    let guard = check(bus, live, snapshot, through).await?;
    let first_seq_before = state.first_sequence;
    let removed = if first_seq_before > through {
        0
    } else {
        // `sequence(n)` keeps n onwards: "up to but not including".
        stream
            .purge()
            .sequence(through + 1)
            .await
            .with_context(|| format!("removing {name}'s commands up to {through}"))?
            .purged
    };
    let state = stream.info().await?.state.clone();
    Ok(Report {
        first_seq_before,
        removed,
        first_seq: state.first_sequence,
        last_seq: state.last_sequence,
        applied_through: guard.applied_through,
        snapshot_message: guard.snapshot_message,
    })
}

/// Refuses, saying why and what to do, unless trimming up to `through` loses nothing.
async fn check(
    bus: &Bus,
    live: &DatabaseConnection,
    snapshot: &DatabaseConnection,
    through: u64,
) -> anyhow::Result<Guard> {
    let name = bus.subjects.in_stream();
    let applied_through = applied_through(bus).await?.with_context(|| {
        format!(
            "{name} has no persister consumer: nothing says which commands the database \
                 applied, so nothing was removed (start jetchat once, let it catch up)"
        )
    })?;
    if through > applied_through {
        bail!(
            "--through {through} is past what the database has applied: the persisters acked \
             {name} up to {applied_through}. Removing the rest would lose commands the database \
             does not hold; nothing was removed (read N from `jetchat streams` before the \
             snapshot, docs/operations.md)"
        );
    }
    let (live_epoch, snapshot_epoch) = (
        epoch(live).await?,
        epoch(snapshot)
            .await
            .context("--snapshot: it has no jetchat tables (an empty or another database?)")?,
    );
    if live_epoch != snapshot_epoch {
        bail!(
            "--snapshot is not a copy of DATABASE_URL (its change journal's epoch differs: \
             another database, or one rebuilt by reproject); nothing was removed"
        );
    }
    // The newest message the commands up to `through` created: a snapshot taken after they
    // were applied holds it.
    let newest: Option<i64> = message::Entity::find()
        .select_only()
        .column_as(message::Column::StreamSeq.max(), "newest")
        .filter(message::Column::StreamSeq.lte(through as i64))
        .into_tuple()
        .one(live)
        .await
        .context("reading DATABASE_URL")?
        .flatten();
    let snapshot_message = u64::try_from(newest.unwrap_or(0)).unwrap_or(0);
    if snapshot_message > 0 {
        let held = message::Entity::find()
            .filter(message::Column::StreamSeq.eq(snapshot_message as i64))
            .one(snapshot)
            .await
            .context("reading --snapshot")?
            .is_some();
        if !held {
            bail!(
                "--snapshot does not hold message {snapshot_message}, which {name}'s commands \
                 up to {through} created: it was taken before they were applied. Take a new \
                 snapshot, or trim less (--through below {snapshot_message}); nothing was removed"
            );
        }
    }
    Ok(Guard {
        applied_through,
        snapshot_message,
    })
}

/// The sequence every command up to which is in the database, from the persisters' durable
/// consumers on `CHAT_IN` (`persister`, or one per partition, `persister-<n>`): the lowest
/// ack floor among those that still hold commands (pending or unacked). A consumer that holds
/// none has applied every command it filters, whatever its ack floor says (a partition
/// without traffic acked nothing). `None` when there is no such consumer.
pub async fn applied_through(bus: &Bus) -> anyhow::Result<Option<u64>> {
    let name = bus.subjects.in_stream();
    let mut stream = super::stream(bus, name).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut floor: Option<u64> = None;
    for info in crate::bus::streams::persister_consumers(&stream).await? {
        let holds_commands = info.num_pending > 0 || info.num_ack_pending > 0;
        let applied = match holds_commands {
            true => info.ack_floor.stream_sequence,
            false => last,
        };
        floor = Some(floor.map_or(applied, |f| f.min(applied)));
    }
    Ok(floor)
}

/// The change journal's epoch: a copy of a database has its epoch, a rebuilt one a new one.
async fn epoch(db: &DatabaseConnection) -> anyhow::Result<String> {
    Ok(store::changes::sync_point(db).await?.epoch)
}
