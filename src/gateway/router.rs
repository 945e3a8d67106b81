//! Interest-based routing of events to this instance's sockets.
//!
//! One task owns the routing tables. It subscribes to a chat's event subject while at least
//! one local socket belongs to that chat (reference-counted through the chat's socket set),
//! so NATS sends each instance only what it needs and a group message is one publish however
//! many members it has. Each event is decoded and rendered once, then shared by every socket.
//!
//! Membership events (`chat_created`, `member_added`) are watched for every chat, so a socket
//! starts receiving a chat the moment its user joins it. A subscription that starts because of
//! such an event is caught up from the database: events published before NATS had the new
//! subscription would otherwise be missed.
//!
//! Beside its events, each routed chat has an ephemeral subject (`chat.live.<chat_id>.*`,
//! core NATS, in no stream) for typing and presence: same interest, nothing to catch up.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use async_nats::Subscriber;
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamMap;
use tokio_util::sync::CancellationToken;

use super::{change_frames, protocol::ServerFrame};
use crate::{
    auth::UserId,
    bus::{
        Bus,
        live::LiveEvent,
        messages::{Event, Outcome},
    },
    domain::{MessageId, MessageStatus, MessageView},
    media::UrlSigner,
    metrics::{FrameOut, Metrics},
    store::{ChatId, queries},
};

/// A socket's id, unique within this instance.
pub type ConnId = u64;

/// Most messages a catch-up replays into a chat that was just joined.
const CATCH_UP_LIMIT: u64 = 1000;

/// Commands waiting for the router. Senders wait for room (a handshake, a socket that joins a
/// chat, a catch-up); the router itself never waits on a socket, so a full queue slows the
/// senders down and cannot deadlock.
const ROUTER_QUEUE: usize = 4096;

/// Presence changes whose sockets the router remembers (a change comes once per shared chat
/// and is told to a socket once); beyond it the memory starts again, at worst repeating one.
const PRESENCE_TOLD: usize = 10_000;

/// A socket refused because its user already has `MAX_SOCKETS_PER_USER` on this instance.
#[derive(Debug, thiserror::Error)]
#[error(
    "user {user_id} already has {max} sockets open on this server (MAX_SOCKETS_PER_USER); \
     close one before opening another"
)]
pub struct TooManySockets {
    pub user_id: UserId,
    pub max: usize,
}

/// A persisted message, decoded once and rendered once as `new_message`.
pub struct LiveMessage {
    pub view: MessageView,
    pub frame: Utf8Bytes,
    /// Its place in the change journal (none for a message read back from history).
    pub cursor: Option<u64>,
}

impl LiveMessage {
    /// Renders the shared `new_message` frame (an upload's URL signed once for everyone).
    pub fn new(mut view: MessageView, signer: &UrlSigner, cursor: Option<u64>) -> Arc<Self> {
        signer.sign_view(&mut view, chrono::Utc::now());
        let frame = ServerFrame::NewMessage {
            message: &view,
            status: MessageStatus::Sent,
            cursor,
        }
        .render();
        Arc::new(LiveMessage {
            view,
            frame,
            cursor,
        })
    }
}

/// What the router hands a socket.
pub enum Outbound {
    /// A message in one of the socket's chats.
    Message(Arc<LiveMessage>),
    /// A frame rendered once for every socket that gets it (behind an `Arc`: every variant is
    /// about a pointer, which keeps each socket's queue small), with its kind for the metrics
    /// and the change's cursor (0: the frame is no stored change).
    Frame(FrameOut, Arc<Utf8Bytes>, u64),
    /// The socket's user is now a member of this chat.
    Joined(Box<queries::Membership>),
    /// The socket's user is no longer a member of this chat.
    Left(ChatId),
    /// An outcome addressed to this socket (a refused command).
    /// Boxed: rare and large, it would otherwise size every slot of every socket's queue.
    Reply(Box<Outcome>),
}

/// A socket as the router knows it.
struct SocketEntry {
    user_id: UserId,
    outbox: mpsc::Sender<Outbound>,
    kick: CancellationToken,
    chats: HashSet<ChatId>,
}

/// A chat with local sockets.
#[derive(Default)]
struct ChatRoute {
    conns: HashSet<ConnId>,
    /// While a catch-up runs, live messages wait here.
    syncing: Option<Vec<Arc<LiveMessage>>>,
}

enum RouterCmd {
    Register {
        conn: ConnId,
        user_id: UserId,
        chats: Vec<ChatId>,
        outbox: mpsc::Sender<Outbound>,
        kick: CancellationToken,
        ready: oneshot::Sender<Result<(), TooManySockets>>,
    },
    Unregister {
        conn: ConnId,
    },
    Join {
        conn: ConnId,
        chat_id: ChatId,
    },
    CaughtUp {
        chat_id: ChatId,
        messages: Vec<Arc<LiveMessage>>,
    },
}

/// The handle sockets use; cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    tx: mpsc::Sender<RouterCmd>,
}

impl RouterHandle {
    /// Starts routing for the socket `conn` of `user_id` in `chats`, unless the user already
    /// has the most sockets allowed here: counted as the router registers them, one at a time,
    /// so two handshakes at once cannot both take the last place. When the socket's queue is
    /// full the router cancels `kick` and forgets the socket.
    ///
    /// Returns once NATS has every subscription the socket needs, so anything published after
    /// that reaches it.
    pub async fn register(
        &self,
        conn: ConnId,
        user_id: UserId,
        chats: Vec<ChatId>,
        outbox: mpsc::Sender<Outbound>,
        kick: CancellationToken,
    ) -> Result<(), TooManySockets> {
        let (ready, subscribed) = oneshot::channel();
        let _ = self
            .tx
            .send(RouterCmd::Register {
                conn,
                user_id,
                chats,
                outbox,
                kick,
                ready,
            })
            .await;
        // A router that stopped (shutdown) answers nothing: the socket closes with 1001 anyway.
        subscribed.await.unwrap_or(Ok(()))
    }

    /// Stops routing to `conn`. Called from `Drop`, which cannot wait: with the queue full, a
    /// task waits for room instead (the command must not be lost, or the socket would stay
    /// routed and counted).
    pub fn unregister(&self, conn: ConnId) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) =
            self.tx.try_send(RouterCmd::Unregister { conn })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// Adds a chat the socket found out about itself (its user joined it moments ago).
    pub async fn join(&self, conn: ConnId, chat_id: ChatId) {
        let _ = self.tx.send(RouterCmd::Join { conn, chat_id }).await;
    }
}

/// Starts the router task of instance `instance`.
pub async fn spawn(
    bus: Bus,
    db: DatabaseConnection,
    signer: UrlSigner,
    instance: &str,
    max_sockets_per_user: usize,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(RouterHandle, tokio::task::JoinHandle<()>), async_nats::SubscribeError> {
    let mut membership = Vec::new();
    for kind in ["chat_created", "member_added", "member_removed"] {
        membership.push(bus.client.subscribe(bus.subjects.every_chat(kind)).await?);
    }
    let membership = futures_util::stream::select_all(membership);
    let replies = bus
        .client
        .subscribe(bus.subjects.instance_replies(instance))
        .await?;
    let (tx, rx) = mpsc::channel(ROUTER_QUEUE);
    let router = Router {
        max_sockets_per_user,
        bus,
        db,
        signer,
        handle: RouterHandle { tx: tx.clone() },
        sockets: HashMap::new(),
        users: HashMap::new(),
        chats: HashMap::new(),
        subs: StreamMap::new(),
        live: StreamMap::new(),
        presence_told: HashMap::new(),
        metrics,
    };
    let task = tokio::spawn(router.run(rx, membership, replies, shutdown));
    Ok((RouterHandle { tx }, task))
}

struct Router {
    /// 0: no limit.
    max_sockets_per_user: usize,
    bus: Bus,
    db: DatabaseConnection,
    signer: UrlSigner,
    handle: RouterHandle,
    sockets: HashMap<ConnId, SocketEntry>,
    users: HashMap<UserId, Vec<ConnId>>,
    chats: HashMap<ChatId, ChatRoute>,
    subs: StreamMap<ChatId, Subscriber>,
    /// Each routed chat's ephemeral subject (typing, presence).
    live: StreamMap<ChatId, Subscriber>,
    /// The latest presence change per user and the sockets already told it.
    presence_told: HashMap<UserId, (u64, HashSet<ConnId>)>,
    metrics: Arc<Metrics>,
}

impl Router {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<RouterCmd>,
        mut membership: futures_util::stream::SelectAll<Subscriber>,
        mut replies: Subscriber,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(cmd) = rx.recv() => self.command(cmd).await,
                Some((chat_id, msg)) = self.subs.next() => {
                    self.chat_event(chat_id, &msg.payload, msg.headers.as_ref())
                }
                Some((chat_id, msg)) = self.live.next() => self.live_event(chat_id, &msg.payload),
                Some(msg) = membership.next() => self.membership_event(&msg.payload).await,
                Some(msg) = replies.next() => self.reply(&msg.subject, &msg.payload),
                else => return,
            }
        }
    }

    async fn command(&mut self, cmd: RouterCmd) {
        match cmd {
            RouterCmd::Register {
                conn,
                user_id,
                chats,
                outbox,
                kick,
                ready,
            } => {
                let open = self.users.get(&user_id).map_or(0, Vec::len);
                if self.max_sockets_per_user != 0 && open >= self.max_sockets_per_user {
                    let max = self.max_sockets_per_user;
                    let _ = ready.send(Err(TooManySockets { user_id, max }));
                    return;
                }
                self.sockets.insert(
                    conn,
                    SocketEntry {
                        user_id,
                        outbox,
                        kick,
                        chats: HashSet::new(),
                    },
                );
                self.users.entry(user_id).or_default().push(conn);
                let mut started = false;
                for chat_id in chats {
                    started |= self.attach(conn, chat_id).await;
                }
                if started {
                    let client = self.bus.client.clone();
                    tokio::spawn(async move {
                        barrier(&client).await;
                        let _ = ready.send(Ok(()));
                    });
                } else {
                    let _ = ready.send(Ok(()));
                }
            }
            RouterCmd::Unregister { conn } => self.detach(conn),
            RouterCmd::Join { conn, chat_id } => {
                if self.sockets.contains_key(&conn) {
                    self.attach(conn, chat_id).await;
                }
            }
            RouterCmd::CaughtUp {
                chat_id,
                mut messages,
            } => {
                let Some(route) = self.chats.get_mut(&chat_id) else {
                    return;
                };
                let buffered = route.syncing.take().unwrap_or_default();
                let newest = messages.last().map_or(0, |m| m.view.message_id);
                messages.extend(buffered.into_iter().filter(|m| m.view.message_id > newest));
                for message in messages {
                    self.deliver(chat_id, |_| true, || Outbound::Message(message.clone()));
                }
            }
        }
    }

    /// Adds `conn` to a chat's route; `true` when this started the chat's subscription.
    async fn attach(&mut self, conn: ConnId, chat_id: ChatId) -> bool {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return false;
        };
        if !socket.chats.insert(chat_id) {
            return false;
        }
        let route = self.chats.entry(chat_id).or_default();
        route.conns.insert(conn);
        if route.conns.len() > 1 || self.subs.contains_key(&chat_id) {
            return false;
        }
        match self
            .bus
            .client
            .subscribe(self.bus.subjects.chat_events(chat_id))
            .await
        {
            Ok(sub) => {
                self.subs.insert(chat_id, sub);
                match self
                    .bus
                    .client
                    .subscribe(self.bus.subjects.chat_live_all(chat_id))
                    .await
                {
                    Ok(live) => {
                        self.live.insert(chat_id, live);
                    }
                    Err(error) => tracing::warn!(%error, chat_id, "no typing or presence"),
                }
                self.count_subscriptions();
                true
            }
            Err(error) => {
                tracing::error!(%error, chat_id, "cannot subscribe to chat events");
                false
            }
        }
    }

    fn detach(&mut self, conn: ConnId) {
        let Some(socket) = self.sockets.remove(&conn) else {
            return;
        };
        if let Some(conns) = self.users.get_mut(&socket.user_id) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                self.users.remove(&socket.user_id);
            }
        }
        for chat_id in socket.chats {
            if let Some(route) = self.chats.get_mut(&chat_id) {
                route.conns.remove(&conn);
                if route.conns.is_empty() {
                    self.chats.remove(&chat_id);
                    self.subs.remove(&chat_id); // dropping the subscriber unsubscribes
                    self.live.remove(&chat_id);
                    self.count_subscriptions();
                }
            }
        }
    }

    /// Hands an item to each socket of the chat that `wanted` selects; a full queue kicks the
    /// socket (it reconnects and reads history) instead of slowing everyone down.
    fn deliver(
        &mut self,
        chat_id: ChatId,
        wanted: impl Fn(UserId) -> bool,
        mut item: impl FnMut() -> Outbound,
    ) {
        let Some(route) = self.chats.get(&chat_id) else {
            return;
        };
        let mut kicked = Vec::new();
        for conn in &route.conns {
            let Some(socket) = self.sockets.get(conn) else {
                continue;
            };
            if !wanted(socket.user_id) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = socket.outbox.try_send(item()) {
                tracing::warn!(
                    conn,
                    user_id = socket.user_id,
                    "socket queue full; closing it"
                );
                socket.kick.cancel();
                kicked.push(*conn);
            }
        }
        for conn in kicked {
            self.detach(conn);
        }
    }

    /// Hands a stored change's frame to the sockets of its audience in the chat, rendered
    /// once (and not at all when the chat has no socket here).
    fn deliver_change(&mut self, chat_id: ChatId, event: &Event) {
        if !self.chats.contains_key(&chat_id) {
            return;
        }
        let Some((kind, frame, audience)) = change_frames::frame(event) else {
            return;
        };
        let frame = Arc::new(frame);
        let cursor = event.cursor().unwrap_or(0);
        self.deliver(
            chat_id,
            |user| audience.includes(user),
            || Outbound::Frame(kind, Arc::clone(&frame), cursor),
        );
    }

    fn count_subscriptions(&self) {
        let subscriptions = i64::try_from(self.subs.len()).unwrap_or(i64::MAX);
        self.metrics.router_subscriptions.set(subscriptions);
    }

    fn chat_event(
        &mut self,
        chat_id: ChatId,
        payload: &[u8],
        headers: Option<&async_nats::HeaderMap>,
    ) {
        let event = match serde_json::from_slice::<Event>(payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, chat_id, "undecodable event ignored");
                return;
            }
        };
        // The end of the command's trace on this instance: only for an event that carries
        // trace context (every event has headers: its `Nats-Msg-Id`).
        let _deliver = headers
            .filter(|h| crate::telemetry::enabled() && crate::telemetry::has_context(Some(h)))
            .map(|headers| {
                let sockets = self.chats.get(&chat_id).map_or(0, |r| r.conns.len());
                let span = tracing::info_span!(
                    parent: None,
                    "deliver",
                    chat_id,
                    kind = event.kind(),
                    sockets
                );
                crate::telemetry::set_parent(&span, Some(headers));
                span.entered()
            });
        match event {
            Event::MessageCreated(created) => {
                let message = LiveMessage::new(created.message, &self.signer, created.cursor);
                if let Some(buffer) = self
                    .chats
                    .get_mut(&chat_id)
                    .and_then(|r| r.syncing.as_mut())
                {
                    buffer.push(message);
                    return;
                }
                self.deliver(chat_id, |_| true, || Outbound::Message(message.clone()));
            }
            Event::Receipt(_)
            | Event::ChatRenamed(_)
            | Event::MessageDeleted(_)
            | Event::MessageEdited(_)
            | Event::ReactionAdded(_)
            | Event::ReactionRemoved(_)
            | Event::ChatMuted(_) => {
                self.deliver_change(chat_id, &event);
            }
            // Membership events come through the membership subscription (every chat's).
            Event::ChatCreated(_)
            | Event::MemberAdded(_)
            | Event::MemberRemoved(_)
            | Event::CommandRejected(_)
            | Event::UploadRegistered(_)
            | Event::PushNeeded(_) => {}
        }
    }

    /// Typing and presence: to the chat's sockets, never the user's own; a presence change
    /// (published once per chat of the user) once per socket. Both are hints: a socket whose
    /// queue is full misses one instead of being closed as a slow consumer.
    fn live_event(&mut self, chat_id: ChatId, payload: &[u8]) {
        let event = match serde_json::from_slice::<LiveEvent>(payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, chat_id, "undecodable live event ignored");
                return;
            }
        };
        match event {
            LiveEvent::Typing {
                user_id,
                state,
                expires_in_ms,
                ..
            } => {
                let frame = ServerFrame::Typing {
                    chat_id,
                    user_id,
                    state,
                    expires_in_ms,
                };
                if let Some(route) = self.chats.get(&chat_id) {
                    self.hint(route.conns.iter().copied(), user_id, &frame);
                }
            }
            LiveEvent::Presence(change) => {
                let Some(route) = self.chats.get(&chat_id) else {
                    return;
                };
                if self.presence_told.len() >= PRESENCE_TOLD {
                    self.presence_told.clear();
                }
                let told = self.presence_told.entry(change.user_id).or_default();
                if told.0 != change.change_id {
                    *told = (change.change_id, HashSet::new());
                }
                let fresh: Vec<ConnId> = route
                    .conns
                    .iter()
                    .copied()
                    .filter(|conn| told.1.insert(*conn))
                    .collect();
                let frame = ServerFrame::Presence {
                    user_id: change.user_id,
                    status: change.status,
                    last_seen: change.last_seen,
                };
                self.hint(fresh, change.user_id, &frame);
            }
        }
    }

    /// Hands `frame`, rendered once, to `conns` except those of `except`. A hint: a full queue
    /// loses the frame, not the socket.
    fn hint(
        &self,
        conns: impl IntoIterator<Item = ConnId>,
        except: UserId,
        frame: &ServerFrame<'_>,
    ) {
        let mut rendered: Option<Arc<Utf8Bytes>> = None;
        for conn in conns {
            if let Some(socket) = self.sockets.get(&conn)
                && socket.user_id != except
            {
                let rendered = rendered.get_or_insert_with(|| Arc::new(frame.render()));
                let item = Outbound::Frame(frame.kind(), Arc::clone(rendered), 0);
                let _ = socket.outbox.try_send(item);
            }
        }
    }

    /// Takes `conn` out of one chat's route, unsubscribing when it was the last local socket.
    fn leave(&mut self, conn: ConnId, chat_id: ChatId) {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return;
        };
        if !socket.chats.remove(&chat_id) {
            return;
        }
        let _ = socket.outbox.try_send(Outbound::Left(chat_id));
        if let Some(route) = self.chats.get_mut(&chat_id) {
            route.conns.remove(&conn);
            if route.conns.is_empty() {
                self.chats.remove(&chat_id);
                self.subs.remove(&chat_id);
                self.live.remove(&chat_id);
                self.count_subscriptions();
            }
        }
    }

    async fn membership_event(&mut self, payload: &[u8]) {
        match serde_json::from_slice::<Event>(payload) {
            Ok(Event::ChatCreated(e)) => {
                let private_key = match (e.chat.is_group, e.chat.member_ids.as_slice()) {
                    (false, [a, b]) => Some(crate::store::chat::private_key(*a, *b)),
                    _ => None,
                };
                self.join(e.chat.chat_id, &e.chat.member_ids, 0, private_key)
                    .await;
                self.deliver_change(e.chat.chat_id, &Event::ChatCreated(e));
            }
            Ok(Event::MemberAdded(e)) => {
                // Only groups take new members: no private key. Joined first, so the new
                // member's sockets get the frame with everyone else's.
                self.join(e.chat_id, &[e.user_id], e.after_message_id, None)
                    .await;
                self.deliver_change(e.chat_id, &Event::MemberAdded(e));
            }
            Ok(Event::MemberRemoved(e)) => {
                // Told while still routed, then taken out.
                let (chat_id, user_id) = (e.chat_id, e.user_id);
                self.deliver_change(chat_id, &Event::MemberRemoved(e));
                for conn in self.users.get(&user_id).cloned().unwrap_or_default() {
                    self.leave(conn, chat_id);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "undecodable membership event ignored"),
        }
    }

    /// Routes `chat_id` to the local sockets of `users`, who just joined it after message
    /// `after`; a subscription started by this is caught up from the database.
    async fn join(
        &mut self,
        chat_id: ChatId,
        users: &[UserId],
        after: MessageId,
        private_key: Option<String>,
    ) {
        // Every instance sees every membership event; most concern no local socket.
        if !users.iter().any(|user| self.users.contains_key(user)) {
            return;
        }
        let mut started = false;
        for user_id in users {
            let conns = self.users.get(user_id).cloned().unwrap_or_default();
            let peer = queries::peer_of(private_key.as_deref(), *user_id);
            for conn in conns {
                started |= self.attach(conn, chat_id).await;
                if let Some(socket) = self.sockets.get(&conn) {
                    let _ =
                        socket
                            .outbox
                            .try_send(Outbound::Joined(Box::new(queries::Membership {
                                chat_id,
                                peer,
                            })));
                }
            }
        }
        if started {
            if let Some(route) = self.chats.get_mut(&chat_id) {
                route.syncing = Some(Vec::new());
            }
            tokio::spawn(catch_up(
                self.bus.clone(),
                self.db.clone(),
                self.signer.clone(),
                self.handle.clone(),
                chat_id,
                after,
                private_key,
            ));
        }
    }

    fn reply(&mut self, subject: &str, payload: &[u8]) {
        let Some(conn) = subject
            .rsplit('.')
            .next()
            .and_then(|c| c.parse::<ConnId>().ok())
        else {
            return;
        };
        let Ok(outcome) = serde_json::from_slice::<Outcome>(payload) else {
            return;
        };
        if let Some(socket) = self.sockets.get(&conn) {
            let _ = socket.outbox.try_send(Outbound::Reply(Box::new(outcome)));
        }
    }
}

/// Returns once the NATS server has processed everything this client sent before (its
/// subscriptions included): nobody answers the subject, and the server's "no responders"
/// reply is the round trip.
async fn barrier(client: &async_nats::Client) {
    let subject = format!("_JETCHAT.barrier.{}", uuid::Uuid::new_v4().simple());
    let _ = client.request(subject, bytes::Bytes::new()).await;
}

/// Replays what a just-started subscription may have missed: a round trip to the server
/// proves it has the subscription, after which every earlier event's message is committed.
async fn catch_up(
    bus: Bus,
    db: DatabaseConnection,
    signer: UrlSigner,
    router: RouterHandle,
    chat_id: ChatId,
    after: MessageId,
    private_key: Option<String>,
) {
    barrier(&bus.client).await;
    let messages = match queries::history(&db, chat_id, None, Some(after), CATCH_UP_LIMIT).await {
        Ok(mut rows) => {
            rows.reverse();
            rows.iter()
                .map(|m| LiveMessage::new(m.view(private_key.as_deref()), &signer, None))
                .collect()
        }
        Err(error) => {
            tracing::warn!(%error, chat_id, "catch-up query failed");
            Vec::new()
        }
    };
    let _ = router
        .tx
        .send(RouterCmd::CaughtUp { chat_id, messages })
        .await;
}

#[cfg(test)]
mod size_tests {
    use super::Outbound;

    /// Every socket's queue allocates slots of this size in blocks: keep it a few words.
    #[test]
    fn outbound_items_stay_small() {
        assert!(
            std::mem::size_of::<Outbound>() <= 40,
            "{} bytes",
            std::mem::size_of::<Outbound>()
        );
    }
}
