//! A socket's session: opened (authenticated, its chats loaded, routed) before the WebSocket
//! handshake completes, then the loop's turn for each frame: parse it into a typed
//! [`Request`], check the sender's rate limit, and hand it to its command
//! ([`super::commands`], one file per command or family).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::{
    close::Close,
    protocol::{self, FrameError, Request, ServerFrame},
    recent::RecentMessages,
    router::{self, ConnId, Inbox, RouterHandle, TooManySockets},
    socket_state::{Socket, deadline},
    sync::SyncRequest,
    typing::Typing,
};
use crate::{
    auth::AccessToken,
    limits::{self, Limit, RefusalStreak},
    metrics::FrameIn,
    state::AppState,
    store::queries,
};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Handshakes that query the database at once (the user's chats, the unread summary); others
/// wait their turn. After a restart every client reconnects at once: unbounded, every
/// handshake's queries and their results are held together, and the memory they took is kept
/// by the allocator long after (idle, 8,000 sockets opened 256 at a time: ~4 KB more of RSS
/// per socket than 32 at a time). The database answers no faster for more at once. Only the
/// queries wait here, never a client: a client that stops reading cannot hold a turn.
const HANDSHAKE_QUERIES_AT_ONCE: usize = 32;

static HANDSHAKE_QUERIES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(HANDSHAKE_QUERIES_AT_ONCE);

/// A turn among the handshakes' queries, held while they run.
pub(super) async fn handshake_turn() -> Option<tokio::sync::SemaphorePermit<'static>> {
    // Never closed: acquiring cannot fail.
    HANDSHAKE_QUERIES.acquire().await.ok()
}

/// A socket that is authenticated and routed but not yet upgraded: opening it before the
/// WebSocket handshake completes means every event after the handshake reaches the client.
pub struct Session {
    pub(super) socket: Socket,
    pub(super) inbox: Inbox,
    /// Cancelled when the router finds the queue full, and when the server shuts down.
    pub(super) kick: CancellationToken,
    pub(super) _registration: Registration,
}

impl Session {
    /// Takes the session out of its box, freeing the box at once: moved out of in place
    /// (`let Session { .. } = *boxed`), the box's memory would stay allocated as long as the
    /// socket's task, beside the copy the task holds (~600 B per socket).
    pub(super) fn unboxed(boxed: Box<Self>) -> Self {
        *boxed
    }
}

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The user's chats could not be read.
    #[error("cannot read the user's chats: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// `MAX_SOCKETS_PER_USER` reached on this instance.
    #[error(transparent)]
    TooManySockets(#[from] TooManySockets),
}

/// Unregisters the socket from the router when dropped, whether the upgrade happened or not.
pub(super) struct Registration {
    router: RouterHandle,
    conn: ConnId,
    /// The socket's share of its user's presence (none with `PRESENCE=off`).
    _online: Option<crate::presence::Online>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.router.unregister(self.conn);
    }
}

impl Session {
    /// Loads the user's chats and registers the socket with the router, which refuses it when
    /// the user already has `MAX_SOCKETS_PER_USER` sockets here.
    pub async fn open(
        state: AppState,
        token: AccessToken,
        sync: Option<SyncRequest>,
    ) -> Result<Self, OpenError> {
        let AccessToken { user_id, exp, .. } = token;
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let turn = handshake_turn().await;
        let memberships = queries::memberships(&state.db, user_id).await?;
        // Whose presence this socket is not told (one indexed read; none with presence off).
        let blockers = if state.presence.enabled() {
            crate::store::blocks::blockers_of(&state.db, user_id).await?
        } else {
            Vec::new()
        };
        drop(turn);
        let (outbox, inbox) = router::queue(state.config.socket_queue);
        // A child of the server's shutdown token: shutting down cancels it too, so the socket
        // waits on one token of its own and never polls (and locks) the token every socket
        // shares.
        let kick = state.shutdown.child_token();
        let router = state.router.clone();
        let socket = Socket {
            chats: memberships.iter().map(|m| m.chat_id).collect(),
            peers: memberships
                .iter()
                .filter_map(|m| Some((m.peer?, m.chat_id)))
                .collect(),
            direct: HashSet::new(),
            expires_at: deadline(&state, exp),
            state,
            user_id,
            conn,
            awaiting_ack: HashSet::new(),
            awaiting_outcome: HashMap::new(),
            publishes: Default::default(),
            delivered: HashMap::new(),
            recent: RecentMessages::default(),
            refusals: RefusalStreak::default(),
            typing: Typing::default(),
            sync_floor: 0,
            pending_sync: sync,
            last_sync: None,
            closing: None,
        };
        let mut registration = Registration {
            router: router.clone(),
            conn,
            _online: None,
        };
        router
            .register(
                conn,
                user_id,
                socket.chats.iter().copied().collect(),
                blockers,
                outbox,
                kick.clone(),
            )
            .await?;
        registration._online = socket.state.presence.online(user_id);
        Ok(Session {
            socket,
            inbox,
            kick,
            _registration: registration,
        })
    }
}

impl Socket {
    /// Handles a text frame; returns the frame to answer with, if any, or why the socket is
    /// to be closed.
    pub(in crate::gateway) async fn inbound(
        &mut self,
        text: &str,
    ) -> Result<Option<Utf8Bytes>, Close> {
        let request = match protocol::parse(text, self.state.config.max_content_chars) {
            Ok(request) => request,
            Err(error) => {
                self.state.metrics.frame_in(FrameIn::Invalid);
                return Ok(Some(self.refuse(&error)));
            }
        };
        self.state.metrics.frame_in(request.kind());
        // Checked before anything else is done for the frame (a mark may read the database).
        let limit = match &request {
            Request::Send(_)
            | Request::Edit(_)
            | Request::Delete { .. }
            | Request::React { .. }
            | Request::Group(_)
            | Request::Block { .. }
            | Request::Pin { .. } => Some(Limit::Messages),
            Request::Mark { .. } | Request::Mute { .. } => Some(Limit::Marks),
            Request::Presence { .. } => Some(Limit::PresenceQueries),
            Request::Typing { .. } | Request::Ping | Request::RefreshToken { .. } => None,
            Request::Sync { .. } => None,
        };
        let checked = match (&request, limit) {
            (_, Some(limit)) => Some(self.state.limits.check(limit, self.user_id)),
            // Per socket, not per user: each of a user's devices types on its own.
            (Request::Typing { .. }, None) => Some(self.typing.check(&self.state.config).map_err(
                |wait| limits::OverLimit {
                    what: "typing frames",
                    wait,
                },
            )),
            _ => None,
        };
        if let Some(checked) = checked {
            match checked {
                Ok(()) => self.refusals.passed(),
                Err(limits::OverLimit { what, wait }) => {
                    if self.refusals.refused() {
                        return Err(Close::RateLimited);
                    }
                    let id = match &request {
                        Request::Send(send) => Some(send.client_msg_id.as_str()),
                        _ => None,
                    };
                    let error = FrameError::rate_limited(what, limits::retry_after_ms(wait));
                    self.state.metrics.rate_limited.inc();
                    return Ok(Some(self.refuse(&error.about(id))));
                }
            }
        }
        let result = match request {
            Request::Send(send) => self.send(send).await,
            Request::Edit(edit) => self.edit(edit).await,
            Request::Delete {
                chat_id,
                message_id,
                command_id,
            } => self.delete(chat_id, message_id, command_id).await,
            Request::React {
                chat_id,
                message_id,
                emoji,
                add,
                command_id,
            } => {
                self.react(chat_id, message_id, emoji, add, command_id)
                    .await
            }
            Request::Mark {
                message_id,
                chat_id,
                status,
            } => self.mark(message_id, chat_id, status).await,
            Request::Ping => return Ok(Some(self.frame(ServerFrame::Pong))),
            Request::RefreshToken { token } => return Ok(Some(self.refresh(&token))),
            Request::Typing { chat_id, state } => self.typing(chat_id, state).await,
            Request::Mute {
                chat_id,
                until,
                mute_mentions,
                command_id,
            } => self.mute(chat_id, until, mute_mentions, command_id).await,
            Request::Group(group) => self.group(group).await,
            Request::Block {
                user_id,
                blocked,
                command_id,
            } => self.block(user_id, blocked, command_id).await,
            Request::Pin {
                chat_id,
                message_id,
                pinned,
                command_id,
            } => self.pin(chat_id, message_id, pinned, command_id).await,
            Request::Presence { chat_id } => {
                let answer = self.presence(chat_id).await;
                return Ok(Some(answer.unwrap_or_else(|e| self.refuse(&e))));
            }
            Request::Sync { since, epoch } => {
                return Ok(self.ask_sync(SyncRequest {
                    since,
                    epoch,
                    continued: false,
                }));
            }
        };
        Ok(result.err().map(|e| self.refuse(&e)))
    }
}
