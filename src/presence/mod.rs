//! Presence: who has a socket open on some instance, told to the people who share a chat with
//! them, and `last_seen` for those who have none.
//!
//! Each instance keeps one entry in the `CHAT_PRESENCE` key-value bucket, `instance.<id>`,
//! listing its users ([`local`]: with a socket open, or closed within `PRESENCE_GRACE`). It
//! refreshes the entry on every change and every third of `PRESENCE_TTL`; the bucket's
//! `max_age` is the TTL, so a killed instance's entry goes away by itself. Every instance
//! watches the entries ([`directory`]): a user is online while a live entry lists them, and an
//! entry not heard from for the TTL counts as dead. The instance with the smallest id (the
//! leader, agreed without a vote) tells each change once ([`tell`]): on
//! `chat.presence.<user_id>` for Django, and on `chat.live.<chat_id>.presence` of each of the
//! user's chats of at most `PRESENCE_MAX_MEMBERS` members for the routers, which hand it to the
//! sockets of that chat. In a larger group every connect would be a frame to every other
//! member (1,000 members coming online: a million frames); there presence is asked for. When a user goes
//! offline, the leader writes `last_seen` to the `CHAT_LAST_SEEN` bucket.
//!
//! One entry per instance (not one key per user) keeps the key-value traffic to one put per
//! instance per change or refresh, whatever the number of users; the price is that each change
//! rewrites the instance's whole list (about 5 to 7 bytes a user) and every instance reads it;
//! changes are written at most every 250 ms. Figures in docs/events.md.

pub mod directory;
pub mod local;
mod tell;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use async_nats::jetstream::{
    kv::{self, Operation},
    stream::StorageType,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use self::{directory::Directory, local::LocalUsers};
use crate::{
    bus::{
        Bus, Subjects,
        live::{InstanceHeartbeat, PresenceStatus},
    },
    config::Config,
    domain::UserId,
    health::Pipeline,
};

/// The `/healthz` source of presence problems.
const HEALTH_SOURCE: &str = "presence";

/// The shortest time between two heartbeats written for changes: under churn (sockets opening
/// and closing all the time) the list is rewritten at most this often, at the price of telling
/// a first socket's `online` up to this much later.
const MIN_PUT_INTERVAL: Duration = Duration::from_millis(250);

/// Most `last_seen` reads one presence query runs at once.
const LAST_SEEN_READS: usize = 32;

/// One member's presence, as a query answers it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct MemberPresence {
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// When the user was last online; `null` while online or when never seen.
    #[serde(serialize_with = "crate::domain::rfc3339_opt")]
    pub last_seen: Option<DateTime<Utc>>,
}

/// The handle sockets and handlers share; cheap to clone. Off (`PRESENCE=off`) it tracks and
/// tells nothing.
#[derive(Clone, Default)]
pub struct Presence(Option<Arc<Shared>>);

struct Shared {
    local: Mutex<Local>,
    directory: Mutex<Directory>,
    /// Wakes the heartbeat task when a socket opens or closes.
    wake: Notify,
    last_seen: kv::Store,
}

struct Local {
    users: LocalUsers,
    /// The list changed since the last heartbeat was put.
    dirty: bool,
}

/// A socket counted as its user's presence; dropping it starts the user's grace.
pub struct Online {
    shared: Arc<Shared>,
    user_id: UserId,
}

impl Drop for Online {
    fn drop(&mut self) {
        lock(&self.shared.local)
            .users
            .closed(self.user_id, Instant::now());
        self.shared.wake.notify_one();
    }
}

impl Presence {
    /// Whether presence is on for this deployment.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Counts a socket of `user_id` until the guard is dropped; `None` when presence is off.
    pub fn online(&self, user_id: UserId) -> Option<Online> {
        let shared = self.0.as_ref()?;
        let mut local = lock(&shared.local);
        if local.users.opened(user_id) {
            local.dirty = true;
            shared.wake.notify_one();
        }
        drop(local);
        Some(Online {
            shared: Arc::clone(shared),
            user_id,
        })
    }

    /// The presence of every member of `chat_id`, by user id; empty when presence is off.
    pub async fn of_chat(
        &self,
        db: &DatabaseConnection,
        chat_id: crate::domain::ChatId,
    ) -> Result<Vec<MemberPresence>, sea_orm::DbErr> {
        if !self.enabled() {
            return Ok(Vec::new());
        }
        let members = crate::store::queries::members(db, [chat_id]).await?;
        let users: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        Ok(self.of(&users).await)
    }

    /// [`Presence::of_chat`] as `viewer` may see it: the members who block `viewer` are shown
    /// offline and never seen, as a user jetchat never saw.
    pub async fn of_chat_seen_by(
        &self,
        db: &DatabaseConnection,
        chat_id: crate::domain::ChatId,
        viewer: UserId,
    ) -> Result<Vec<MemberPresence>, sea_orm::DbErr> {
        let mut members = self.of_chat(db, chat_id).await?;
        let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        let blockers = crate::store::blocks::blockers_among(db, viewer, &ids).await?;
        for member in &mut members {
            if blockers.binary_search(&member.user_id).is_ok() {
                member.status = PresenceStatus::Offline;
                member.last_seen = None;
            }
        }
        Ok(members)
    }

    /// The presence of `users`, in their order; empty when presence is off.
    pub async fn of(&self, users: &[UserId]) -> Vec<MemberPresence> {
        let Some(shared) = &self.0 else {
            return Vec::new();
        };
        let online: Vec<(UserId, bool)> = {
            let local = lock(&shared.local);
            let directory = lock(&shared.directory);
            users
                .iter()
                .map(|&u| (u, local.users.has_socket(u) || directory.is_online(u)))
                .collect()
        };
        let last_seen_store = &shared.last_seen;
        futures_util::stream::iter(online)
            .map(|(user_id, online)| async move {
                if online {
                    return MemberPresence {
                        user_id,
                        status: PresenceStatus::Online,
                        last_seen: None,
                    };
                }
                MemberPresence {
                    user_id,
                    status: PresenceStatus::Offline,
                    last_seen: last_seen(last_seen_store, user_id).await,
                }
            })
            .buffered(LAST_SEEN_READS)
            .collect()
            .await
    }
}

/// When `user_id` was last online, from the last-seen bucket (`None` if never, or unreadable).
async fn last_seen(store: &kv::Store, user_id: UserId) -> Option<DateTime<Utc>> {
    let value = store
        .get(Subjects::last_seen_key(user_id))
        .await
        .inspect_err(|error| tracing::warn!(%error, user_id, "cannot read last_seen"))
        .ok()??;
    DateTime::parse_from_rfc3339(std::str::from_utf8(&value).ok()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the buckets and starts the heartbeat task of instance `instance`, or returns the
/// handle that does nothing when `PRESENCE=off`.
///
/// A bucket that cannot be created (JetStream refuses it: limits, permissions) stops the
/// start-up with an error naming `PRESENCE`: presence silently missing is worse than a clear
/// refusal, and `PRESENCE=off` is the way to run without it.
pub async fn start(
    bus: &Bus,
    db: DatabaseConnection,
    instance: Arc<str>,
    config: &Config,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
) -> anyhow::Result<Presence> {
    if !config.presence {
        return Ok(Presence::default());
    }
    let ttl = config.presence_ttl;
    let subjects = &bus.subjects;
    let heartbeats = bucket(
        bus,
        kv::Config {
            bucket: subjects.presence_bucket().to_owned(),
            description: "jetchat presence: one entry per instance listing its users".into(),
            max_age: ttl,
            storage: StorageType::Memory,
            ..Default::default()
        },
        config,
    )
    .await?;
    let last_seen = bucket(
        bus,
        kv::Config {
            bucket: subjects.last_seen_bucket().to_owned(),
            description: "jetchat presence: when each user was last online".into(),
            storage: StorageType::File,
            ..Default::default()
        },
        config,
    )
    .await?;
    let shared = Arc::new(Shared {
        local: Mutex::new(Local {
            users: LocalUsers::new(config.presence_grace),
            dirty: false,
        }),
        directory: Mutex::new(Directory::default()),
        wake: Notify::new(),
        last_seen: last_seen.clone(),
    });
    let task = Heartbeat {
        key: Subjects::presence_key(&instance),
        instance,
        ttl,
        bus: bus.clone(),
        store: heartbeats,
        shared: Arc::clone(&shared),
        pipeline,
        teller: tell::spawn(
            bus.clone(),
            db,
            last_seen,
            config.presence_max_members,
            shutdown.clone(),
        ),
    };
    // Our own entry first: the watch's first round then holds at least it.
    task.put()
        .await
        .context("PRESENCE: writing this instance's heartbeat")?;
    let watch = task.watch().await?;
    tokio::spawn(task.run(watch, shutdown));
    Ok(Presence(Some(shared)))
}

/// Creates or updates one of presence's buckets (one value per key, the streams' replicas).
async fn bucket(bus: &Bus, bucket: kv::Config, config: &Config) -> anyhow::Result<kv::Store> {
    let name = bucket.bucket.clone();
    bus.jetstream
        .create_or_update_key_value(kv::Config {
            history: 1,
            num_replicas: config.stream_replicas,
            ..bucket
        })
        .await
        .with_context(|| {
            format!(
                "PRESENCE: cannot create the key-value bucket {name}; PRESENCE=off runs without presence"
            )
        })
}

/// The task that refreshes this instance's entry and follows everyone's.
struct Heartbeat {
    instance: Arc<str>,
    key: String,
    ttl: Duration,
    bus: Bus,
    store: kv::Store,
    shared: Arc<Shared>,
    pipeline: Arc<Pipeline>,
    teller: tell::Teller,
}

impl Heartbeat {
    async fn run(self, mut watch: kv::Watch, shutdown: CancellationToken) {
        let mut refresh = tokio::time::interval(self.ttl / 3);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval((self.ttl / 10).max(Duration::from_millis(50)));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first round of the watch is the state as it was: nothing to tell.
        let mut primed = false;
        // Whether NATS was away at the last sweep: entries are not heard then, not dead.
        let mut was_away = false;
        let mut last_put = tokio::time::Instant::now();
        // When the changed list is to be written.
        let mut put_at: Option<tokio::time::Instant> = None;
        loop {
            let expiry = lock(&self.shared.local).users.next_expiry();
            let expiry = expiry.map(tokio::time::Instant::from_std);
            if put_at.is_none() && lock(&self.shared.local).dirty {
                put_at = Some(tokio::time::Instant::now().max(last_put + MIN_PUT_INTERVAL));
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep_until(put_at.unwrap_or_else(tokio::time::Instant::now)), if put_at.is_some() => {
                    put_at = None;
                    last_put = tokio::time::Instant::now();
                    self.refresh().await;
                }
                _ = refresh.tick() => {
                    put_at = None;
                    last_put = tokio::time::Instant::now();
                    self.refresh().await;
                }
                _ = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now)), if expiry.is_some() => {
                    let mut local = lock(&self.shared.local);
                    if local.users.expire(Instant::now()) {
                        local.dirty = true;
                    }
                }
                _ = sweep.tick() => {
                    let connected = self.bus.client.connection_state()
                        == async_nats::connection::State::Connected;
                    let changes = {
                        let mut directory = lock(&self.shared.directory);
                        if !connected {
                            was_away = true;
                            Vec::new()
                        } else if std::mem::take(&mut was_away) {
                            directory.heard_all(Instant::now());
                            Vec::new()
                        } else {
                            directory.sweep(Instant::now(), self.ttl)
                        }
                    };
                    self.tell(changes);
                }
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => {
                        let changes = self.apply(&entry);
                        if primed {
                            self.tell(changes);
                        }
                        primed |= entry.seen_current;
                    }
                    Some(Err(error)) => tracing::warn!(%error, "presence watch failed"),
                    None => {
                        tracing::warn!("presence watch ended; watching again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if let Ok(again) = self.watch().await {
                            watch = again;
                            primed = false;
                        }
                    }
                },
            }
        }
    }

    async fn watch(&self) -> anyhow::Result<kv::Watch> {
        self.store
            .watch_with_history(Subjects::all_presence_keys())
            .await
            .context("PRESENCE: watching the heartbeats")
    }

    /// Puts this instance's list; a failure is a `/healthz` problem until the next success.
    async fn refresh(&self) {
        match self.put().await {
            Ok(()) => self.pipeline.report(HEALTH_SOURCE, None),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "presence heartbeat not written");
                self.pipeline.report(
                    HEALTH_SOURCE,
                    Some(format!(
                        "the presence heartbeat cannot be written: {error:#}"
                    )),
                );
            }
        }
    }

    async fn put(&self) -> anyhow::Result<()> {
        let users = {
            let mut local = lock(&self.shared.local);
            local.dirty = false;
            local.users.listed()
        };
        let value = serde_json::to_vec(&InstanceHeartbeat {
            v: crate::bus::messages::VERSION,
            users,
        })?;
        self.store.put(&self.key, value.into()).await?;
        Ok(())
    }

    /// One watched entry into the directory.
    fn apply(&self, entry: &kv::Entry) -> Vec<directory::Change> {
        let Some(instance) = entry.key.strip_prefix("instance.") else {
            return Vec::new();
        };
        let mut directory = lock(&self.shared.directory);
        match entry.operation {
            Operation::Delete | Operation::Purge => directory.remove(instance),
            Operation::Put => match serde_json::from_slice::<InstanceHeartbeat>(&entry.value) {
                Ok(heartbeat) => {
                    directory.heartbeat(instance, heartbeat.users, Instant::now(), Utc::now())
                }
                Err(error) => {
                    tracing::warn!(%error, instance, "undecodable presence heartbeat ignored");
                    Vec::new()
                }
            },
        }
    }

    /// Hands changes to the teller when this instance leads.
    fn tell(&self, changes: Vec<directory::Change>) {
        if changes.is_empty() {
            return;
        }
        let leads = lock(&self.shared.directory).leader() == Some(&*self.instance);
        if leads {
            self.teller.tell(changes);
        }
    }
}
