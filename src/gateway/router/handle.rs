//! The handle sockets use to talk to the router task, and the commands it sends.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{ConnId, LiveMessage, Outbox, TooManySockets, keyed_streams::Generation};
use crate::{domain::ChatId, domain::UserId};

/// What sockets (and the router's own catch-ups) ask of the router task.
pub(super) enum RouterCmd {
    Register {
        conn: ConnId,
        user_id: UserId,
        chats: Vec<ChatId>,
        /// The users who block `user_id`: whose presence the socket is not told.
        blockers: Vec<UserId>,
        outbox: Outbox,
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
    /// The messages a chat's subscription of `generation` may have missed when it started.
    CaughtUp {
        chat_id: ChatId,
        generation: Generation,
        messages: Vec<Arc<LiveMessage>>,
    },
}

/// The handle sockets use; cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    pub(super) tx: mpsc::Sender<RouterCmd>,
    /// What the user directory holds, kept current by the router from `user_updated` events.
    pub(super) known_profiles: std::sync::Arc<crate::gateway::directory::KnownProfiles>,
}

impl RouterHandle {
    /// What this instance knows the user directory holds (sockets compare token claims with
    /// it).
    pub fn known_profiles(&self) -> &crate::gateway::directory::KnownProfiles {
        &self.known_profiles
    }

    /// Starts routing for the socket `conn` of `user_id` in `chats` (told nothing of the
    /// presence of `blockers`, the users who block them), unless the user already
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
        blockers: Vec<UserId>,
        outbox: Outbox,
        kick: CancellationToken,
    ) -> Result<(), TooManySockets> {
        let (ready, subscribed) = oneshot::channel();
        let _ = self
            .tx
            .send(RouterCmd::Register {
                conn,
                user_id,
                chats,
                blockers,
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
