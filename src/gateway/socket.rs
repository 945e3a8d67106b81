//! One client's socket: a single task that reads frames, publishes commands, and writes the
//! frames the router hands it through a bounded queue.

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
};

use async_nats::jetstream::{message::PublishMessage, publish::PublishAck};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{
    SinkExt, StreamExt,
    future::BoxFuture,
    stream::{FuturesOrdered, SplitSink, SplitStream},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    protocol::{self, FrameError, Request, SendRequest, ServerFrame},
    router::{ConnId, LiveMessage, Outbound},
};
use crate::{
    app::AppState,
    auth::UserId,
    bus::{
        Subjects,
        messages::{Command, MarkReceipt, Outcome, SendMessage, VERSION},
    },
    domain::{MessageId, ReceiptStatus},
    store::{ChatId, queries},
};

/// Close code for a socket whose queue overflowed (it reads too slowly).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code when the server shuts down ("going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a frame over the size limit ("message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// How long pushed messages wait before they are reported delivered together.
const DELIVERED_REPORT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Frames written before a flush.
const WRITE_BATCH: usize = 64;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

type Sink = SplitSink<WebSocket, Message>;

/// The outcome of a JetStream publish this socket waits for.
struct Published {
    client_msg_id: Option<String>,
    chat_id: Option<ChatId>,
    result: Result<PublishAck, String>,
}

/// The socket's own view of its user's chats.
struct Socket {
    state: AppState,
    user_id: UserId,
    conn: ConnId,
    chats: HashSet<ChatId>,
    /// Private chats by the other user.
    peers: HashMap<UserId, ChatId>,
    /// Sends accepted or in flight whose `message_ack` this socket owes.
    awaiting_ack: HashSet<String>,
    publishes: FuturesOrdered<BoxFuture<'static, Published>>,
    /// Chat and author of the messages pushed lately: repeats are dropped, and the client's
    /// marks of them need no database read.
    recent: RecentMessages,
    /// Newest message pushed per chat and not yet reported delivered (`AUTO_DELIVERED`).
    delivered: HashMap<ChatId, MessageId>,
    reply_to: String,
}

/// A socket that is authenticated and routed but not yet upgraded: opening it before the
/// WebSocket handshake completes means every event after the handshake reaches the client.
pub struct Session {
    socket: Socket,
    inbox: mpsc::Receiver<Outbound>,
    /// Cancelled when the router finds the queue full, and when the server shuts down.
    kick: CancellationToken,
    _registration: Registration,
}

/// Unregisters the socket from the router when dropped, whether the upgrade happened or not.
struct Registration {
    router: super::router::RouterHandle,
    conn: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.router.unregister(self.conn);
    }
}

impl Session {
    /// Loads the user's chats and registers the socket with the router.
    pub async fn open(state: AppState, user_id: UserId) -> Result<Self, sea_orm::DbErr> {
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
            state,
            user_id,
            conn,
            awaiting_ack: HashSet::new(),
            publishes: FuturesOrdered::new(),
            delivered: HashMap::new(),
            recent: RecentMessages::default(),
        };
        let registration = Registration {
            router: router.clone(),
            conn,
        };
        router
            .register(
                conn,
                user_id,
                socket.chats.iter().copied().collect(),
                outbox,
                kick.clone(),
            )
            .await;
        Ok(Session {
            socket,
            inbox,
            kick,
            _registration: registration,
        })
    }
}

/// Serves one socket until it closes, the server shuts down, or it is kicked.
///
/// Every socket's task is this future, so its size is memory per socket: the WebSocket is split
/// (into halves on the heap) before the task starts, the session comes boxed and is unpacked
/// once, and the large, brief futures of the loop (a frame's handling, the delivered report)
/// are boxed while they run.
pub fn serve(ws: WebSocket, session: Box<Session>) -> impl Future<Output = ()> {
    let span = tracing::info_span!(
        "socket",
        user_id = session.socket.user_id,
        conn = session.socket.conn
    );
    let (sink, stream) = ws.split();
    run(sink, stream, session).instrument(span)
}

async fn run(mut sink: Sink, mut stream: SplitStream<WebSocket>, session: Box<Session>) {
    let Session {
        mut socket,
        mut inbox,
        kick,
        _registration,
    } = *session;
    tracing::debug!(chats = socket.chats.len(), "socket open");
    let state = socket.state.clone();
    let close_grace = state.config.socket_close_grace;
    // A client that stops reading can leave a write waiting for ever, with the kick or the
    // shutdown never seen: after a grace period the connection is dropped instead.
    let session = async {
        let mut report_at: Option<tokio::time::Instant> = None;
        loop {
            let written = tokio::select! {
                biased;
                _ = kick.cancelled() => {
                    if state.shutdown.is_cancelled() {
                        close(&mut sink, CLOSE_GOING_AWAY, "server shutting down").await;
                    } else {
                        close(&mut sink, CLOSE_SLOW_CONSUMER, "too many undelivered frames; reconnect and read history").await;
                    }
                    break;
                }
                _ = tokio::time::sleep_until(report_at.unwrap_or_else(tokio::time::Instant::now)), if report_at.is_some() => {
                    report_at = None;
                    Box::pin(socket.report_delivered()).await;
                    Ok(())
                }
                Some(published) = socket.publishes.next() => {
                    match Box::pin(socket.published(published)).await {
                        Some(frame) => sink.feed(Message::Text(frame)).await,
                        None => Ok(()),
                    }
                }
                Some(item) = inbox.recv() => {
                    let mut result = socket.outbound(item, &mut sink).await;
                    for _ in 0..WRITE_BATCH {
                        let Ok(item) = inbox.try_recv() else { break };
                        result = result.and(socket.outbound(item, &mut sink).await);
                    }
                    result
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => match Box::pin(socket.inbound(&text)).await {
                        Some(reply) => sink.feed(Message::Text(reply)).await,
                        None => Ok(()),
                    },
                    Some(Ok(Message::Binary(_))) => {
                        let error = FrameError::new("bad_json", "binary frames are not supported; send JSON text");
                        sink.feed(Message::Text(error.render())).await
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => Ok(()), // ping and pong are answered by the library
                    Some(Err(error)) => {
                        if is_too_big(&error) {
                            close(&mut sink, CLOSE_TOO_BIG, "frame exceeds the size limit").await;
                        } else {
                            tracing::debug!(%error, "socket read failed");
                        }
                        break;
                    }
                },
            };
            if written.is_err() || sink.flush().await.is_err() {
                break;
            }
            if report_at.is_none() && !socket.delivered.is_empty() {
                report_at = Some(tokio::time::Instant::now() + DELIVERED_REPORT_DELAY);
            }
        }
    };
    let stuck = async {
        kick.cancelled().await;
        tokio::time::sleep(close_grace).await;
    };
    tokio::select! {
        _ = session => {}
        _ = stuck => tracing::debug!("the client takes no frames; dropping the connection"),
    }
    tracing::debug!("socket closed");
}

impl Socket {
    /// Handles a text frame; returns the frame to answer with, if any.
    async fn inbound(&mut self, text: &str) -> Option<Utf8Bytes> {
        let request = match protocol::parse(text, self.state.config.max_content_chars) {
            Ok(request) => request,
            Err(error) => return Some(error.render()),
        };
        let result = match request {
            Request::Send(send) => self.send(send).await,
            Request::Mark {
                message_id,
                chat_id,
                status,
            } => self.mark(message_id, chat_id, status).await,
            Request::Ping => return Some(ServerFrame::Pong.render()),
        };
        result.err().map(|e| e.render())
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
                    "invalid_field",
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
            reply_to: Some(self.reply_to.clone()),
        });
        let dedupe = Subjects::message_dedupe_id(self.user_id, &id);
        self.publish(subject, &command, Some(dedupe), Some(id.clone()), chat_id)
            .await?;
        self.awaiting_ack.insert(id);
        Ok(())
    }

    async fn mark(
        &mut self,
        message_id: MessageId,
        chat_id: Option<ChatId>,
        status: ReceiptStatus,
    ) -> Result<(), FrameError> {
        let not_found =
            || FrameError::new("not_found", format!("message {message_id} does not exist"));
        // Messages this socket was just handed need no database read.
        let (message_chat, sender_id) = match self.recent.get(message_id) {
            Some(known) => known,
            None => Box::pin(queries::message(&self.state.db, message_id))
                .await
                .map_err(|_| FrameError::new("unavailable", "database unavailable, retry later"))?
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
                "forbidden",
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
        self.publish(subject, &command, None, None, Some(chat_id))
            .await
    }

    /// Reports what this socket has pushed as delivered, one receipt per chat.
    async fn report_delivered(&mut self) {
        for (chat_id, message_id) in std::mem::take(&mut self.delivered) {
            if let Err(error) = self
                .publish_receipt(chat_id, message_id, ReceiptStatus::Delivered)
                .await
            {
                tracing::debug!(detail = error.detail, "delivered receipt not published");
            }
        }
    }

    /// Membership from the socket's own list, or from the database for a chat joined a
    /// moment ago (the router's event may still be on its way).
    async fn check_member(&mut self, chat_id: ChatId) -> Result<(), FrameError> {
        if self.chats.contains(&chat_id) {
            return Ok(());
        }
        let forbidden = || {
            FrameError::new(
                "forbidden",
                format!("you are not a member of chat {chat_id}"),
            )
        };
        match Box::pin(queries::membership(&self.state.db, chat_id, self.user_id)).await {
            Ok(Some(m)) => {
                self.joined(m);
                self.state.router.join(self.conn, chat_id);
                Ok(())
            }
            Ok(None) => Err(forbidden()),
            Err(_) => Err(FrameError::new(
                "unavailable",
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
    ) -> Result<(), FrameError> {
        let payload = serde_json::to_vec(command).expect("commands always serialise");
        let mut publish = PublishMessage::build().payload(payload.into());
        if let Some(id) = dedupe {
            publish = publish.message_id(id);
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            FrameError::new(
                "unavailable",
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
    async fn published(&mut self, published: Published) -> Option<Utf8Bytes> {
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
                        return Some(ack.render());
                    }
                }
                Some(
                    ServerFrame::MessageAccepted {
                        client_msg_id: &id,
                        chat_id,
                    }
                    .render(),
                )
            }
            (Ok(_), None) => None,
            (Err(e), id) => {
                if let Some(id) = &id {
                    self.awaiting_ack.remove(id);
                }
                let error = FrameError::new(
                    "unavailable",
                    format!("not accepted ({e}); retry with the same client_msg_id"),
                );
                Some(error.about(id.as_deref()).render())
            }
        }
    }

    /// Writes what the router handed over.
    async fn outbound(&mut self, item: Outbound, sink: &mut Sink) -> Result<(), axum::Error> {
        let frame = match item {
            Outbound::Message(message) => match self.message_frame(&message) {
                Some(frame) => frame,
                None => return Ok(()),
            },
            Outbound::Frame(frame) => Utf8Bytes::clone(&frame),
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
                ServerFrame::Error {
                    code: &code,
                    detail: &detail,
                    error: &detail,
                    client_msg_id: id.as_deref(),
                }
                .render()
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
            return Some(
                ServerFrame::MessageAck {
                    client_msg_id: &view.client_msg_id,
                    message_id: view.message_id,
                    chat_id: view.chat_id,
                    timestamp: view.timestamp,
                }
                .render(),
            );
        }
        if !first_time {
            return None; // a redelivered or caught-up message this socket already has
        }
        if self.state.config.auto_delivered && view.sender_id != self.user_id {
            self.delivered.insert(view.chat_id, view.message_id);
        }
        Some(message.frame.clone())
    }
}

/// The last [`RECENT_MESSAGES`] messages pushed to a socket, `(id, chat_id, sender_id)` in id
/// order. Ids are stream sequences, so they nearly always arrive in increasing order: a new
/// message is a push at the back and a repeat is found at once, without hashing into a map
/// that a busy instance's thousands of sockets would each keep cold in the cache.
#[derive(Default)]
struct RecentMessages {
    by_id: std::collections::VecDeque<(MessageId, ChatId, UserId)>,
}

/// How many pushed messages a socket remembers for marks without a database read.
const RECENT_MESSAGES: usize = 256;

impl RecentMessages {
    /// Remembers a message; `false` when it was already there. Past the limit the lowest id
    /// is forgotten.
    fn insert(&mut self, id: MessageId, chat_id: ChatId, sender_id: UserId) -> bool {
        match self.by_id.back() {
            Some(&(last, ..)) if id <= last => {
                match self.by_id.binary_search_by_key(&id, |&(id, ..)| id) {
                    Ok(_) => return false,
                    Err(at) => self.by_id.insert(at, (id, chat_id, sender_id)),
                }
            }
            _ => self.by_id.push_back((id, chat_id, sender_id)),
        }
        if self.by_id.len() > RECENT_MESSAGES {
            self.by_id.pop_front();
        }
        true
    }

    fn get(&self, id: MessageId) -> Option<(ChatId, UserId)> {
        let at = self.by_id.binary_search_by_key(&id, |&(id, ..)| id).ok()?;
        let (_, chat_id, sender_id) = self.by_id[at];
        Some((chat_id, sender_id))
    }
}

async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

/// Whether a read failed because a frame was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{RECENT_MESSAGES, RecentMessages};

    #[test]
    fn recent_messages_tell_repeats_in_any_order() {
        let mut recent = RecentMessages::default();
        assert!(recent.insert(10, 1, 7));
        assert!(recent.insert(12, 1, 8));
        assert!(!recent.insert(12, 1, 8), "the newest again");
        assert!(recent.insert(11, 2, 9), "a late one goes in between");
        assert!(!recent.insert(11, 2, 9));
        assert!(!recent.insert(10, 1, 7), "an older one again");
        assert_eq!(recent.get(11), Some((2, 9)));
        assert_eq!(recent.get(12), Some((1, 8)));
        assert_eq!(recent.get(13), None);
        let ids: Vec<i64> = recent.by_id.iter().map(|&(id, ..)| id).collect();
        assert_eq!(ids, [10, 11, 12]);
    }

    #[test]
    fn recent_messages_forget_the_oldest_past_the_limit() {
        let mut recent = RecentMessages::default();
        let last = RECENT_MESSAGES as i64 + 10;
        for id in 1..=last {
            assert!(recent.insert(id, 1, 1));
        }
        assert_eq!(recent.by_id.len(), RECENT_MESSAGES);
        assert_eq!(recent.get(10), None, "forgotten");
        assert_eq!(recent.get(11), Some((1, 1)));
        assert_eq!(recent.get(last), Some((1, 1)));
        assert!(recent.insert(5, 1, 1), "forgotten, so new again");
        assert_eq!(recent.by_id.len(), RECENT_MESSAGES);
        assert_eq!(recent.get(5), None, "and the lowest id goes first");
    }
}
