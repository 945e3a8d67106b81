//! The router task: feeds the routing table from the sockets' commands, holds the NATS
//! subscriptions its answers call for (a chat's events and live subject while a local socket
//! has the chat), hands each event to the sockets the table names, and catches up a chat
//! whose subscription started because its user just joined it.

use std::{collections::HashMap, sync::Arc};

use async_nats::Subscriber;
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    ConnId, LiveMessage, Outbound, Outbox, RouterHandle,
    handle::RouterCmd,
    keyed_streams::{Generation, KeyedStreams},
    table::{Leaving, RoutingTable},
};
use crate::{
    bus::{
        Bus,
        live::LiveEvent,
        messages::{Event, Outcome},
    },
    domain::ChatId,
    domain::MessageId,
    domain::UserId,
    gateway::close::Close,
    gateway::{
        change_frames::{self, Audience},
        directory::KnownProfiles,
        protocol::ServerFrame,
    },
    media::UrlSigner,
    metrics::Metrics,
    store::queries,
};

/// Most messages a catch-up replays into a chat that was just joined.
const CATCH_UP_LIMIT: u64 = 1000;

/// Commands waiting for the router. Senders wait for room (a handshake, a socket that joins a
/// chat, a catch-up); the router itself never waits on a socket, so a full queue slows the
/// senders down and cannot deadlock.
const ROUTER_QUEUE: usize = 4096;

/// How the router reaches a socket.
struct SocketSink {
    outbox: Outbox,
    kick: CancellationToken,
}

impl SocketSink {
    /// Queues `item`; a full queue kicks the socket instead (it reconnects and reads
    /// history rather than slow everyone down): false then, and the caller detaches it.
    fn offer(&self, conn: ConnId, user_id: UserId, item: Outbound) -> bool {
        if let Err(flume::TrySendError::Full(_)) = self.outbox.try_send(item) {
            tracing::warn!(conn, user_id, "socket queue full; closing it");
            self.kick.cancel();
            return false;
        }
        true
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
    for kind in [
        "chat_created",
        "member_added",
        "member_removed",
        "member_role_changed",
        "chat_deleted",
    ] {
        membership.push(bus.client.subscribe(bus.subjects.every_chat(kind)).await?);
    }
    // Directory changes, blocks and erasures have no chat: one subject for each kind.
    for kind in ["user_updated", "block_changed", "user_erased"] {
        membership.push(
            bus.client
                .subscribe(bus.subjects.chat_event(None, kind))
                .await?,
        );
    }
    let membership = futures_util::stream::select_all(membership);
    let replies = bus
        .client
        .subscribe(bus.subjects.instance_replies(instance))
        .await?;
    let (tx, rx) = mpsc::channel(ROUTER_QUEUE);
    let known_profiles = Arc::new(KnownProfiles::default());
    let handle = RouterHandle {
        tx,
        known_profiles: known_profiles.clone(),
    };
    let router = Router {
        bus,
        db,
        signer,
        handle: handle.clone(),
        table: RoutingTable::new(max_sockets_per_user),
        events: KeyedStreams::default(),
        live: KeyedStreams::default(),
        syncing: HashMap::new(),
        metrics,
        known_profiles,
        hidden_presence: HashMap::new(),
    };
    let task = tokio::spawn(router.run(rx, membership, replies, shutdown));
    Ok((handle, task))
}

struct Router {
    bus: Bus,
    db: DatabaseConnection,
    signer: UrlSigner,
    handle: RouterHandle,
    table: RoutingTable<SocketSink>,
    /// Each routed chat's events.
    events: KeyedStreams<ChatId, Subscriber>,
    /// Each routed chat's ephemeral subject (typing, presence).
    live: KeyedStreams<ChatId, Subscriber>,
    /// Chats whose catch-up runs: their live messages wait here.
    syncing: HashMap<ChatId, Vec<Arc<LiveMessage>>>,
    metrics: Arc<Metrics>,
    /// Kept current with `user_updated` events, so sockets compare token claims with it.
    known_profiles: Arc<KnownProfiles>,
    /// Per user with a socket here, the users who block them: whose presence they are not
    /// told. Read at the handshake, kept current by `block_changed` events.
    hidden_presence: HashMap<UserId, std::collections::HashSet<UserId>>,
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
                Some((chat_id, msg)) = self.events.next() => {
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
                blockers,
                outbox,
                kick,
                ready,
            } => {
                if let Err(refused) =
                    self.table
                        .register(conn, user_id, SocketSink { outbox, kick })
                {
                    let _ = ready.send(Err(refused));
                    return;
                }
                if !blockers.is_empty() {
                    self.hidden_presence
                        .entry(user_id)
                        .or_default()
                        .extend(blockers);
                }
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
                self.attach(conn, chat_id).await;
            }
            RouterCmd::CaughtUp {
                chat_id,
                generation,
                mut messages,
            } => {
                // A catch-up for a subscription that has since ended (and perhaps started
                // again, with sockets that read their own history) is stale.
                if self.events.generation(&chat_id) != Some(generation) {
                    return;
                }
                let buffered = self.syncing.remove(&chat_id).unwrap_or_default();
                let newest = messages.last().map_or(0, |m| m.view.message_id);
                messages.extend(buffered.into_iter().filter(|m| m.view.message_id > newest));
                for message in messages {
                    self.deliver(chat_id, Audience::Members, || {
                        Outbound::Message(message.clone())
                    });
                }
            }
        }
    }

    /// Routes `chat_id` to `conn`; `true` when this started the chat's subscription.
    async fn attach(&mut self, conn: ConnId, chat_id: ChatId) -> bool {
        if !self.table.attach(conn, chat_id) || self.events.contains_key(&chat_id) {
            return false;
        }
        match self
            .bus
            .client
            .subscribe(self.bus.subjects.chat_events(chat_id))
            .await
        {
            Ok(sub) => {
                self.events.insert(chat_id, sub);
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
        let user_id = self.table.socket(conn).map(|socket| socket.user_id);
        for chat_id in self.table.detach(conn) {
            self.unsubscribe(chat_id);
        }
        if let Some(user_id) = user_id
            && self.table.user_sockets(user_id).is_empty()
        {
            self.hidden_presence.remove(&user_id);
        }
    }

    /// Ends a chat's subscriptions (no local socket has it any more).
    fn unsubscribe(&mut self, chat_id: ChatId) {
        self.events.remove(&chat_id);
        self.live.remove(&chat_id);
        self.syncing.remove(&chat_id);
        self.count_subscriptions();
    }

    /// Hands an item to each socket of the chat's `audience`; a full queue kicks the socket (it
    /// reconnects and reads history) instead of slowing everyone down.
    fn deliver(&mut self, chat_id: ChatId, audience: Audience, mut item: impl FnMut() -> Outbound) {
        let mut kicked = Vec::new();
        for (conn, socket) in self.table.recipients(chat_id, audience) {
            if !socket.sink.offer(conn, socket.user_id, item()) {
                kicked.push(conn);
            }
        }
        for conn in kicked {
            self.detach(conn);
        }
    }

    /// Hands a stored change's frame to the sockets of its audience in the chat, rendered
    /// once (and not at all when the chat has no socket here).
    fn deliver_change(&mut self, chat_id: ChatId, event: &Event) {
        if !self.table.is_routed(chat_id) {
            return;
        }
        let Some((kind, frame, audience)) = change_frames::frame(event) else {
            return;
        };
        let frame = Arc::new(frame);
        let cursor = event.cursor().unwrap_or(0);
        self.deliver(chat_id, audience, || {
            Outbound::Frame(kind, Arc::clone(&frame), cursor)
        });
    }

    fn count_subscriptions(&self) {
        let subscriptions = i64::try_from(self.events.len()).unwrap_or(i64::MAX);
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
                let span = tracing::info_span!(
                    parent: None,
                    "deliver",
                    chat_id,
                    kind = event.kind(),
                    sockets = self.table.sockets_in(chat_id)
                );
                crate::telemetry::set_parent(&span, Some(headers));
                span.entered()
            });
        match event {
            Event::MessageCreated(created) => {
                let message = LiveMessage::new(created.message, &self.signer, created.cursor);
                if let Some(buffer) = self.syncing.get_mut(&chat_id) {
                    buffer.push(message);
                    return;
                }
                self.deliver(chat_id, Audience::Members, || {
                    Outbound::Message(message.clone())
                });
            }
            Event::Receipt(_)
            | Event::ChatRenamed(_)
            | Event::ChatUpdated(_)
            | Event::MessageDeleted(_)
            | Event::MessageEdited(_)
            | Event::ReactionAdded(_)
            | Event::ReactionRemoved(_)
            | Event::ChatMuted(_)
            | Event::MessagePinned(_)
            | Event::MessageUnpinned(_) => {
                self.deliver_change(chat_id, &event);
            }
            // Membership events come through the membership subscription (every chat's).
            Event::ChatCreated(_)
            | Event::MemberAdded(_)
            | Event::MemberRemoved(_)
            | Event::MemberRoleChanged(_)
            | Event::ChatDeleted(_)
            | Event::CommandRejected(_)
            | Event::UploadRegistered(_)
            | Event::PushNeeded(_)
            | Event::UserUpdated(_)
            | Event::BlockChanged(_)
            | Event::UserErased(_) => {}
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
                let others = self
                    .table
                    .recipients(chat_id, Audience::Members)
                    .filter(|(_, socket)| socket.user_id != user_id)
                    .map(|(_, socket)| &socket.sink);
                hint(others, &frame);
            }
            LiveEvent::Presence(change) => {
                let untold =
                    self.table
                        .untold_of_presence(chat_id, change.user_id, change.change_id);
                let frame = ServerFrame::Presence {
                    user_id: change.user_id,
                    status: change.status,
                    last_seen: change.last_seen,
                };
                let (table, hidden) = (&self.table, &self.hidden_presence);
                let untold = untold
                    .into_iter()
                    .filter_map(|conn| table.socket(conn))
                    .filter(|socket| {
                        !hidden
                            .get(&socket.user_id)
                            .is_some_and(|blockers| blockers.contains(&change.user_id))
                    })
                    .map(|socket| &socket.sink);
                hint(untold, &frame);
            }
        }
    }

    /// Takes `conn` out of one chat's route, unsubscribing when it was the last local socket.
    fn leave(&mut self, conn: ConnId, chat_id: ChatId) {
        let leaving = self.table.leave(conn, chat_id);
        if leaving == Leaving::NotThere {
            return;
        }
        if let Some(socket) = self.table.socket(conn) {
            let _ = socket.sink.outbox.try_send(Outbound::Left(chat_id));
        }
        if leaving == Leaving::LeftLast {
            self.unsubscribe(chat_id);
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
                for conn in self.table.user_sockets(user_id).to_vec() {
                    self.leave(conn, chat_id);
                }
            }
            // In order with the joins and removals it follows (an owner's leaving, its heir).
            Ok(event @ Event::MemberRoleChanged(_)) => {
                if let Some(chat_id) = event.chat_id() {
                    self.deliver_change(chat_id, &event);
                }
            }
            Ok(Event::ChatDeleted(e)) => {
                // Told while still routed, then every local socket of the group taken out.
                let chat_id = e.chat_id;
                self.deliver_change(chat_id, &Event::ChatDeleted(e));
                let conns: Vec<ConnId> = self
                    .table
                    .recipients(chat_id, Audience::Members)
                    .map(|(conn, _)| conn)
                    .collect();
                for conn in conns {
                    self.leave(conn, chat_id);
                }
            }
            Ok(Event::UserUpdated(e)) => self.user_updated(&e),
            Ok(Event::BlockChanged(e)) => self.block_changed(e),
            Ok(Event::UserErased(e)) => self.user_erased(e.user_id),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "undecodable membership event ignored"),
        }
    }

    /// Tells a directory change to each local socket that shares a chat with the user (and to
    /// the user's own), once per socket however many chats they share. A hint, like presence:
    /// a full queue loses the frame, not the socket; `GET /chats/` and `GET /users` have it.
    fn user_updated(&mut self, event: &crate::bus::messages::UserUpdated) {
        self.known_profiles.learn(&event.user, false);
        let mut conns: std::collections::BTreeSet<ConnId> = self
            .table
            .user_sockets(event.user.user_id)
            .iter()
            .copied()
            .collect();
        for chat_id in &event.chat_ids {
            conns.extend(
                self.table
                    .recipients(*chat_id, Audience::Members)
                    .map(|(conn, _)| conn),
            );
        }
        let frame = ServerFrame::UserUpdated { user: &event.user };
        let table = &self.table;
        hint(
            conns
                .into_iter()
                .filter_map(|conn| table.socket(conn).map(|socket| &socket.sink)),
            &frame,
        );
    }

    /// Tells a block (or its lifting) to the blocker's sockets here, and hides the blocker's
    /// presence from the blocked user's sockets here (they see the blocker offline, never
    /// seen, as if the blocker had gone offline; they are told nothing else).
    fn block_changed(&mut self, event: crate::bus::messages::BlockChanged) {
        let (blocker, blocked) = (event.user_id, event.blocked_id);
        if !self.table.user_sockets(blocked).is_empty() {
            if event.blocked {
                self.hidden_presence
                    .entry(blocked)
                    .or_default()
                    .insert(blocker);
                let frame = ServerFrame::Presence {
                    user_id: blocker,
                    status: crate::bus::live::PresenceStatus::Offline,
                    last_seen: None,
                };
                let table = &self.table;
                hint(
                    table
                        .user_sockets(blocked)
                        .iter()
                        .filter_map(|conn| table.socket(*conn).map(|socket| &socket.sink)),
                    &frame,
                );
            } else if let Some(blockers) = self.hidden_presence.get_mut(&blocked) {
                blockers.remove(&blocker);
            }
        }
        let event = Event::BlockChanged(event);
        let Some((kind, frame, _)) = change_frames::frame(&event) else {
            return;
        };
        let frame = Arc::new(frame);
        let cursor = event.cursor().unwrap_or(0);
        let mut kicked = Vec::new();
        for &conn in self.table.user_sockets(blocker) {
            let item = Outbound::Frame(kind, Arc::clone(&frame), cursor);
            if let Some(socket) = self.table.socket(conn)
                && !socket.sink.offer(conn, blocker, item)
            {
                kicked.push(conn);
            }
        }
        for conn in kicked {
            self.detach(conn);
        }
    }

    /// Closes the erased user's sockets here (4010): their memberships went with the erasure,
    /// so they would see nothing, and a client told to go away does not retry.
    fn user_erased(&mut self, user_id: UserId) {
        for conn in self.table.user_sockets(user_id).to_vec() {
            if let Some(socket) = self.table.socket(conn) {
                // A full queue closes it as too slow instead.
                socket
                    .sink
                    .offer(conn, user_id, Outbound::Close(Close::Erased));
            }
            self.detach(conn);
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
        if users
            .iter()
            .all(|user| self.table.user_sockets(*user).is_empty())
        {
            return;
        }
        let mut started = false;
        for user_id in users {
            let peer = queries::peer_of(private_key.as_deref(), *user_id);
            for conn in self.table.user_sockets(*user_id).to_vec() {
                started |= self.attach(conn, chat_id).await;
                if let Some(socket) = self.table.socket(conn) {
                    let joined = Outbound::Joined(Box::new(queries::Membership { chat_id, peer }));
                    let _ = socket.sink.outbox.try_send(joined);
                }
            }
        }
        if let (true, Some(generation)) = (started, self.events.generation(&chat_id)) {
            self.syncing.insert(chat_id, Vec::new());
            let catch_up = CatchUp {
                chat_id,
                generation,
                after,
                private_key,
            };
            tokio::spawn(catch_up.run(
                self.bus.clone(),
                self.db.clone(),
                self.signer.clone(),
                self.handle.clone(),
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
        if let Some(socket) = self.table.socket(conn) {
            let _ = socket
                .sink
                .outbox
                .try_send(Outbound::Reply(Box::new(outcome)));
        }
    }
}

/// Hands `frame`, rendered once (not at all for nobody), to `sockets`. A hint: a full queue
/// loses the frame, not the socket.
fn hint<'a>(sockets: impl IntoIterator<Item = &'a SocketSink>, frame: &ServerFrame<'_>) {
    let mut rendered: Option<Arc<Utf8Bytes>> = None;
    for socket in sockets {
        let rendered = rendered.get_or_insert_with(|| Arc::new(frame.render()));
        let item = Outbound::Frame(frame.kind(), Arc::clone(rendered), 0);
        let _ = socket.outbox.try_send(item);
    }
}

/// Returns once the NATS server has processed everything this client sent before (its
/// subscriptions included): nobody answers the subject, and the server's "no responders"
/// reply is the round trip.
async fn barrier(client: &async_nats::Client) {
    let subject = format!("_JETCHAT.barrier.{}", uuid::Uuid::new_v4().simple());
    let _ = client.request(subject, bytes::Bytes::new()).await;
}

/// What a just-started subscription (of `generation`) may have missed: the chat's messages
/// after `after`.
struct CatchUp {
    chat_id: ChatId,
    generation: Generation,
    after: MessageId,
    private_key: Option<String>,
}

impl CatchUp {
    /// Replays the messages: a round trip to the server proves it has the subscription, after
    /// which every earlier event's message is committed.
    async fn run(self, bus: Bus, db: DatabaseConnection, signer: UrlSigner, router: RouterHandle) {
        let CatchUp {
            chat_id,
            generation,
            after,
            private_key,
        } = self;
        barrier(&bus.client).await;
        let messages = match queries::history(&db, chat_id, None, Some(after), CATCH_UP_LIMIT).await
        {
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
            .send(RouterCmd::CaughtUp {
                chat_id,
                generation,
                messages,
            })
            .await;
    }
}
