//! The change journal (`changes`) and its counter (`sync_state`): written by the persister in
//! each batch's transaction, read by `sync` to replay what a client missed, in commit order.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr, DeriveIden, QueryResult,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement},
};

use super::chat_member;
use crate::domain::ChatId;
use crate::domain::UserId;

#[derive(DeriveIden, Clone, Copy)]
enum Changes {
    Table,
    Cursor,
    ChatId,
    Kind,
    UserId,
    MessageId,
    Event,
    EventKey,
    CommittedAt,
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    Id,
    LastCursor,
    PrunedThrough,
    Epoch,
}

/// `chat_members.joined_cursor`: where a member's catch-up in the chat starts.
#[derive(DeriveIden, Clone, Copy)]
pub enum Member {
    JoinedCursor,
}

pub const JOINED_CURSOR: Member = Member::JoinedCursor;

/// The kind of a receipt row: only the author of the marked message is told of it.
pub const RECEIPT: &str = "receipt";

/// The `kind` of a member's mute: told to that member only.
pub const CHAT_MUTED: &str = "chat_muted";
/// The kind of a block's row: of no chat (`chat_id` 0), told to the blocker (`user_id`) only.
pub const BLOCK_CHANGED: &str = "block_changed";
/// The kind of a removal row: a removed member's catch-up in the chat ends there.
pub const MEMBER_REMOVED: &str = "member_removed";
/// The kind of a new message row: rendered from `messages`, as the message is now.
pub const MESSAGE_CREATED: &str = "message_created";

/// The kind of a group's deletion: its members' catch-up in the group ends there.
pub const CHAT_DELETED: &str = "chat_deleted";

/// Deletes a deleted group's journal rows before `cursor` (its `chat_deleted`): what a
/// catch-up would replay of its history (edits' texts, names) goes with it.
pub async fn forget_chat(
    txn: &impl ConnectionTrait,
    chat_id: ChatId,
    cursor: u64,
) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(Changes::Table)
        .and_where(Expr::col(Changes::ChatId).eq(chat_id))
        .and_where(Expr::col(Changes::Cursor).lt(to_i64(cursor)))
        .to_owned();
    txn.execute(&delete).await.map(drop)
}

/// The kind of an edit row: its event carries the text, forgotten when the message is deleted.
pub const MESSAGE_EDITED: &str = "message_edited";

/// Drops the events of `message_id`'s journaled edits (their rows and cursors stay): a catch-up
/// skips them, so a deleted message's old texts are never sent again. The chat narrows the
/// search to its own rows (`idx_changes_chat_cursor`), not the whole journal.
pub async fn forget_edits(
    txn: &impl ConnectionTrait,
    chat_id: ChatId,
    message_id: i64,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Changes::Table)
        .value(Changes::Event, Option::<String>::None)
        .and_where(Expr::col(Changes::ChatId).eq(chat_id))
        .and_where(Expr::col(Changes::Kind).eq(MESSAGE_EDITED))
        .and_where(Expr::col(Changes::MessageId).eq(message_id))
        .to_owned();
    txn.execute(&update).await.map(drop)
}

/// Drops the events of the journaled edits of every message `sender_id` wrote (their rows
/// and cursors stay), as [`forget_edits`] does for one: an erased user's old texts are never
/// sent again.
pub async fn forget_edits_of_sender(
    txn: &impl ConnectionTrait,
    sender_id: UserId,
) -> Result<(), DbErr> {
    let theirs = Query::select()
        .column(super::message::Column::Id)
        .from(super::message::Entity)
        .and_where(Expr::col(super::message::Column::SenderId).eq(sender_id))
        .to_owned();
    let update = Query::update()
        .table(Changes::Table)
        .value(Changes::Event, Option::<String>::None)
        .and_where(Expr::col(Changes::Kind).eq(MESSAGE_EDITED))
        .and_where(Expr::col(Changes::MessageId).in_subquery(theirs))
        .to_owned();
    txn.execute(&update).await.map(drop)
}

/// One journaled change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub cursor: u64,
    pub chat_id: ChatId,
    pub kind: String,
    /// For a receipt, the author who is told; for a membership change, the member.
    pub user_id: Option<UserId>,
    pub message_id: Option<i64>,
    /// The event as published (every kind but a new message, which is read from `messages`).
    pub event: Option<String>,
    /// The event's key (`Nats-Msg-Id`): a re-emission finds its first row by it.
    pub key: String,
    pub committed_at: DateTime<Utc>,
}

/// The journal's counter and bounds.
#[derive(Clone, Debug)]
pub struct SyncPoint {
    /// The newest cursor handed out (committed in the snapshot that read it).
    pub last_cursor: u64,
    /// Rows up to this cursor were pruned (`SYNC_RETENTION`): a client behind it must reload.
    pub pruned_through: u64,
    /// Names this database's cursors; a rebuilt database has another.
    pub epoch: String,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Takes `n` cursors; returns the last of them. The caller's transaction holds the counter
/// until it commits (PostgreSQL: a row lock), which is what orders cursors by commit.
pub async fn take_cursors(txn: &impl ConnectionTrait, n: u64) -> Result<u64, DbErr> {
    let update = Query::update()
        .table(SyncState::Table)
        .value(
            SyncState::LastCursor,
            Expr::col(SyncState::LastCursor).add(to_i64(n)),
        )
        .and_where(Expr::col(SyncState::Id).eq(1))
        .returning_col(SyncState::LastCursor)
        .to_owned();
    let row = txn
        .query_one(&update)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("sync_state has no row; run the migrations".into()))?;
    Ok(to_u64(row.try_get_by_index::<i64>(0)?))
}

/// Inserts `rows`, skipping those whose key is journaled already; returns the cursors of the
/// rows inserted. Nothing is read back when every row went in (the rule: a batch journals
/// new events); only when some were skipped are the inserted ones looked up by their cursors,
/// which are this transaction's own.
pub async fn insert(txn: &impl ConnectionTrait, rows: &[Change]) -> Result<Vec<u64>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut insert = Query::insert();
    insert.into_table(Changes::Table).columns([
        Changes::Cursor,
        Changes::ChatId,
        Changes::Kind,
        Changes::UserId,
        Changes::MessageId,
        Changes::Event,
        Changes::EventKey,
        Changes::CommittedAt,
    ]);
    for row in rows {
        insert.values_panic([
            to_i64(row.cursor).into(),
            row.chat_id.into(),
            row.kind.clone().into(),
            row.user_id.into(),
            row.message_id.into(),
            row.event.clone().into(),
            row.key.clone().into(),
            row.committed_at.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::column(Changes::EventKey)
            .do_nothing()
            .to_owned(),
    );
    let inserted = txn.execute(&insert).await?.rows_affected();
    if inserted == rows.len() as u64 {
        return Ok(rows.iter().map(|r| r.cursor).collect());
    }
    let select = Query::select()
        .column(Changes::Cursor)
        .from(Changes::Table)
        .and_where(
            Expr::col(Changes::Cursor).is_in(super::in_list(rows.iter().map(|r| to_i64(r.cursor)))),
        )
        .to_owned();
    txn.query_all(&select)
        .await?
        .iter()
        .map(|row| Ok(to_u64(row.try_get_by_index::<i64>(0)?)))
        .collect()
}

/// The cursors of journaled events by key.
pub async fn cursors_of(
    txn: &impl ConnectionTrait,
    keys: impl IntoIterator<Item = String>,
) -> Result<Vec<(String, u64)>, DbErr> {
    let select = Query::select()
        .columns([Changes::EventKey, Changes::Cursor])
        .from(Changes::Table)
        .and_where(Expr::col(Changes::EventKey).is_in(super::in_list(keys)))
        .to_owned();
    keyed_cursors(txn, &select).await
}

/// The event journaled under `key`, as it was published (JSON); `None` when no event has
/// that key (or its row keeps none: a new message's).
pub async fn journaled_event(
    db: &impl ConnectionTrait,
    key: String,
) -> Result<Option<String>, DbErr> {
    let select = Query::select()
        .column(Changes::Event)
        .from(Changes::Table)
        .and_where(Expr::col(Changes::EventKey).eq(key))
        .to_owned();
    match db.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0),
        None => Ok(None),
    }
}

/// The rows of `select` as `(first column, cursor in the second)`.
async fn keyed_cursors<K: sea_orm::TryGetable>(
    db: &impl ConnectionTrait,
    select: &SelectStatement,
) -> Result<Vec<(K, u64)>, DbErr> {
    db.query_all(select)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<K>(0)?,
                to_u64(row.try_get_by_index::<i64>(1)?),
            ))
        })
        .collect()
}

/// The counter as a snapshot sees it.
pub async fn sync_point(db: &impl ConnectionTrait) -> Result<SyncPoint, DbErr> {
    let select = Query::select()
        .columns([
            SyncState::LastCursor,
            SyncState::PrunedThrough,
            SyncState::Epoch,
        ])
        .from(SyncState::Table)
        .and_where(Expr::col(SyncState::Id).eq(1))
        .to_owned();
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("sync_state has no row; run the migrations".into()))?;
    Ok(SyncPoint {
        last_cursor: to_u64(row.try_get_by_index::<i64>(0)?),
        pruned_through: to_u64(row.try_get_by_index::<i64>(1)?),
        epoch: row.try_get_by_index::<String>(2)?,
    })
}

const COLUMNS: [Changes; 8] = [
    Changes::Cursor,
    Changes::ChatId,
    Changes::Kind,
    Changes::UserId,
    Changes::MessageId,
    Changes::Event,
    Changes::EventKey,
    Changes::CommittedAt,
];

fn change(row: &QueryResult) -> Result<Change, DbErr> {
    Ok(Change {
        cursor: to_u64(row.try_get("", "cursor")?),
        chat_id: row.try_get("", "chat_id")?,
        kind: row.try_get("", "kind")?,
        user_id: row.try_get("", "user_id")?,
        message_id: row.try_get("", "message_id")?,
        event: row.try_get("", "event")?,
        key: row.try_get("", "event_key")?,
        committed_at: row.try_get("", "committed_at")?,
    })
}

/// What `user_id` is told of in their chats: every row but the receipts of others' messages
/// and others' mutes.
fn told(select: &mut SelectStatement, user_id: UserId) {
    select.and_where(
        Expr::col((Changes::Table, Changes::Kind))
            .is_not_in([RECEIPT, CHAT_MUTED])
            .or(Expr::col((Changes::Table, Changes::UserId)).eq(user_id)),
    );
}

/// The changes `user_id` is told of with a cursor in `(after, upto]`, oldest first, at most
/// `limit`: those of the chats they are in (from the moment they joined), and those of the
/// chats they were removed from in that range, up to the removal.
pub async fn missed(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: u64,
    upto: u64,
    limit: u64,
) -> Result<Vec<Change>, DbErr> {
    let mut rows = Vec::new();
    for select in missed_queries(db, user_id, after, upto, limit, &COLUMNS).await? {
        for row in db.query_all(&select).await?.iter() {
            rows.push(change(row)?);
        }
    }
    rows.sort_by_key(|r| r.cursor);
    rows.dedup_by_key(|r| r.cursor);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// How many changes [`missed`] would answer, counting no further than `cap`; reads cursors
/// only.
pub async fn count_missed(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: u64,
    upto: u64,
    cap: u64,
) -> Result<u64, DbErr> {
    let mut cursors = std::collections::BTreeSet::new();
    for select in missed_queries(db, user_id, after, upto, cap, &[Changes::Cursor]).await? {
        for row in db.query_all(&select).await?.iter() {
            cursors.insert(row.try_get::<i64>("", "cursor")?);
        }
    }
    Ok(std::cmp::Ord::min(cursors.len() as u64, cap))
}

/// The queries behind [`missed`]: one over the chats `user_id` is in, one over their blocks,
/// one per chat they were removed from in the range.
async fn missed_queries(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: u64,
    upto: u64,
    limit: u64,
    columns: &[Changes],
) -> Result<Vec<SelectStatement>, DbErr> {
    let cursor = || Expr::col((Changes::Table, Changes::Cursor));
    let mut current = Query::select();
    current
        .columns(columns.iter().map(|c| (Changes::Table, *c)))
        .from(Changes::Table)
        .inner_join(
            chat_member::Entity,
            Expr::col((chat_member::Entity, chat_member::Column::ChatId))
                .equals((Changes::Table, Changes::ChatId))
                .and(Expr::col((chat_member::Entity, chat_member::Column::UserId)).eq(user_id)),
        )
        .and_where(cursor().gt(to_i64(after)))
        .and_where(cursor().lte(to_i64(upto)))
        .and_where(cursor().gte(Expr::col((chat_member::Entity, JOINED_CURSOR))))
        .order_by((Changes::Table, Changes::Cursor), Order::Asc)
        .limit(limit);
    told(&mut current, user_id);
    // The user's blocks: rows of no chat (`idx_changes_blocks`).
    let mut blocks = Query::select();
    blocks
        .columns(columns.iter().map(|c| (Changes::Table, *c)))
        .from(Changes::Table)
        .and_where(Expr::col((Changes::Table, Changes::Kind)).eq(BLOCK_CHANGED))
        .and_where(Expr::col((Changes::Table, Changes::UserId)).eq(user_id))
        .and_where(cursor().gt(to_i64(after)))
        .and_where(cursor().lte(to_i64(upto)))
        .order_by((Changes::Table, Changes::Cursor), Order::Asc)
        .limit(limit);
    let mut queries = vec![current, blocks];
    for (chat_id, removed_at) in removals(db, user_id, after, upto).await? {
        let mut left = Query::select();
        left.columns(columns.iter().map(|c| (Changes::Table, *c)))
            .from(Changes::Table)
            .and_where(Expr::col((Changes::Table, Changes::ChatId)).eq(chat_id))
            .and_where(cursor().gt(to_i64(after)))
            .and_where(cursor().lte(to_i64(removed_at)))
            .order_by((Changes::Table, Changes::Cursor), Order::Asc)
            .limit(limit);
        told(&mut left, user_id);
        queries.push(left);
    }
    Ok(queries)
}

/// The chats `user_id` was removed from with a cursor in `(after, upto]`, with that cursor:
/// removals, and deletions of groups they were in (few: read whole, their members checked
/// here).
async fn removals(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: u64,
    upto: u64,
) -> Result<Vec<(ChatId, u64)>, DbErr> {
    let select = Query::select()
        .columns([Changes::ChatId, Changes::Cursor])
        .from(Changes::Table)
        .and_where(Expr::col(Changes::Kind).eq(MEMBER_REMOVED))
        .and_where(Expr::col(Changes::UserId).eq(user_id))
        .and_where(Expr::col(Changes::Cursor).gt(to_i64(after)))
        .and_where(Expr::col(Changes::Cursor).lte(to_i64(upto)))
        .to_owned();
    let mut removed = keyed_cursors(db, &select).await?;
    let deleted = Query::select()
        .columns([Changes::ChatId, Changes::Cursor, Changes::Event])
        .from(Changes::Table)
        .and_where(Expr::col(Changes::Kind).eq(CHAT_DELETED))
        .and_where(Expr::col(Changes::Cursor).gt(to_i64(after)))
        .and_where(Expr::col(Changes::Cursor).lte(to_i64(upto)))
        .to_owned();
    for row in db.query_all(&deleted).await? {
        let event: Option<String> = row.try_get_by_index(2)?;
        /// What a `chat_deleted` row tells of whom it is for.
        #[derive(serde::Deserialize)]
        struct Deleted {
            member_ids: Vec<UserId>,
        }
        let told = event
            .and_then(|json| serde_json::from_str::<Deleted>(&json).ok())
            .is_some_and(|deleted| deleted.member_ids.contains(&user_id));
        if told {
            removed.push((
                row.try_get_by_index(0)?,
                to_u64(row.try_get_by_index::<i64>(1)?),
            ));
        }
    }
    Ok(removed)
}

/// Where a catch-up from `since` starts so that changes committed just before `since` but
/// delivered after it (other chats, other instances' batches: a few milliseconds) are not
/// missed: the oldest cursor at most `most` before `since` committed at most `overlap`
/// before it. Those come again; a client drops a frame whose cursor it has.
pub async fn overlap_start(
    db: &impl ConnectionTrait,
    since: u64,
    overlap: chrono::Duration,
    most: u64,
) -> Result<u64, DbErr> {
    if since == 0 || overlap.is_zero() || most == 0 {
        return Ok(since);
    }
    let newest = Query::select()
        .column(Changes::CommittedAt)
        .from(Changes::Table)
        .and_where(Expr::col(Changes::Cursor).lte(to_i64(since)))
        .order_by(Changes::Cursor, Order::Desc)
        .limit(1)
        .to_owned();
    let Some(row) = db.query_one(&newest).await? else {
        return Ok(since);
    };
    let at: DateTime<Utc> = row.try_get_by_index(0)?;
    let oldest = Query::select()
        .expr_as(Expr::col(Changes::Cursor).min(), Alias::new("oldest"))
        .from(Changes::Table)
        .and_where(Expr::col(Changes::Cursor).lte(to_i64(since)))
        .and_where(Expr::col(Changes::Cursor).gt(to_i64(since.saturating_sub(most))))
        .and_where(Expr::col(Changes::CommittedAt).gte(at - overlap))
        .to_owned();
    let oldest: Option<i64> = match db.query_one(&oldest).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    // Start just before the oldest, so it is included.
    Ok(oldest.map_or(since, |c| to_u64(c).saturating_sub(1)))
}

/// Deletes the rows committed before `cutoff` (a bounded number per call, so a long backlog
/// never holds the writer for long); returns how many went.
pub async fn prune(
    txn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    most: u64,
) -> Result<u64, DbErr> {
    let newest_old = Query::select()
        .column(Changes::Cursor)
        .from(Changes::Table)
        .and_where(Expr::col(Changes::CommittedAt).lt(cutoff))
        .order_by(Changes::Cursor, Order::Asc)
        .limit(1)
        .offset(most.saturating_sub(1))
        .to_owned();
    // The last row to go: the `most`-th old one, or the newest old one when fewer are old.
    let through: Option<i64> = match txn.query_one(&newest_old).await? {
        Some(row) => Some(row.try_get_by_index(0)?),
        None => {
            let newest = Query::select()
                .expr_as(Expr::col(Changes::Cursor).max(), Alias::new("newest"))
                .from(Changes::Table)
                .and_where(Expr::col(Changes::CommittedAt).lt(cutoff))
                .to_owned();
            match txn.query_one(&newest).await? {
                Some(row) => row.try_get_by_index(0)?,
                None => None,
            }
        }
    };
    let Some(through) = through else {
        return Ok(0);
    };
    let deleted = txn
        .execute(
            &Query::delete()
                .from_table(Changes::Table)
                .and_where(Expr::col(Changes::Cursor).lte(through))
                .to_owned(),
        )
        .await?
        .rows_affected();
    txn.execute(
        &Query::update()
            .table(SyncState::Table)
            .value(SyncState::PrunedThrough, through)
            .and_where(Expr::col(SyncState::Id).eq(1))
            .and_where(Expr::col(SyncState::PrunedThrough).lt(through))
            .to_owned(),
    )
    .await?;
    Ok(deleted)
}
