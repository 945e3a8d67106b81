//! What every instance lists in its heartbeat, as this instance heard it, and the presence
//! changes that follow: a user is online while at least one live instance lists them. An
//! instance not heard from for `PRESENCE_TTL` is dead and its users offline (no ghost online
//! after `kill -9`). A plain state machine; clocks are passed in.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::{bus::live::PresenceStatus, domain::UserId};

/// A user's presence changed (the aggregate over every instance).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// For `offline`: when the user was last known online.
    pub last_seen: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Heartbeat {
    users: HashSet<UserId>,
    /// When this instance received it (its own clock: no skew between instances matters).
    heard: Instant,
    /// When the server stored it: the `last_seen` of its users if the instance dies.
    stored: DateTime<Utc>,
}

/// Every live instance's users.
#[derive(Debug, Default)]
pub struct Directory {
    instances: HashMap<String, Heartbeat>,
    /// How many live instances list each user.
    listed_by: HashMap<UserId, u32>,
}

impl Directory {
    /// Instance `instance` now lists `users` (a heartbeat heard at `heard`, stored at
    /// `stored`); returns the users whose presence this changed.
    pub fn heartbeat(
        &mut self,
        instance: &str,
        users: impl IntoIterator<Item = UserId>,
        heard: Instant,
        stored: DateTime<Utc>,
    ) -> Vec<Change> {
        let users: HashSet<UserId> = users.into_iter().collect();
        let mut changes = Vec::new();
        let previous = self.instances.remove(instance).map(|h| h.users);
        for &user in &users {
            if previous.as_ref().is_none_or(|p| !p.contains(&user)) {
                self.list(user, &mut changes);
            }
        }
        for user in previous.into_iter().flatten() {
            if !users.contains(&user) {
                self.unlist(user, stored, &mut changes);
            }
        }
        self.instances.insert(
            instance.to_owned(),
            Heartbeat {
                users,
                heard,
                stored,
            },
        );
        changes
    }

    /// Instance `instance` is gone (its key deleted, or silent too long): its users were last
    /// seen at its last heartbeat.
    pub fn remove(&mut self, instance: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(heartbeat) = self.instances.remove(instance) {
            for user in heartbeat.users {
                self.unlist(user, heartbeat.stored, &mut changes);
            }
        }
        changes
    }

    /// Removes every instance not heard from within `ttl` of `now`.
    pub fn sweep(&mut self, now: Instant, ttl: Duration) -> Vec<Change> {
        let dead: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.heard) > ttl)
            .map(|(id, _)| id.clone())
            .collect();
        dead.iter().flat_map(|id| self.remove(id)).collect()
    }

    /// Counts every instance as heard at `now` (NATS was away: silence proved nothing).
    pub fn heard_all(&mut self, now: Instant) {
        for heartbeat in self.instances.values_mut() {
            heartbeat.heard = now;
        }
    }

    /// Whether some live instance lists `user`.
    pub fn is_online(&self, user: UserId) -> bool {
        self.listed_by.contains_key(&user)
    }

    /// The instance that tells presence changes: the live one with the smallest id, so every
    /// instance agrees without a vote (and a new one takes over when it dies).
    pub fn leader(&self) -> Option<&str> {
        self.instances.keys().min().map(String::as_str)
    }

    /// Users listed by some live instance.
    pub fn online_count(&self) -> usize {
        self.listed_by.len()
    }

    fn list(&mut self, user: UserId, changes: &mut Vec<Change>) {
        let count = self.listed_by.entry(user).or_insert(0);
        *count += 1;
        if *count == 1 {
            changes.push(Change {
                user_id: user,
                status: PresenceStatus::Online,
                last_seen: None,
            });
        }
    }

    fn unlist(&mut self, user: UserId, at: DateTime<Utc>, changes: &mut Vec<Change>) {
        let Some(count) = self.listed_by.get_mut(&user) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.listed_by.remove(&user);
            changes.push(Change {
                user_id: user,
                status: PresenceStatus::Offline,
                last_seen: Some(at),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn statuses(changes: &[Change]) -> Vec<(UserId, PresenceStatus)> {
        let mut all: Vec<_> = changes.iter().map(|c| (c.user_id, c.status)).collect();
        all.sort_by_key(|(user, _)| *user);
        all
    }

    #[test]
    fn a_user_is_online_while_any_instance_lists_them() {
        use PresenceStatus::*;
        let t0 = Instant::now();
        let now = Utc::now();
        let mut d = Directory::default();
        assert_eq!(
            statuses(&d.heartbeat("a", [1, 2], t0, now)),
            [(1, Online), (2, Online)]
        );
        assert!(
            d.heartbeat("b", [2, 3], t0, now)
                .iter()
                .all(|c| c.user_id == 3)
        );
        assert!(
            d.heartbeat("a", [1, 2], t0, now).is_empty(),
            "a refresh is no change"
        );
        assert!(d.heartbeat("a", [1], t0, now).is_empty(), "2 is still on b");
        let changes = d.heartbeat("b", [3], t0, now);
        assert_eq!(statuses(&changes), [(2, Offline)]);
        assert_eq!(changes[0].last_seen, Some(now));
        assert!(d.is_online(1) && !d.is_online(2) && d.is_online(3));
        assert_eq!(d.online_count(), 2);
    }

    #[test]
    fn a_silent_instance_takes_its_users_offline_at_its_last_heartbeat() {
        use PresenceStatus::*;
        let t0 = Instant::now();
        let last = Utc::now();
        let mut d = Directory::default();
        d.heartbeat("a", [1], t0, last);
        d.heartbeat("b", [1, 2], t0, last);
        assert!(d.sweep(t0 + TTL, TTL).is_empty(), "not yet past the TTL");
        d.heartbeat("a", [1], t0 + TTL, last);
        let changes = d.sweep(t0 + TTL + Duration::from_secs(1), TTL);
        assert_eq!(statuses(&changes), [(2, Offline)], "1 is still on a");
        assert_eq!(changes[0].last_seen, Some(last));
        assert_eq!(d.leader(), Some("a"));
        assert_eq!(statuses(&d.remove("a")), [(1, Offline)]);
        assert_eq!(d.leader(), None);
    }

    #[test]
    fn the_leader_is_the_smallest_live_instance() {
        let t0 = Instant::now();
        let mut d = Directory::default();
        d.heartbeat("b", [], t0, Utc::now());
        d.heartbeat("c", [], t0, Utc::now());
        assert_eq!(d.leader(), Some("b"));
        d.heartbeat("a", [], t0, Utc::now());
        assert_eq!(d.leader(), Some("a"));
        d.remove("a");
        assert_eq!(d.leader(), Some("b"));
    }
}
