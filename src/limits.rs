//! What one user may do how often: per-user token buckets for sends, marks, chat creation and
//! uploads, and the streak of refusals that closes an abusive socket.
//!
//! Buckets are per instance and keyed by user, so all of a user's sockets (and REST calls) on
//! this instance share them. A limit of `0` turns it off.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::HashMapStateStore,
};
use tokio_util::sync::CancellationToken;

use crate::{config::Config, domain::UserId};

/// Refusals in a row (no accepted send or mark between them) after which a socket is closed
/// with close code 4029 (`gateway::close::Close::RateLimited`): a client that honours `retry_after_ms`
/// never gets near it, one that ignores every refusal is cut off.
pub const ABUSIVE_REFUSALS: u32 = 50;

/// Presence queries a user may make per second, and at once: a client asks on opening a
/// chat, not in a loop.
const PRESENCE_QUERIES_PER_SEC: u32 = 5;
const PRESENCE_QUERIES_BURST: u32 = 20;

/// How often buckets that have filled up again are forgotten (they are the same as new ones).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

type Limiter<C> =
    RateLimiter<UserId, HashMapStateStore<UserId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One per-user token bucket (GCRA, the `governor` crate); off when built without a quota.
pub struct RateLimit<C: Clock = DefaultClock> {
    limiter: Option<Limiter<C>>,
}

impl RateLimit {
    /// A bucket on the monotonic clock; `None` turns the limit off.
    pub fn new(quota: Option<Quota>) -> Self {
        RateLimit::with_clock(quota, DefaultClock::default())
    }
}

impl<C: Clock> RateLimit<C> {
    /// A bucket on any clock (tests use a fake one).
    pub fn with_clock(quota: Option<Quota>, clock: C) -> Self {
        RateLimit {
            limiter: quota.map(|quota| RateLimiter::hashmap_with_clock(quota, clock)),
        }
    }

    /// Takes one token from `user`'s bucket, or tells how long until the next one is there.
    pub fn check(&self, user: UserId) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&user)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Forgets the users whose bucket is full again, so the map holds only recent users.
    fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A sustained rate per second with a burst; `rate == 0` is no limit.
pub fn per_second(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate)))
}

/// At most `rate` a minute, all of them at once if the user likes; `rate == 0` is no limit.
pub fn per_minute(rate: u32) -> Option<Quota> {
    NonZeroU32::new(rate).map(Quota::per_minute)
}

/// What a per-user limit limits: one row each of [`LIMITS`], the one table of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Sends and message changes.
    Messages,
    /// Marks and mutes.
    Marks,
    /// Chats created.
    Chats,
    /// Uploads.
    Uploads,
    /// Presence queries: each reads the database and a key per offline member.
    PresenceQueries,
}

/// One row of the table: what is limited, by which settings, with which default, and who
/// checks it. docs/protocol.md's "Rate limits" and README's settings say the same.
#[derive(Debug)]
pub struct LimitRow {
    pub limit: Limit,
    /// Said in a refusal: "too many {what}".
    pub what: &'static str,
    /// The requests it counts.
    pub counts: &'static str,
    /// The settings that set it (none: fixed).
    pub settings: &'static [&'static str],
    /// The default, in words.
    pub default: &'static str,
}

/// Every per-user limit. The socket's own limits, per socket rather than per user, are the
/// `typing` bucket (`RATE_TYPING_PER_SEC`, `RATE_TYPING_BURST`: `gateway::typing`) and one
/// `sync` a second (`gateway::catch_up`).
pub const LIMITS: [LimitRow; 5] = [
    LimitRow {
        limit: Limit::Messages,
        what: "messages",
        counts: "send_message, edit_message, delete_message, react, unreact and their REST routes",
        settings: &["RATE_MESSAGES_PER_SEC", "RATE_MESSAGES_BURST"],
        default: "20 a second, bursts of 60",
    },
    LimitRow {
        limit: Limit::Marks,
        what: "marks",
        counts: "delivered, acknowledge, mute, unmute and the mute routes",
        settings: &["RATE_MARKS_PER_SEC", "RATE_MARKS_BURST"],
        default: "50 a second, bursts of 200",
    },
    LimitRow {
        limit: Limit::Chats,
        what: "chats created",
        counts: "POST /chats/",
        settings: &["RATE_CHATS_PER_MIN"],
        default: "30 a minute",
    },
    LimitRow {
        limit: Limit::Uploads,
        what: "uploads",
        counts: "POST /upload",
        settings: &["RATE_UPLOADS_PER_MIN"],
        default: "60 a minute",
    },
    LimitRow {
        limit: Limit::PresenceQueries,
        what: "presence queries",
        counts: "presence frames and GET /chats/{id}/presence",
        settings: &[],
        default: "5 a second, bursts of 20",
    },
];

/// A request over its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverLimit {
    /// What was limited ("messages", "uploads", ...).
    pub what: &'static str,
    /// How long until the same request would be taken.
    pub wait: Duration,
}

/// Every per-user limit of this instance, one bucket per row of [`LIMITS`].
pub struct Limits {
    buckets: [RateLimit; LIMITS.len()],
}

impl Limits {
    /// The limits the settings ask for.
    pub fn from_config(config: &Config) -> Self {
        let quota = |limit| match limit {
            Limit::Messages => per_second(config.rate_messages_per_sec, config.rate_messages_burst),
            Limit::Marks => per_second(config.rate_marks_per_sec, config.rate_marks_burst),
            Limit::Chats => per_minute(config.rate_chats_per_min),
            Limit::Uploads => per_minute(config.rate_uploads_per_min),
            Limit::PresenceQueries => per_second(PRESENCE_QUERIES_PER_SEC, PRESENCE_QUERIES_BURST),
        };
        Limits {
            buckets: LIMITS.map(|row| RateLimit::new(quota(row.limit))),
        }
    }

    /// Takes one of `user`'s tokens for `limit`, or says how long until there is one: the
    /// one check the socket and REST both call.
    pub fn check(&self, limit: Limit, user: UserId) -> Result<(), OverLimit> {
        self.buckets[limit as usize]
            .check(user)
            .map_err(|wait| OverLimit {
                what: LIMITS[limit as usize].what,
                wait,
            })
    }

    /// Keeps the buckets' maps to recent users until `shutdown`.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: CancellationToken) {
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => {
                        for bucket in &limits.buckets {
                            bucket.forget_idle();
                        }
                    }
                }
            }
        });
    }
}

/// Refusals of one socket since it last had a send or mark accepted.
#[derive(Debug, Default)]
pub struct RefusalStreak(u32);

impl RefusalStreak {
    /// A send or mark went through: the client is behaving.
    pub fn passed(&mut self) {
        self.0 = 0;
    }

    /// One more refusal; `true` once the streak reaches [`ABUSIVE_REFUSALS`].
    pub fn refused(&mut self) -> bool {
        self.0 = self.0.saturating_add(1);
        self.0 >= ABUSIVE_REFUSALS
    }
}

/// A wait in whole milliseconds, rounded up (a client that waits `0` would be refused again).
pub fn retry_after_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_micros().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A wait in whole seconds, rounded up, for an HTTP `Retry-After`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_limit_in_order_and_its_settings_are_documented() {
        let readme = include_str!("../README.md");
        for (at, row) in LIMITS.iter().enumerate() {
            assert_eq!(row.limit as usize, at, "{row:?} is in its place");
            for setting in row.settings {
                assert!(readme.contains(setting), "README lists {setting}");
            }
        }
    }
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_bucket_allows_its_burst_then_one_per_interval_per_user() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(per_second(2, 3), clock.clone());
        for _ in 0..3 {
            assert_eq!(limit.check(1), Ok(()));
        }
        let wait = limit.check(1).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500), "one token every 1/2 s");
        assert_eq!(
            limit.check(2),
            Ok(()),
            "another user has a bucket of their own"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(limit.check(1), Ok(()));
        assert!(limit.check(1).is_err());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        assert!(per_second(0, 10).is_none());
        assert!(per_minute(0).is_none());
        let off = RateLimit::new(None);
        for _ in 0..10_000 {
            assert_eq!(off.check(1), Ok(()));
        }
    }

    #[test]
    fn quotas_mean_what_the_settings_say() {
        let quota = per_second(20, 60).unwrap();
        assert_eq!(quota.burst_size().get(), 60);
        assert_eq!(quota.replenish_interval(), Duration::from_millis(50));
        let quota = per_minute(30).unwrap();
        assert_eq!(quota.burst_size().get(), 30);
        assert_eq!(quota.replenish_interval(), Duration::from_secs(2));
        assert_eq!(
            per_second(5, 0).unwrap().burst_size().get(),
            5,
            "no burst given: the rate"
        );
    }

    #[test]
    fn forgetting_idle_users_keeps_their_limits() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(per_second(1, 1), clock.clone());
        assert_eq!(limit.check(1), Ok(()));
        limit.forget_idle();
        assert!(
            limit.check(1).is_err(),
            "a user still waiting is remembered"
        );
        clock.advance(Duration::from_secs(5));
        limit.forget_idle();
        assert_eq!(
            limit.limiter.as_ref().unwrap().len(),
            0,
            "a full bucket is dropped"
        );
        assert_eq!(limit.check(1), Ok(()));
    }

    #[test]
    fn a_streak_of_refusals_ends_with_the_close() {
        let mut streak = RefusalStreak::default();
        for _ in 1..ABUSIVE_REFUSALS {
            assert!(!streak.refused());
        }
        streak.passed();
        for _ in 1..ABUSIVE_REFUSALS {
            assert!(
                !streak.refused(),
                "an accepted frame starts the count again"
            );
        }
        assert!(streak.refused());
    }

    #[test]
    fn waits_round_up() {
        assert_eq!(retry_after_ms(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(49_001)), 50);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
