//! The leader's telling of presence changes, a batch at a time and in order: on
//! `chat.presence.<user_id>` (Django), on `chat.live.<chat_id>.presence` of each of the user's
//! chats of at most `PRESENCE_MAX_MEMBERS` members (the routers), and `last_seen` for a user
//! gone offline.

use async_nats::jetstream::kv;
use futures_util::StreamExt;
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
    domain::UserId,
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

/// `last_seen` writes in flight at once: sent in order, their acks awaited together.
const LAST_SEEN_WRITES: usize = 64;

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
            tell(&bus, &db, &last_seen, max_members, changes).await;
        }
    });
    Teller { tx }
}

/// Tells a batch of changes, in order: first the `last_seen` of the users gone offline (so a
/// reader told of an `offline` finds it), then each change on `chat.presence.<user_id>` and in
/// the user's small chats. The chats of all the batch's users are read at once: a batch is
/// every change of one moment (a thousand users whose instance stopped go offline together),
/// and one query and one write each made ~10 s of work of 19,000 users going offline.
#[tracing::instrument(skip_all, fields(changes = changes.len()))]
async fn tell(
    bus: &Bus,
    db: &DatabaseConnection,
    last_seen: &kv::Store,
    max_members: u64,
    changes: Vec<Change>,
) {
    let writes: Vec<_> = changes
        .iter()
        .filter_map(|change| match change {
            Change {
                status: PresenceStatus::Offline,
                last_seen: Some(at),
                user_id,
            } => {
                let (store, key) = (last_seen.clone(), Subjects::last_seen_key(*user_id));
                let value = at.to_rfc3339();
                Some(async move { store.put(key, value.into()).await })
            }
            _ => None,
        })
        .collect();
    let mut written = futures_util::stream::iter(writes).buffered(LAST_SEEN_WRITES);
    while let Some(result) = written.next().await {
        if let Err(error) = result {
            tracing::warn!(%error, "last_seen not written");
        }
    }
    let mut users: Vec<UserId> = changes.iter().map(|c| c.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let chats = match queries::chats_of_each_up_to(db, &users, max_members).await {
        Ok(chats) => Some(chats),
        Err(error) => {
            tracing::warn!(%error, "presence changes told to nobody's chats: cannot read them");
            None
        }
    };
    let subjects = &bus.subjects;
    for change in changes {
        let user_id = change.user_id;
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
            tracing::warn!(%error, user_id, "presence change not published");
        }
        let Some(theirs) = chats.as_ref().and_then(|chats| chats.get(&user_id)) else {
            continue;
        };
        let live: bytes::Bytes = serde_json::to_vec(&LiveEvent::Presence(change))
            .expect("live events serialise")
            .into();
        for &chat_id in theirs {
            let subject = subjects.chat_live(chat_id, "presence");
            if let Err(error) = bus.client.publish(subject, live.clone()).await {
                tracing::warn!(%error, user_id, "presence change not published");
            }
        }
    }
}
