//! The users this instance lists in its heartbeat: those with a socket open here, and those
//! whose last socket closed less than `PRESENCE_GRACE` ago (a reconnect within the grace is
//! no change at all). A plain state machine; the clock is passed in.

use std::{
    collections::{HashMap, hash_map::Entry},
    time::{Duration, Instant},
};

use crate::domain::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// This many sockets open.
    Open(u32),
    /// No socket since; listed until then.
    Closing { until: Instant },
}

/// This instance's users and their grace periods.
#[derive(Debug)]
pub struct LocalUsers {
    grace: Duration,
    users: HashMap<UserId, Local>,
}

impl LocalUsers {
    /// No users yet; a closed socket's user stays listed for `grace`.
    pub fn new(grace: Duration) -> Self {
        LocalUsers {
            grace,
            users: HashMap::new(),
        }
    }

    /// A socket of `user` opened; `true` when this changes the list.
    pub fn opened(&mut self, user: UserId) -> bool {
        match self.users.entry(user) {
            Entry::Vacant(e) => {
                e.insert(Local::Open(1));
                true
            }
            Entry::Occupied(mut e) => {
                let next = match *e.get() {
                    Local::Open(n) => Local::Open(n.saturating_add(1)),
                    Local::Closing { .. } => Local::Open(1),
                };
                e.insert(next);
                false
            }
        }
    }

    /// A socket of `user` closed at `now`; the last one starts the grace (no list change yet).
    pub fn closed(&mut self, user: UserId, now: Instant) {
        if let Some(local) = self.users.get_mut(&user) {
            *local = match *local {
                Local::Open(n) if n > 1 => Local::Open(n - 1),
                Local::Open(_) | Local::Closing { .. } => Local::Closing {
                    until: now + self.grace,
                },
            };
        }
    }

    /// Forgets the users whose grace ran out by `now`; `true` when the list changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.users.len();
        self.users
            .retain(|_, local| !matches!(local, Local::Closing { until } if *until <= now));
        self.users.len() != before
    }

    /// When the next grace runs out, if one runs.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.users
            .values()
            .filter_map(|local| match local {
                Local::Closing { until } => Some(*until),
                Local::Open(_) => None,
            })
            .min()
    }

    /// Every listed user, sorted (the heartbeat's value).
    pub fn listed(&self) -> Vec<UserId> {
        let mut users: Vec<UserId> = self.users.keys().copied().collect();
        users.sort_unstable();
        users
    }

    /// Whether `user` has a socket open here right now.
    pub fn has_socket(&self, user: UserId) -> bool {
        matches!(self.users.get(&user), Some(Local::Open(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[test]
    fn the_first_socket_lists_the_user_and_the_last_one_unlists_after_the_grace() {
        let t0 = Instant::now();
        let mut local = LocalUsers::new(GRACE);
        assert!(local.opened(1));
        assert!(!local.opened(1), "a second socket changes nothing");
        local.closed(1, t0);
        assert!(!local.expire(t0 + GRACE * 2), "one socket still open");
        local.closed(1, t0);
        assert_eq!(local.listed(), [1], "listed during the grace");
        assert!(!local.has_socket(1));
        assert_eq!(local.next_expiry(), Some(t0 + GRACE));
        assert!(!local.expire(t0 + GRACE - Duration::from_millis(1)));
        assert!(local.expire(t0 + GRACE));
        assert!(local.listed().is_empty());
        assert_eq!(local.next_expiry(), None);
    }

    #[test]
    fn a_reconnect_within_the_grace_changes_nothing() {
        let t0 = Instant::now();
        let mut local = LocalUsers::new(GRACE);
        local.opened(1);
        for i in 0..100 {
            local.closed(1, t0 + Duration::from_millis(i));
            assert!(!local.opened(1), "flap {i} is no change");
        }
        assert!(
            !local.expire(t0 + GRACE * 10),
            "open again: nothing expires"
        );
        assert_eq!(local.listed(), [1]);
    }

    #[test]
    fn a_close_without_an_open_is_ignored() {
        let mut local = LocalUsers::new(GRACE);
        local.closed(9, Instant::now());
        assert!(local.listed().is_empty());
    }
}
