//! A socket's catch-up: its `unread` summary first, then every change it missed since its
//! cursor (`?since=`, a `sync` frame) as planned by [`super::sync`], handed over exactly to
//! the live frames that came meanwhile, then `synced`.

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::SinkExt;
use sea_orm::DbErr;

use super::{
    protocol::{FrameError, ServerFrame, UnreadChat},
    router::{Inbox, Outbound},
    socket_state::{Sink, Socket},
    sync::{self, Plan, SyncRequest},
};
use crate::{domain::ErrorCode, metrics::FrameOut, store::queries};

/// Fewest time between two `sync` frames of one socket.
const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Socket {
    /// Takes a `sync` frame: run by the socket loop once the frame's turn is over, or refused
    /// when the last one was less than a second ago.
    pub(super) fn ask_sync(&mut self, request: SyncRequest) -> Option<Utf8Bytes> {
        let now = tokio::time::Instant::now();
        if let Some(last) = self.last_sync
            && now < last + SYNC_INTERVAL
        {
            let wait = (last + SYNC_INTERVAL - now).as_millis() as u64;
            return Some(FrameError::rate_limited("sync", wait).render());
        }
        self.last_sync = Some(now);
        self.pending_sync = Some(request);
        None
    }

    /// What a socket is sent first: its `unread` summary, then the catch-up it asked for
    /// with `?since=`, if it did.
    pub(super) async fn greet(
        &mut self,
        sink: &mut Sink,
        inbox: &mut Inbox,
    ) -> Result<(), axum::Error> {
        let turn = super::session::handshake_turn().await;
        let unread = self.unread().await;
        drop(turn);
        match unread {
            Ok(frame) => {
                self.state.metrics.frame_out(FrameOut::Unread);
                sink.feed(Message::Text(frame)).await?;
            }
            Err(error) => tracing::warn!(%error, "cannot read the unread summary"),
        }
        self.run_pending_sync(sink, inbox).await?;
        sink.flush().await
    }

    /// Runs the `sync` asked for, if one is.
    pub(super) async fn run_pending_sync(
        &mut self,
        sink: &mut Sink,
        inbox: &mut Inbox,
    ) -> Result<(), axum::Error> {
        let Some(request) = self.pending_sync.take() else {
            return Ok(());
        };
        let mut held = Vec::new();
        match self.catch_up(&request, sink, inbox, &mut held).await {
            Ok((kind, frame)) => {
                self.state.metrics.frame_out(kind);
                sink.feed(Message::Text(frame)).await?;
            }
            Err(CatchUpError::Socket(error)) => return Err(error),
            Err(CatchUpError::Db(error)) => {
                tracing::warn!(%error, "catch-up failed");
                let error = FrameError::new(
                    ErrorCode::Unavailable,
                    "the catch-up failed (database unavailable); send sync again",
                );
                sink.feed(Message::Text(error.render())).await?;
            }
        }
        // Live frames that came meanwhile, without those the catch-up had.
        for item in held {
            self.outbound(item, sink).await?;
        }
        Ok(())
    }

    /// Sends the missed changes; returns the closing frame (`synced` or `resync_required`).
    /// Live items that arrive meanwhile are kept in `held`.
    async fn catch_up(
        &mut self,
        request: &SyncRequest,
        sink: &mut Sink,
        inbox: &mut Inbox,
        held: &mut Vec<Outbound>,
    ) -> Result<(FrameOut, Utf8Bytes), CatchUpError> {
        let state = self.state.clone();
        let (mut after, point) =
            match sync::plan(&state.db, &state.config, self.user_id, request).await? {
                Plan::Resync {
                    reason,
                    detail,
                    point,
                } => {
                    let frame = ServerFrame::ResyncRequired {
                        reason,
                        detail: &detail,
                        cursor: point.last_cursor,
                        epoch: &point.epoch,
                    };
                    return Ok((frame.kind(), frame.render()));
                }
                Plan::Replay { after, point } => (after, point),
            };
        let mut sent = 0u64;
        loop {
            let page = sync::page(
                &state.db,
                &state.media.signer,
                self.user_id,
                after,
                point.last_cursor,
                sync::PAGE,
            )
            .await?;
            let Some(next) = page.next else { break };
            after = next;
            for one in page.rendered {
                if let Some(message) = &one.message {
                    let view = &message.view;
                    self.recent
                        .insert(view.message_id, view.chat_id, view.sender_id);
                    if state.config.auto_delivered && view.sender_id != self.user_id {
                        let newest = self.delivered.entry(view.chat_id).or_default();
                        *newest = (*newest).max(view.message_id);
                    }
                }
                state.metrics.frame_out(one.kind);
                sink.feed(Message::Text(one.frame)).await?;
                sent += 1;
            }
            sink.flush().await?;
            // Held no more than the socket's queue would hold: beyond that the queue fills and
            // the router closes the socket (4008), as for any client that cannot keep up.
            while held.len() < state.config.socket_queue
                && let Ok(item) = inbox.try_recv()
            {
                held.push(item);
            }
            if !page.full {
                break;
            }
        }
        self.sync_floor = self.sync_floor.max(point.last_cursor);
        let frame = ServerFrame::Synced {
            cursor: point.last_cursor,
            epoch: &point.epoch,
            changes: sent,
        };
        Ok((frame.kind(), frame.render()))
    }

    /// The `unread` frame: every chat of the socket's user with their unread count and newest
    /// message, and the cursor this picture stands at.
    async fn unread(&mut self) -> Result<Utf8Bytes, DbErr> {
        let db = &self.state.db;
        let point = crate::store::changes::sync_point(db).await?;
        let mut chat_ids: Vec<i64> = self.chats.iter().copied().collect();
        chat_ids.sort_unstable();
        let counts = queries::unread_counts(db, self.user_id).await?;
        let newest = queries::last_messages(db, &chat_ids).await?;
        let chats: Vec<UnreadChat> = chat_ids
            .into_iter()
            .map(|chat_id| UnreadChat {
                chat_id,
                unread: counts.get(&chat_id).copied().unwrap_or(0),
                last_message_id: newest.get(&chat_id).map(|m| m.id),
            })
            .collect();
        Ok(ServerFrame::Unread {
            chats: &chats,
            cursor: point.last_cursor,
            epoch: &point.epoch,
        }
        .render())
    }
}

/// Why a catch-up stopped.
#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Socket(#[from] axum::Error),
}
