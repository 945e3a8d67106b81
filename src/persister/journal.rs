//! The change journal: every change a member's sockets are told about gets a row and a
//! cursor in the transaction that makes it, so `sync` can replay exactly what a client
//! missed (`gateway::sync`, `store::changes`).
//!
//! Cursors come from `sync_state.last_cursor`, moved once per batch as the transaction's last
//! write (once per command, in its savepoint, when a batch is isolated): on PostgreSQL the row lock is held until commit, so a batch of another instance
//! takes its cursors only after this one committed, and cursors increase in commit order; on
//! SQLite writers are serialised anyway. A snapshot that sees cursor N therefore sees every
//! cursor below it.
//!
//! A re-emitted event (a redelivered or replayed command found stored) keeps the cursor of
//! its first emission: its row is found by the event's key.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, sea_query::Query};

use crate::{
    bus::messages::Event,
    store::changes::{self, Change},
};

/// Rows per multi-row INSERT (7 parameters each: well under either database's limit).
const CHUNK: usize = 500;

/// Journals `events` (those with a journal kind) and sets their cursors.
pub async fn record(
    txn: &impl ConnectionTrait,
    events: &mut [Event],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let journaled: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].cursor().is_none() && events[i].cursor_mut().is_some())
        .collect();
    if journaled.is_empty() {
        return Ok(());
    }
    let last = changes::take_cursors(txn, journaled.len() as u64).await?;
    let first = last + 1 - journaled.len() as u64;
    let mut rows = Vec::with_capacity(journaled.len());
    for (n, &i) in journaled.iter().enumerate() {
        let cursor = first + n as u64;
        if let Some(slot) = events[i].cursor_mut() {
            *slot = Some(cursor);
        }
        rows.push(row(&events[i], cursor, at));
    }
    // The cursors of the rows that went in; a row whose key was journaled before did not.
    let mut inserted = HashSet::new();
    for chunk in rows.chunks(CHUNK) {
        inserted.extend(changes::insert(txn, chunk).await?);
    }
    let repeated: Vec<String> = rows
        .iter()
        .filter(|r| !inserted.contains(&r.cursor))
        .map(|r| r.key.clone())
        .collect();
    // Re-emissions keep the cursor of their first emission.
    let mut earlier: HashMap<String, u64> = HashMap::new();
    for keys in repeated.chunks(CHUNK) {
        earlier.extend(changes::cursors_of(txn, keys.iter().cloned()).await?);
    }
    for (&i, row) in journaled.iter().zip(&rows) {
        if !inserted.contains(&row.cursor) {
            if let (Some(&cursor), Some(slot)) = (earlier.get(&row.key), events[i].cursor_mut()) {
                *slot = Some(cursor);
            }
            continue;
        }
        match &events[i] {
            Event::ChatCreated(e) => {
                joined(txn, e.chat.chat_id, &e.chat.member_ids, row.cursor).await?;
            }
            Event::MemberAdded(e) => joined(txn, e.chat_id, &[e.user_id], row.cursor).await?,
            // A deleted group's history is erased from the journal too: its members' catch-up
            // holds `chat_deleted` alone.
            Event::ChatDeleted(e) => changes::forget_chat(txn, e.chat_id, row.cursor).await?,
            _ => {}
        }
    }
    // A deletion forgets the message's journaled edits (its handler calls `forget_edits`),
    // but an edit of the same batch is journaled only now, after it: forget it too, or a
    // catch-up would send the deleted message's text again.
    for event in events.iter() {
        let Event::MessageDeleted(deleted) = event else {
            continue;
        };
        let edited_here = events.iter().any(
            |other| matches!(other, Event::MessageEdited(e) if e.message_id == deleted.message_id),
        );
        if edited_here {
            changes::forget_edits(txn, deleted.chat_id, deleted.message_id).await?;
        }
    }
    Ok(())
}

/// Records where `users`' catch-up in `chat_id` starts.
async fn joined(
    txn: &impl ConnectionTrait,
    chat_id: i64,
    users: &[i64],
    cursor: u64,
) -> Result<(), DbErr> {
    use crate::store::chat_member::{Column, Entity};
    use sea_orm::sea_query::{Expr, ExprTrait};
    let update = Query::update()
        .table(Entity)
        .value(changes::JOINED_CURSOR, cursor as i64)
        .and_where(Expr::col(Column::ChatId).eq(chat_id))
        .and_where(Expr::col(Column::UserId).is_in(crate::store::in_list(users.iter().copied())))
        .to_owned();
    txn.execute(&update).await.map(|_| ())
}

/// The journal row of a journaled event.
fn row(event: &Event, cursor: u64, at: DateTime<Utc>) -> Change {
    let (user_id, message_id) = match event {
        Event::MessageCreated(e) => (None, Some(e.message.message_id)),
        Event::Receipt(e) => (Some(e.sender_id), Some(e.message_id)),
        Event::MemberAdded(e) => (Some(e.user_id), None),
        Event::MemberRemoved(e) => (Some(e.user_id), None),
        Event::MemberRoleChanged(e) => (Some(e.user_id), None),
        Event::MessageDeleted(e) => (None, Some(e.message_id)),
        Event::MessageEdited(e) => (None, Some(e.message_id)),
        Event::ReactionAdded(e) | Event::ReactionRemoved(e) => {
            (Some(e.user_id), Some(e.message_id))
        }
        Event::ChatMuted(e) => (Some(e.user_id), None),
        // The blocker: the one told (`changes::BLOCK_CHANGED`).
        Event::BlockChanged(e) => (Some(e.user_id), None),
        Event::MessagePinned(e) | Event::MessageUnpinned(e) => (None, Some(e.message_id)),
        _ => (None, None),
    };
    let event_json = match event {
        // Rendered from `messages` as the message is when it is read.
        Event::MessageCreated(_) => None,
        other => serde_json::to_string(other).ok(),
    };
    Change {
        cursor,
        chat_id: event.chat_id().unwrap_or(0),
        kind: event.kind().to_owned(),
        user_id,
        message_id,
        event: event_json,
        key: event.key(),
        committed_at: at,
    }
}

/// How often old journal rows are pruned, at most (a short retention prunes more often).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Most rows one prune deletes (one short transaction; the next round takes the rest).
const PRUNE_MOST: u64 = 10_000;

/// Deletes journal rows older than `retention` every [`PRUNE_EVERY`] (or half the retention,
/// when that is shorter) until `shutdown`. Several
/// instances may each run it: deleting what another already deleted is nothing.
pub fn spawn_pruner(
    db: sea_orm::DatabaseConnection,
    retention: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let period = (retention / 2).clamp(std::time::Duration::from_millis(100), PRUNE_EVERY);
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let Some(cutoff) = Utc::now().checked_sub_signed(retention) else {
                continue;
            };
            let pruned = async {
                let txn = crate::store::begin_write(&db).await?;
                let n = changes::prune(&txn, cutoff, PRUNE_MOST).await?;
                txn.commit().await?;
                Ok::<u64, DbErr>(n)
            };
            match pruned.await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned the change journal (SYNC_RETENTION)"),
                Err(error) => {
                    tracing::warn!(%error, "pruning the change journal failed; retrying later")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bus::messages::{MemberRemoved, ReceiptEvent, VERSION},
        domain::ReceiptStatus,
    };

    #[test]
    fn a_receipt_row_names_the_author_it_is_for_and_keeps_the_event() {
        let event = Event::Receipt(ReceiptEvent {
            v: VERSION,
            cursor: Some(9),
            chat_id: 7,
            message_id: 42,
            user_id: 2,
            status: ReceiptStatus::Delivered,
            sender_id: 1,
        });
        let row = row(&event, 9, Utc::now());
        assert_eq!(
            (row.chat_id, row.user_id, row.message_id),
            (7, Some(1), Some(42))
        );
        assert_eq!(row.kind, changes::RECEIPT);
        assert_eq!(row.key, event.key());
        let stored: Event = serde_json::from_str(row.event.as_deref().unwrap()).unwrap();
        assert_eq!(
            stored.cursor(),
            Some(9),
            "the stored event carries its cursor"
        );
    }

    #[test]
    fn a_removal_row_names_the_member() {
        let event = Event::MemberRemoved(MemberRemoved {
            v: VERSION,
            cursor: Some(3),
            chat_id: 7,
            user_id: 5,
            command_id: Some("rm".into()),
            removed_by: None,
        });
        let row = row(&event, 3, Utc::now());
        assert_eq!(row.kind, changes::MEMBER_REMOVED);
        assert_eq!(row.user_id, Some(5));
    }
}
