//! One socket's session: who it is, what it may see, and what each frame means — sends and
//! marks checked and published to `CHAT_IN`, JetStream's answers turned into frames, the
//! router's items into frames for the client.

use crate::domain::ErrorCode;
use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::{message::PublishMessage, publish::PublishAck};
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::{SinkExt, future::BoxFuture, stream::FuturesOrdered};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    protocol::{self, FrameError, Request, SendRequest, ServerFrame},
    recent::RecentMessages,
    router::{ConnId, LiveMessage, Outbound, RouterHandle, TooManySockets},
    socket::{Close, Sink},
    sync::SyncRequest,
    typing::Typing,
};
use crate::{
    auth::AccessToken,
    bus::{
        Subjects,
        live::{LiveEvent, TypingState},
        messages::{
            Command, DeleteMessage, EditMessage, MarkReceipt, MuteChat, Outcome, ReactToMessage,
            SendMessage, VERSION,
        },
    },
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, ReceiptStatus},
    limits::{self, RefusalStreak},
    metrics::{FrameIn, FrameOut},
    state::AppState,
    store::queries,
};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The outcome of a JetStream publish this socket waits for.
pub(super) struct Published {
    client_msg_id: Option<String>,
    chat_id: Option<ChatId>,
    result: Result<PublishAck, String>,
}

/// The socket's own view of its user's chats.
pub(super) struct Socket {
    pub(super) state: AppState,
    pub(super) user_id: UserId,
    pub(super) conn: ConnId,
    pub(super) chats: HashSet<ChatId>,
    /// Private chats by the other user.
    peers: HashMap<UserId, ChatId>,
    /// Sends accepted or in flight whose `message_ack` this socket owes.
    awaiting_ack: HashSet<String>,
    /// The `command_id`s of this socket's message changes (edits) whose refusal it would
    /// name in the `error` frame.
    awaiting_outcome: HashSet<String>,
    /// Publishes awaiting JetStream's ack, in the order they were sent.
    pub(super) publishes: FuturesOrdered<BoxFuture<'static, Published>>,
    /// Chat and author of the messages pushed lately: repeats are dropped, and the client's
    /// marks of them need no database read.
    pub(super) recent: RecentMessages,
    /// Newest message pushed per chat and not yet reported delivered (`AUTO_DELIVERED`).
    pub(super) delivered: HashMap<ChatId, MessageId>,
    reply_to: String,
    /// When the socket's token (plus `TOKEN_EXPIRY_GRACE`) runs out; `refresh_token` moves it.
    pub(super) expires_at: tokio::time::Instant,
    /// Rate-limit refusals since the last accepted send or mark.
    refusals: RefusalStreak,
    /// The chats this socket is typing in, and its typing rate limit.
    pub(super) typing: Typing,
    /// Live frames of changes up to this cursor are dropped: the last catch-up sent them.
    pub(super) sync_floor: u64,
    /// A catch-up to run when the current frame's turn is over.
    pub(super) pending_sync: Option<SyncRequest>,
    pub(super) last_sync: Option<tokio::time::Instant>,
}

/// A socket that is authenticated and routed but not yet upgraded: opening it before the
/// WebSocket handshake completes means every event after the handshake reaches the client.
pub struct Session {
    pub(super) socket: Socket,
    pub(super) inbox: mpsc::Receiver<Outbound>,
    /// Cancelled when the router finds the queue full, and when the server shuts down.
    pub(super) kick: CancellationToken,
    pub(super) _registration: Registration,
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
        let memberships = queries::memberships(&state.db, user_id).await?;
        let (outbox, inbox) = mpsc::channel(state.config.socket_queue);
        // A child of the server's shutdown token: shutting down cancels it too, so the socket
        // waits on one token of its own and never polls (and locks) the token every socket
        // shares.
        let kick = state.shutdown.child_token();
        let router = state.router.clone();
        let socket = Socket {
            reply_to: state.bus.subjects.socket_replies(&state.instance, conn),
            chats: memberships.iter().map(|m| m.chat_id).collect(),
            peers: memberships
                .iter()
                .filter_map(|m| Some((m.peer?, m.chat_id)))
                .collect(),
            expires_at: deadline(&state, exp),
            state,
            user_id,
            conn,
            awaiting_ack: HashSet::new(),
            awaiting_outcome: HashSet::new(),
            publishes: FuturesOrdered::new(),
            delivered: HashMap::new(),
            recent: RecentMessages::default(),
            refusals: RefusalStreak::default(),
            typing: Typing::default(),
            sync_floor: 0,
            pending_sync: sync,
            last_sync: None,
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

/// When a socket whose token expires at `exp` is closed.
fn deadline(state: &AppState, exp: i64) -> tokio::time::Instant {
    let grace = state.config.token_expiry_grace;
    tokio::time::Instant::now() + token_lifetime(exp, SystemTime::now(), grace)
}

/// How long from `now` a socket whose token expires at `exp` (Unix seconds) may stay open:
/// until `exp + grace`, nothing when that has passed.
fn token_lifetime(exp: i64, now: SystemTime, grace: Duration) -> Duration {
    let exp = UNIX_EPOCH + Duration::from_secs(u64::try_from(exp).unwrap_or(0));
    (exp + grace).duration_since(now).unwrap_or(Duration::ZERO)
}

impl Socket {
    /// Handles a text frame; returns the frame to answer with, if any, or why the socket is
    /// to be closed.
    pub(super) async fn inbound(&mut self, text: &str) -> Result<Option<Utf8Bytes>, Close> {
        let request = match protocol::parse(text, self.state.config.max_content_chars) {
            Ok(request) => request,
            Err(error) => {
                self.state.metrics.frame_in(FrameIn::Invalid);
                return Ok(Some(self.refuse(&error)));
            }
        };
        self.state.metrics.frame_in(request.kind());
        // Checked before anything else is done for the frame (a mark may read the database).
        let limits = &self.state.limits;
        let limit = match &request {
            Request::Send(_)
            | Request::Edit(_)
            | Request::Delete { .. }
            | Request::React { .. } => Some((limits.messages.check(self.user_id), "messages")),
            Request::Mark { .. } | Request::Mute { .. } => {
                Some((limits.marks.check(self.user_id), "marks"))
            }
            Request::Presence { .. } => Some((
                limits.presence_queries.check(self.user_id),
                "presence queries",
            )),
            // Per socket, not per user: each of a user's devices types on its own.
            Request::Typing { .. } => {
                Some((self.typing.check(&self.state.config), "typing frames"))
            }
            Request::Ping | Request::RefreshToken { .. } | Request::Sync { .. } => None,
        };
        if let Some((checked, what)) = limit {
            match checked {
                Ok(()) => self.refusals.passed(),
                Err(wait) => {
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
            } => {
                let command = Command::DeleteMessage(DeleteMessage {
                    v: VERSION,
                    command_id: command_id.clone(),
                    chat_id,
                    message_id,
                    deleter_id: Some(self.user_id),
                    reply_to: Some(self.reply_to.clone()),
                });
                self.change_message(chat_id, &command, command_id).await
            }
            Request::React {
                chat_id,
                message_id,
                emoji,
                add,
                command_id,
            } => {
                let reaction = ReactToMessage {
                    v: VERSION,
                    command_id: command_id.clone(),
                    chat_id,
                    message_id,
                    user_id: self.user_id,
                    emoji,
                    reply_to: Some(self.reply_to.clone()),
                };
                let command = if add {
                    Command::React(reaction)
                } else {
                    Command::Unreact(reaction)
                };
                self.change_message(chat_id, &command, command_id).await
            }
            Request::Mark {
                message_id,
                chat_id,
                status,
            } => self.mark(message_id, chat_id, status).await,
            Request::Ping => return Ok(Some(self.frame(ServerFrame::Pong))),
            Request::RefreshToken { token } => return Ok(Some(self.refresh(&token))),
            Request::Typing { chat_id, state } => self.typing(chat_id, state).await,
            Request::Mute { chat_id, until } => self.mute(chat_id, until).await,
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

    /// Renders a frame for the client and counts it.
    fn frame(&self, frame: ServerFrame<'_>) -> Utf8Bytes {
        let metrics = &self.state.metrics;
        metrics.frame_out(frame.kind());
        if let ServerFrame::Error { code, .. } = &frame {
            metrics.error(*code);
        }
        frame.render()
    }

    /// Renders the `error` frame for `error` and counts it by code.
    pub(super) fn refuse(&self, error: &FrameError) -> Utf8Bytes {
        let metrics = &self.state.metrics;
        metrics.frame_out(FrameOut::Error);
        metrics.error(error.code);
        error.render()
    }

    /// Moves the socket's deadline to a new token's `exp`, if the token is good and the user's;
    /// otherwise the socket keeps the deadline it had.
    fn refresh(&mut self, token: &str) -> Utf8Bytes {
        match self.state.keys.verify_access(token) {
            Err(error) => self.refuse(&FrameError::new(
                ErrorCode::InvalidToken,
                format!("{error}; the socket keeps its current token"),
            )),
            Ok(token) if token.user_id != self.user_id => self.refuse(&FrameError::new(
                ErrorCode::Forbidden,
                "the token is another user's; the socket keeps its current token",
            )),
            Ok(token) => {
                self.expires_at = deadline(&self.state, token.exp);
                self.frame(ServerFrame::TokenRefreshed { exp: token.exp })
            }
        }
    }

    async fn send(&mut self, send: SendRequest) -> Result<(), FrameError> {
        let id = send.client_msg_id.clone();
        // The chat first (membership may need the database), the subject from it after.
        let chat_id = match (send.chat_id, send.receiver_id) {
            (Some(chat_id), _) => {
                self.check_member(chat_id)
                    .await
                    .map_err(|e| e.about(Some(&id)))?;
                Some(chat_id)
            }
            (None, Some(receiver)) if receiver == self.user_id => {
                return Err(FrameError::new(
                    ErrorCode::InvalidField,
                    "you cannot send a private message to yourself",
                )
                .about(Some(&id)));
            }
            (None, Some(receiver)) => self.peers.get(&receiver).copied(),
            (None, None) => unreachable!("protocol::parse requires a chat or a receiver"),
        };
        let subjects = &self.state.bus.subjects;
        let subject = match chat_id {
            Some(chat_id) => subjects.message_command(chat_id),
            None => subjects.direct_message_command(),
        };
        let command = Command::SendMessage(SendMessage {
            v: VERSION,
            sender_id: self.user_id,
            chat_id,
            receiver_id: if chat_id.is_some() {
                None
            } else {
                send.receiver_id
            },
            content: send.content,
            content_type: send.content_type,
            file_url: send.file_url,
            file_id: send.file_id,
            client_msg_id: send.client_msg_id,
            reply_to_message_id: send.reply_to_message_id,
            forwarded_from: send.forwarded_from,
            reply_to: Some(self.reply_to.clone()),
        });
        let dedupe = Subjects::message_dedupe_id(self.user_id, &id);
        // The root of the message's trace (not a child of the socket's long-lived span); no
        // span at all without traces.
        let span = if crate::telemetry::enabled() {
            tracing::info_span!(parent: None, "send_message", user_id = self.user_id, chat_id)
        } else {
            tracing::Span::none()
        };
        let trace = crate::telemetry::context_headers(&span);
        self.publish(
            subject,
            &command,
            Some(dedupe),
            Some(id.clone()),
            chat_id,
            trace,
        )
        .instrument(span)
        .await?;
        self.awaiting_ack.insert(id);
        Ok(())
    }

    /// Publishes an edit of a message in a chat the user is in; whether it is theirs, not
    /// deleted and within `EDIT_WINDOW` is the persister's to decide (a refusal comes back
    /// as an `error` frame with the `command_id`, success as `message_edited`).
    async fn edit(&mut self, edit: protocol::EditRequest) -> Result<(), FrameError> {
        let command = Command::EditMessage(EditMessage {
            v: VERSION,
            command_id: edit.command_id.clone(),
            chat_id: edit.chat_id,
            message_id: edit.message_id,
            editor_id: self.user_id,
            content: edit.content,
            reply_to: Some(self.reply_to.clone()),
        });
        self.change_message(edit.chat_id, &command, edit.command_id)
            .await
    }

    /// Publishes a change to a message (an edit, a deletion) of a chat the user is in; the
    /// persister decides the rest (a refusal comes back as an `error` frame naming
    /// `command_id`).
    async fn change_message(
        &mut self,
        chat_id: ChatId,
        command: &Command,
        command_id: String,
    ) -> Result<(), FrameError> {
        self.check_member(chat_id)
            .await
            .map_err(|error| error.naming(&command_id))?;
        let subject = self
            .state
            .bus
            .subjects
            .admin_command(chat_id, command.kind());
        // No `Nats-Msg-Id`: a repeat must reach the persister to be answered again (applied
        // once; a refusal refused again).
        self.publish(subject, command, None, None, Some(chat_id), None)
            .await?;
        // Bounded: a socket that changes a lot without refusals keeps only the latest ids.
        if self.awaiting_outcome.len() >= 1024 {
            self.awaiting_outcome.clear();
        }
        self.awaiting_outcome.insert(command_id);
        Ok(())
    }

    async fn mark(
        &mut self,
        message_id: MessageId,
        chat_id: Option<ChatId>,
        status: ReceiptStatus,
    ) -> Result<(), FrameError> {
        let not_found = || {
            FrameError::new(
                ErrorCode::NotFound,
                format!("message {message_id} does not exist"),
            )
        };
        // Messages this socket was just handed need no database read.
        let (message_chat, sender_id) = match self.recent.get(message_id) {
            Some(known) => known,
            None => Box::pin(queries::message(&self.state.db, message_id))
                .await
                .map_err(|_| {
                    FrameError::new(ErrorCode::Unavailable, "database unavailable, retry later")
                })?
                .map(|m| (m.chat_id, m.sender_id))
                .ok_or_else(not_found)?,
        };
        if chat_id.is_some_and(|c| c != message_chat) {
            return Err(not_found());
        }
        // A stranger learns nothing about the message: same answer as for a missing one.
        self.check_member(message_chat)
            .await
            .map_err(|_| not_found())?;
        if sender_id == self.user_id {
            return Err(FrameError::new(
                ErrorCode::Forbidden,
                "you cannot mark your own message",
            ));
        }
        self.publish_receipt(message_chat, message_id, status).await
    }

    async fn publish_receipt(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        status: ReceiptStatus,
    ) -> Result<(), FrameError> {
        let command = Command::Receipt(MarkReceipt {
            v: VERSION,
            user_id: self.user_id,
            chat_id,
            message_id,
            status,
            reply_to: Some(self.reply_to.clone()),
        });
        let subject = self.state.bus.subjects.receipt_command(chat_id);
        self.publish(subject, &command, None, None, Some(chat_id), None)
            .await
    }

    /// Publishes the user's mute (or unmute) of a chat; the `chat_muted` frame that follows
    /// reaches every socket of theirs, a refusal this one as an `error` frame.
    async fn mute(
        &mut self,
        chat_id: ChatId,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), FrameError> {
        self.check_member(chat_id).await?;
        let command = Command::MuteChat(MuteChat {
            v: VERSION,
            command_id: uuid::Uuid::now_v7().to_string(),
            chat_id,
            user_id: self.user_id,
            muted_until: until,
            reply_to: Some(self.reply_to.clone()),
        });
        let subject = self.state.bus.subjects.mute_command(chat_id);
        self.publish(subject, &command, None, None, Some(chat_id), None)
            .await
    }

    /// Hands what this socket has pushed to the instance's gatherer of delivered marks
    /// (`gateway::delivered`), which publishes them for every socket at once. These marks are
    /// the server's own doing: they do not count against the user's mark limit.
    pub(super) fn report_delivered(&mut self) {
        if !self.delivered.is_empty() {
            self.state
                .delivered_marks
                .add(self.user_id, std::mem::take(&mut self.delivered));
        }
    }

    /// Tells the chat's other members that this user types (or stopped); a `stopped` for a
    /// chat the socket was not typing in tells nothing.
    async fn typing(&mut self, chat_id: ChatId, state: TypingState) -> Result<(), FrameError> {
        self.check_member(chat_id).await?;
        match state {
            TypingState::Started => {
                let until = tokio::time::Instant::now() + self.state.config.typing_timeout;
                self.typing.started(chat_id, until);
            }
            TypingState::Stopped => {
                if !self.typing.stopped(chat_id) {
                    return Ok(());
                }
            }
        }
        self.publish_typing(chat_id, state).await
    }

    /// Publishes a typing change on core NATS (`chat.live.<chat_id>.typing`): never stored.
    async fn publish_typing(
        &mut self,
        chat_id: ChatId,
        state: TypingState,
    ) -> Result<(), FrameError> {
        let timeout = self.state.config.typing_timeout;
        let event = LiveEvent::Typing {
            v: VERSION,
            chat_id,
            user_id: self.user_id,
            state,
            expires_in_ms: (state == TypingState::Started).then_some(timeout.as_millis() as u64),
        };
        let payload = serde_json::to_vec(&event).expect("live events serialise");
        self.state
            .bus
            .client
            .publish(
                self.state.bus.subjects.chat_live(chat_id, "typing"),
                payload.into(),
            )
            .await
            .map_err(|e| FrameError::new(ErrorCode::Unavailable, format!("typing not sent ({e})")))
    }

    /// Tells `stopped` for each chat whose typing ran out without a refresh.
    pub(super) async fn typing_expired(&mut self) {
        for chat_id in self.typing.expired(tokio::time::Instant::now()) {
            let _ = self.publish_typing(chat_id, TypingState::Stopped).await;
        }
    }

    /// Tells `stopped` for every chat still typed in (the socket closes).
    pub(super) async fn stop_typing(&mut self) {
        for chat_id in self.typing.take_all() {
            let _ = self.publish_typing(chat_id, TypingState::Stopped).await;
        }
    }

    /// The `presence_state` of a chat the user belongs to.
    async fn presence(&mut self, chat_id: ChatId) -> Result<Utf8Bytes, FrameError> {
        self.check_member(chat_id).await?;
        let presence = &self.state.presence;
        let members = Box::pin(presence.of_chat(&self.state.db, chat_id))
            .await
            .map_err(|_| {
                FrameError::new(ErrorCode::Unavailable, "database unavailable, retry later")
            })?;
        Ok(ServerFrame::PresenceState {
            chat_id,
            enabled: presence.enabled(),
            members: &members,
        }
        .render())
    }

    /// Membership from the socket's own list, or from the database for a chat joined a
    /// moment ago (the router's event may still be on its way).
    async fn check_member(&mut self, chat_id: ChatId) -> Result<(), FrameError> {
        if self.chats.contains(&chat_id) {
            return Ok(());
        }
        let forbidden = || {
            FrameError::new(
                ErrorCode::Forbidden,
                format!("you are not a member of chat {chat_id}"),
            )
        };
        match Box::pin(queries::membership(&self.state.db, chat_id, self.user_id)).await {
            Ok(Some(m)) => {
                self.joined(m);
                self.state.router.join(self.conn, chat_id).await;
                Ok(())
            }
            Ok(None) => Err(forbidden()),
            Err(_) => Err(FrameError::new(
                ErrorCode::Unavailable,
                "database unavailable, retry later",
            )),
        }
    }

    fn joined(&mut self, m: queries::Membership) {
        self.chats.insert(m.chat_id);
        if let Some(peer) = m.peer {
            self.peers.insert(peer, m.chat_id);
        }
    }

    /// Publishes a command to `CHAT_IN`; its acknowledgement is awaited alongside other work.
    async fn publish(
        &mut self,
        subject: String,
        command: &Command,
        dedupe: Option<String>,
        client_msg_id: Option<String>,
        chat_id: Option<ChatId>,
        trace: Option<async_nats::HeaderMap>,
    ) -> Result<(), FrameError> {
        let payload = serde_json::to_vec(command).expect("commands always serialise");
        let mut publish = PublishMessage::build().payload(payload.into());
        if let Some(headers) = trace {
            publish = publish.headers(headers);
        }
        if let Some(id) = dedupe {
            publish = publish.message_id(id);
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            FrameError::new(
                ErrorCode::Unavailable,
                format!("not accepted ({e}); retry with the same client_msg_id"),
            )
            .about(client_msg_id.as_deref())
        };
        let ack = self
            .state
            .bus
            .jetstream
            .send_publish(subject, publish)
            .await
            .map_err(|e| unavailable(&e))?;
        self.publishes.push_back(Box::pin(async move {
            Published {
                client_msg_id,
                chat_id,
                result: ack.await.map_err(|e| e.to_string()),
            }
        }));
        Ok(())
    }

    /// Turns a JetStream acknowledgement into `message_accepted` (or an error).
    pub(super) async fn published(&mut self, published: Published) -> Option<Utf8Bytes> {
        let Published {
            client_msg_id,
            chat_id,
            result,
        } = published;
        match (result, client_msg_id) {
            (Ok(ack), Some(id)) => {
                if ack.duplicate {
                    // A retry of a send JetStream already has: if it is stored, ack it now.
                    if let Ok(Some(m)) = Box::pin(queries::message_by_client_id(
                        &self.state.db,
                        self.user_id,
                        &id,
                    ))
                    .await
                    {
                        self.awaiting_ack.remove(&id);
                        let ack = ServerFrame::MessageAck {
                            client_msg_id: &id,
                            message_id: m.id,
                            chat_id: m.chat_id,
                            timestamp: m.created_at,
                        };
                        return Some(self.frame(ack));
                    }
                }
                self.state.metrics.messages_accepted.inc();
                Some(self.frame(ServerFrame::MessageAccepted {
                    client_msg_id: &id,
                    chat_id,
                }))
            }
            (Ok(_), None) => None,
            (Err(e), id) => {
                if let Some(id) = &id {
                    self.awaiting_ack.remove(id);
                }
                let error = FrameError::new(
                    ErrorCode::Unavailable,
                    format!("not accepted ({e}); retry with the same client_msg_id"),
                );
                Some(self.refuse(&error.about(id.as_deref())))
            }
        }
    }

    /// Writes what the router handed over.
    pub(super) async fn outbound(
        &mut self,
        item: Outbound,
        sink: &mut Sink,
    ) -> Result<(), axum::Error> {
        let frame = match item {
            Outbound::Message(message) => match self.message_frame(&message) {
                Some(frame) => frame,
                None => return Ok(()),
            },
            Outbound::Frame(kind, frame, cursor) => {
                if cursor != 0 && cursor <= self.sync_floor {
                    return Ok(()); // the catch-up sent it
                }
                self.state.metrics.frame_out(kind);
                Utf8Bytes::clone(&frame)
            }
            Outbound::Left(chat_id) => {
                self.chats.remove(&chat_id);
                self.peers.retain(|_, c| *c != chat_id);
                return Ok(());
            }
            Outbound::Joined(m) => {
                self.joined(*m);
                return Ok(());
            }
            Outbound::Reply(outcome) => {
                if let Outcome::Applied { command_id, .. } = &*outcome {
                    self.awaiting_outcome.remove(command_id);
                }
                let Outcome::Rejected {
                    command_id,
                    code,
                    detail,
                    ..
                } = *outcome
                else {
                    return Ok(());
                };
                let id = self.awaiting_ack.take(&command_id);
                let change = self.awaiting_outcome.take(&command_id);
                self.frame(ServerFrame::Error {
                    code,
                    detail: &detail,
                    error: &detail,
                    client_msg_id: id.as_deref(),
                    command_id: change.as_deref(),
                    retry_after_ms: None,
                })
            }
        };
        sink.feed(Message::Text(frame)).await
    }

    /// `message_ack` for this socket's own send, `new_message` otherwise, nothing for a repeat.
    fn message_frame(&mut self, message: &LiveMessage) -> Option<Utf8Bytes> {
        let view = &message.view;
        let first_time = self
            .recent
            .insert(view.message_id, view.chat_id, view.sender_id);
        // A send this socket waits on is acked even when the message was seen before (a retry).
        if view.sender_id == self.user_id && self.awaiting_ack.remove(&view.client_msg_id) {
            return Some(self.frame(ServerFrame::MessageAck {
                client_msg_id: &view.client_msg_id,
                message_id: view.message_id,
                chat_id: view.chat_id,
                timestamp: view.timestamp,
            }));
        }
        if !first_time || message.cursor.is_some_and(|c| c <= self.sync_floor) {
            return None; // a redelivered or caught-up message this socket already has
        }
        if self.state.config.auto_delivered && view.sender_id != self.user_id {
            self.delivered.insert(view.chat_id, view.message_id);
        }
        let metrics = &self.state.metrics;
        metrics.frame_out(FrameOut::NewMessage);
        metrics.messages_delivered.inc();
        Some(message.frame.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_lives_until_exp_plus_the_grace() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let grace = Duration::from_secs(5);
        assert_eq!(token_lifetime(1_010, now, grace), Duration::from_secs(15));
        assert_eq!(token_lifetime(997, now, grace), Duration::from_secs(2));
        assert_eq!(token_lifetime(990, now, grace), Duration::ZERO, "long past");
        assert_eq!(token_lifetime(-5, now, grace), Duration::ZERO);
    }
}
