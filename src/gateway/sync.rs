//! Reconnect without gaps: a client that comes back with the cursor of the last frame it got
//! (`?since=` on `/ws/chat`, a `sync` frame, or `GET /sync`) is sent every change of its chats
//! it missed, in commit order, from the change journal (`store::changes`), then `synced`.
//!
//! The hand-over to live frames is exact: the socket is routed before the journal's newest
//! cursor `upto` is read, so a change after `upto` arrives live, and a live frame with a
//! cursor up to `upto` is dropped (the catch-up had it). Changes committed just before the
//! client's cursor are sent again (`SYNC_OVERLAP`): frames of different chats, or of batches
//! written by different instances, can reach a socket a few milliseconds out of cursor
//! order, and a client that dropped in between would otherwise miss one.

use std::{collections::HashMap, sync::Arc};

use axum::extract::ws::Utf8Bytes;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::{
    change_frames::{self, Audience},
    router::LiveMessage,
};
use crate::{
    bus::messages::Event,
    config::Config,
    domain::UserId,
    media::UrlSigner,
    metrics::FrameOut,
    store::{
        changes::{self, Change, SyncPoint},
        message, queries,
    },
};

/// Rows read from the journal at a time.
pub const PAGE: u64 = 500;

/// A catch-up asked for.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub since: u64,
    /// The epoch the client's cursor came with, if it kept it.
    pub epoch: Option<String>,
    /// `since` is where the previous page of this catch-up ended (`GET /sync?after=`): read
    /// on from exactly there, without the overlap, and without counting again.
    pub continued: bool,
}

/// What a catch-up from a cursor will be.
#[derive(Debug)]
pub enum Plan {
    /// Replay the changes in `(after, upto]`.
    Replay { after: u64, point: SyncPoint },
    /// It cannot be exact: the client reloads from history and resumes from `point`.
    Resync {
        reason: &'static str,
        detail: String,
        point: SyncPoint,
    },
}

/// Decides how `user_id` catches up from `request`.
pub async fn plan(
    db: &impl ConnectionTrait,
    config: &Config,
    user_id: UserId,
    request: &SyncRequest,
) -> Result<Plan, DbErr> {
    let point = changes::sync_point(db).await?;
    let resync = |reason, detail: String, point| {
        Ok(Plan::Resync {
            reason,
            detail,
            point,
        })
    };
    if let Some(epoch) = &request.epoch
        && *epoch != point.epoch
    {
        return resync(
            "other_epoch",
            "the cursor belongs to another database (rebuilt or restored)".into(),
            point,
        );
    }
    let since = request.since;
    if since > point.last_cursor {
        return resync(
            "unknown_cursor",
            format!(
                "cursor {since} is ahead of this server's newest ({})",
                point.last_cursor
            ),
            point,
        );
    }
    if since < point.pruned_through {
        return resync(
            "pruned",
            format!(
                "changes up to cursor {} are no longer kept (SYNC_RETENTION)",
                point.pruned_through
            ),
            point,
        );
    }
    if request.continued {
        return Ok(Plan::Replay {
            after: since,
            point,
        });
    }
    let overlap = chrono::Duration::from_std(config.sync_overlap).unwrap_or_default();
    let after = changes::overlap_start(db, since, overlap, config.sync_max)
        .await?
        .max(point.pruned_through);
    let missed =
        changes::count_missed(db, user_id, after, point.last_cursor, config.sync_max + 1).await?;
    if missed > config.sync_max {
        return resync(
            "too_far_behind",
            format!(
                "more than {} changes were missed (SYNC_MAX); reload from history",
                config.sync_max
            ),
            point,
        );
    }
    Ok(Plan::Replay { after, point })
}

/// A change as a frame for one user.
pub struct Rendered {
    pub cursor: u64,
    pub kind: FrameOut,
    pub frame: Utf8Bytes,
    /// For a new message: the message (so a socket counts it as delivered and drops its live
    /// copy).
    pub message: Option<Arc<LiveMessage>>,
}

/// A page of missed changes.
pub struct Page {
    pub rendered: Vec<Rendered>,
    /// The last row's cursor (read on from here), also when a row rendered to nothing (a
    /// message deleted since); `None` when no row was left.
    pub next: Option<u64>,
    /// A full page: more rows may follow.
    pub full: bool,
}

/// The next page of `user_id`'s missed changes after `after` up to `upto`, as frames.
pub async fn page(
    db: &impl ConnectionTrait,
    signer: &UrlSigner,
    user_id: UserId,
    after: u64,
    upto: u64,
    limit: u64,
) -> Result<Page, DbErr> {
    let rows = changes::missed(db, user_id, after, upto, limit).await?;
    let next = rows.last().map(|r| r.cursor);
    let full = rows.len() as u64 >= limit;
    let messages = messages_of(db, &rows).await?;
    let mut rendered = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(one) = render(&row, user_id, &messages, signer) {
            rendered.push(one);
        }
    }
    Ok(Page {
        rendered,
        next,
        full,
    })
}

/// The stored messages of the new-message rows, as they are now, with their chat's private
/// key (for `receiver_id`).
async fn messages_of(
    db: &impl ConnectionTrait,
    rows: &[Change],
) -> Result<HashMap<i64, crate::domain::MessageView>, DbErr> {
    let ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.kind == changes::MESSAGE_CREATED)
        .filter_map(|r| r.message_id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let stored = message::Entity::find()
        .filter(message::Column::Id.is_in(crate::store::in_list(ids)))
        .filter(message::Column::DeletedAt.is_null())
        .all(db)
        .await?;
    let mut chat_ids: Vec<i64> = stored.iter().map(|m| m.chat_id).collect();
    chat_ids.sort_unstable();
    chat_ids.dedup();
    let keys: HashMap<i64, Option<String>> = queries::chats(db, &chat_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.private_key))
        .collect();
    Ok(stored
        .into_iter()
        .map(|m| {
            let key = keys.get(&m.chat_id).cloned().flatten();
            (m.id, m.view(key.as_deref()))
        })
        .collect())
}

/// One row as `user_id`'s frame; `None` for a message deleted since (its `message_deleted`
/// follows) and for a row this user is not told of.
fn render(
    row: &Change,
    user_id: UserId,
    messages: &HashMap<i64, crate::domain::MessageView>,
    signer: &UrlSigner,
) -> Option<Rendered> {
    if row.kind == changes::MESSAGE_CREATED {
        let view = messages.get(&row.message_id?)?.clone();
        let message = LiveMessage::new(view, signer, Some(row.cursor));
        return Some(Rendered {
            cursor: row.cursor,
            kind: FrameOut::NewMessage,
            frame: message.frame.clone(),
            message: Some(message),
        });
    }
    let event: Event = match serde_json::from_str(row.event.as_deref()?) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, cursor = row.cursor, "undecodable journal row skipped");
            return None;
        }
    };
    let (kind, frame, audience) = change_frames::frame(&event)?;
    if audience != Audience::Members && !audience.includes(user_id) {
        return None;
    }
    Some(Rendered {
        cursor: row.cursor,
        kind,
        frame,
        message: None,
    })
}
