//! One socket's own state: who it is, the chats it may see, what it awaits from JetStream and
//! the persister; and what every command needs of it (membership, publishing to `CHAT_IN`,
//! rendering and counting frames).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_nats::{
    Subject,
    jetstream::{message::PublishMessage, publish::PublishAck},
};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{
    future::BoxFuture,
    stream::{FuturesOrdered, SplitSink},
};

use super::{
    protocol::{FrameError, ServerFrame},
    recent::RecentMessages,
    router::ConnId,
    sync::SyncRequest,
    typing::Typing,
};
use crate::{
    bus::messages::Command,
    domain::{ChatId, ErrorCode, MessageId, UserId},
    limits::RefusalStreak,
    metrics::{FrameOut, RefusalSource},
    state::AppState,
    store::queries,
};

/// The sending half of a socket, where frames are written.
pub(in crate::gateway) type Sink = SplitSink<WebSocket, Message>;

/// The outcome of a JetStream publish this socket waits for.
pub(in crate::gateway) struct Published {
    pub(in crate::gateway) client_msg_id: Option<String>,
    pub(in crate::gateway) chat_id: Option<ChatId>,
    pub(in crate::gateway) result: Result<PublishAck, String>,
    /// A send's subject and payload, to publish again without its dedupe id when JetStream
    /// answers that it has the send already but the database has no such message (the first
    /// send was refused, or is still on its way): the persister then answers this one.
    pub(in crate::gateway) resend: Option<(Subject, bytes::Bytes)>,
}

/// A socket's publishes awaiting JetStream's ack, in the order they were sent. The queue is
/// made on the first publish: made, it allocates ~150 B at once, and most sockets are idle.
#[derive(Default)]
pub(in crate::gateway) struct Publishes(Option<FuturesOrdered<BoxFuture<'static, Published>>>);

impl Publishes {
    pub(in crate::gateway) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesOrdered::len)
    }

    fn push_back(&mut self, publish: BoxFuture<'static, Published>) {
        self.0
            .get_or_insert_with(FuturesOrdered::new)
            .push_back(publish);
    }

    /// The next acknowledged publish; `None` at once when none waits (as an empty
    /// `FuturesOrdered` answers).
    pub(in crate::gateway) async fn next(&mut self) -> Option<Published> {
        use futures_util::StreamExt as _;
        match &mut self.0 {
            Some(publishes) => publishes.next().await,
            None => None,
        }
    }
}

/// The socket's own view of its user's chats.
pub(in crate::gateway) struct Socket {
    pub(in crate::gateway) state: AppState,
    pub(in crate::gateway) user_id: UserId,
    pub(in crate::gateway) conn: ConnId,
    pub(in crate::gateway) chats: HashSet<ChatId>,
    /// Private chats by the other user.
    pub(in crate::gateway) peers: HashMap<UserId, ChatId>,
    /// Users this socket sent to by `receiver_id` before it knew their private chat: its
    /// further sends to them go the same way (`chat.in.direct.message`), whatever it learns,
    /// so they stay in one partition of `CHAT_IN`, in their order.
    pub(in crate::gateway) direct: HashSet<UserId>,
    /// Sends accepted or in flight whose `message_ack` this socket owes.
    pub(in crate::gateway) awaiting_ack: HashSet<String>,
    /// The `command_id`s of this socket's changes (edits, deletions, reactions, mutes) whose
    /// outcome it awaits: a refusal names it in the `error` frame; with `true` (the client
    /// named the request) an applied one is answered with `command_applied`.
    pub(in crate::gateway) awaiting_outcome: HashMap<String, bool>,
    /// Publishes awaiting JetStream's ack, in the order they were sent.
    pub(in crate::gateway) publishes: Publishes,
    /// Chat and author of the messages pushed lately: repeats are dropped, and the client's
    /// marks of them need no database read.
    pub(in crate::gateway) recent: RecentMessages,
    /// Newest message pushed per chat and not yet reported delivered (`AUTO_DELIVERED`).
    pub(in crate::gateway) delivered: HashMap<ChatId, MessageId>,
    /// When the socket's token (plus `TOKEN_EXPIRY_GRACE`) runs out; `refresh_token` moves it.
    pub(in crate::gateway) expires_at: tokio::time::Instant,
    /// Rate-limit refusals since the last accepted send or mark.
    pub(in crate::gateway) refusals: RefusalStreak,
    /// The chats this socket is typing in, and its typing rate limit.
    pub(in crate::gateway) typing: Typing,
    /// Live frames of changes up to this cursor are dropped: the last catch-up sent them.
    pub(in crate::gateway) sync_floor: u64,
    /// A catch-up to run when the current frame's turn is over.
    pub(in crate::gateway) pending_sync: Option<SyncRequest>,
    pub(in crate::gateway) last_sync: Option<tokio::time::Instant>,
    /// The router asked the socket to close (the user was erased): it does, once what came
    /// before is written.
    pub(in crate::gateway) closing: Option<super::close::Close>,
}

/// When a socket whose token expires at `exp` is closed.
pub(in crate::gateway) fn deadline(state: &AppState, exp: i64) -> tokio::time::Instant {
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
    /// The subject the persister answers this socket's commands on (made when a command needs
    /// it, not kept by every socket).
    pub(in crate::gateway) fn reply_to(&self) -> String {
        self.state
            .bus
            .subjects
            .socket_replies(&self.state.instance, self.conn)
    }

    /// Renders a frame for the client and counts it.
    pub(in crate::gateway) fn frame(&self, frame: ServerFrame<'_>) -> Utf8Bytes {
        let metrics = &self.state.metrics;
        metrics.frame_out(frame.kind());
        if let ServerFrame::Error { code, .. } = &frame {
            metrics.error(*code);
        }
        frame.render()
    }

    /// Renders the `error` frame for `error` and counts it by code, as a frame and as a
    /// refusal the gateway decided (a persister's refusal comes through [`Self::frame`]).
    pub(in crate::gateway) fn refuse(&self, error: &FrameError) -> Utf8Bytes {
        let metrics = &self.state.metrics;
        metrics.frame_out(FrameOut::Error);
        metrics.error(error.code);
        metrics.refusal(RefusalSource::Socket, error.code);
        error.render()
    }

    /// Membership from the socket's own list, or from the database for a chat joined a
    /// moment ago (the router's event may still be on its way).
    pub(in crate::gateway) async fn check_member(
        &mut self,
        chat_id: ChatId,
    ) -> Result<(), FrameError> {
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

    pub(in crate::gateway) fn joined(&mut self, m: queries::Membership) {
        self.chats.insert(m.chat_id);
        if let Some(peer) = m.peer {
            self.peers.insert(peer, m.chat_id);
        }
    }

    /// Publishes a command to `CHAT_IN`; its acknowledgement is awaited alongside other work.
    pub(in crate::gateway) async fn publish(
        &mut self,
        subject: String,
        command: &Command,
        dedupe: Option<String>,
        client_msg_id: Option<String>,
        chat_id: Option<ChatId>,
        trace: Option<async_nats::HeaderMap>,
    ) -> Result<(), FrameError> {
        let payload =
            bytes::Bytes::from(serde_json::to_vec(command).expect("commands always serialise"));
        // Both are reference-counted: keeping them for a resend copies no bytes.
        let subject = Subject::from(subject);
        let resend = dedupe.is_some().then(|| (subject.clone(), payload.clone()));
        self.publish_payload(
            subject,
            payload,
            dedupe,
            client_msg_id,
            chat_id,
            trace,
            resend,
        )
        .await
    }

    /// [`Socket::publish`] of a serialised command.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::gateway) async fn publish_payload(
        &mut self,
        subject: Subject,
        payload: bytes::Bytes,
        dedupe: Option<String>,
        client_msg_id: Option<String>,
        chat_id: Option<ChatId>,
        trace: Option<async_nats::HeaderMap>,
        resend: Option<(Subject, bytes::Bytes)>,
    ) -> Result<(), FrameError> {
        let mut publish = PublishMessage::build().payload(payload);
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
                resend,
            }
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(id: &str) -> Published {
        Published {
            client_msg_id: Some(id.into()),
            chat_id: None,
            result: Err("no ack".into()),
            resend: None,
        }
    }

    #[tokio::test]
    async fn publishes_are_made_on_the_first_and_come_back_in_order() {
        let mut publishes = Publishes::default();
        assert!(publishes.0.is_none());
        assert_eq!(publishes.len(), 0);
        assert!(publishes.next().await.is_none(), "none waits: at once");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        publishes.push_back(Box::pin(async move {
            let _ = rx.await;
            published("a")
        }));
        publishes.push_back(Box::pin(async { published("b") }));
        assert_eq!(publishes.len(), 2);
        tx.send(()).unwrap();
        let ids: Vec<_> = [publishes.next().await, publishes.next().await]
            .into_iter()
            .map(|p| p.and_then(|p| p.client_msg_id))
            .collect();
        assert_eq!(
            ids,
            [Some("a".to_owned()), Some("b".to_owned())],
            "in send order"
        );
        assert_eq!(publishes.len(), 0);
        assert!(publishes.next().await.is_none());
    }

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
