//! The leader's telling of presence changes, one at a time and in order: on
//! `chat.presence.<user_id>` (Django), on `chat.live.<chat_id>.presence` of each of the user's
//! chats of at most `PRESENCE_MAX_MEMBERS` members (the routers), and `last_seen` for a user
//! gone offline.

use async_nats::jetstream::kv;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::directory::Change;
use crate::{
    bus::{
        Bus, Subjects,
        live::{LiveEvent, PresenceChange, PresenceStatus},
        messages::VERSION,
    },
    store::queries,
};

/// Batches of changes waiting to be told. Beyond it a batch is dropped with a warning:
/// presence is a hint, and a teller that far behind (the database away) would tell stale news.
const QUEUE: usize = 1024;

/// Hands changes to the telling task.
pub(super) struct Teller {
    tx: mpsc::Sender<Vec<Change>>,
}

impl Teller {
    /// Queues `changes`; never waits.
    pub(super) fn tell(&self, changes: Vec<Change>) {
        if self.tx.try_send(changes).is_err() {
            tracing::warn!("presence changes dropped: the teller is behind");
        }
    }
}

/// Starts the telling task.
pub(super) fn spawn(
    bus: Bus,
    db: DatabaseConnection,
    last_seen: kv::Store,
    max_members: u64,
    shutdown: CancellationToken,
) -> Teller {
    let (tx, mut rx) = mpsc::channel::<Vec<Change>>(QUEUE);
    tokio::spawn(async move {
        loop {
            let changes = tokio::select! {
                _ = shutdown.cancelled() => return,
                changes = rx.recv() => match changes {
                    Some(changes) => changes,
                    None => return,
                },
            };
            for change in changes {
                tell(&bus, &db, &last_seen, max_members, change).await;
            }
        }
    });
    Teller { tx }
}

#[tracing::instrument(skip_all, fields(user_id = change.user_id, status = ?change.status))]
async fn tell(
    bus: &Bus,
    db: &DatabaseConnection,
    last_seen: &kv::Store,
    max_members: u64,
    change: Change,
) {
    let subjects = &bus.subjects;
    let user_id = change.user_id;
    if let (PresenceStatus::Offline, Some(at)) = (change.status, change.last_seen) {
        let key = Subjects::last_seen_key(user_id);
        if let Err(error) = last_seen.put(key, at.to_rfc3339().into()).await {
            tracing::warn!(%error, "last_seen not written");
        }
    }
    let change = PresenceChange {
        v: VERSION,
        user_id,
        status: change.status,
        last_seen: change.last_seen,
        change_id: uuid::Uuid::new_v4().as_u64_pair().0,
    };
    let payload = serde_json::to_vec(&change).expect("presence changes serialise");
    if let Err(error) = bus
        .client
        .publish(subjects.user_presence(user_id), payload.into())
        .await
    {
        tracing::warn!(%error, "presence change not published");
    }
    let chats = match queries::chats_up_to(db, user_id, max_members).await {
        Ok(chats) => chats,
        Err(error) => {
            tracing::warn!(%error, "presence change told to nobody: cannot read the chats");
            return;
        }
    };
    let live: bytes::Bytes = serde_json::to_vec(&LiveEvent::Presence(change))
        .expect("live events serialise")
        .into();
    for chat_id in chats {
        let subject = subjects.chat_live(chat_id, "presence");
        if let Err(error) = bus.client.publish(subject, live.clone()).await {
            tracing::warn!(%error, "presence change not published");
        }
    }
}
