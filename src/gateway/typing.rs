//! One socket's typing: its rate limit, and the chats it is typing in, each until a deadline
//! after which the server tells `stopped` on its behalf (a client that vanishes mid-word does
//! not leave "typing…" behind).

use std::time::Duration;

use governor::{
    RateLimiter,
    clock::{Clock, DefaultClock},
    state::{InMemoryState, NotKeyed},
};
use tokio::time::Instant;

use crate::{config::Config, domain::ChatId, limits};

/// The socket's own typing state; small until the socket first types.
#[derive(Default)]
pub struct Typing {
    /// Made on the first `typing` frame (most sockets never send one).
    limiter: Option<Box<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>>,
    /// Chats typed in, with when the typing runs out.
    active: Vec<(ChatId, Instant)>,
}

impl Typing {
    /// Takes one `typing` frame from the socket's bucket (`RATE_TYPING_PER_SEC`, burst
    /// `RATE_TYPING_BURST`), or tells how long until the next one is allowed.
    pub fn check(&mut self, config: &Config) -> Result<(), Duration> {
        let Some(quota) = limits::per_second(config.rate_typing_per_sec, config.rate_typing_burst)
        else {
            return Ok(());
        };
        let limiter = self
            .limiter
            .get_or_insert_with(|| Box::new(RateLimiter::direct(quota)));
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Typing in `chat_id` until `until` (a refresh moves it).
    pub fn started(&mut self, chat_id: ChatId, until: Instant) {
        match self.active.iter_mut().find(|(chat, _)| *chat == chat_id) {
            Some(entry) => entry.1 = until,
            None => self.active.push((chat_id, until)),
        }
    }

    /// No longer typing in `chat_id`; `true` if it was.
    pub fn stopped(&mut self, chat_id: ChatId) -> bool {
        let before = self.active.len();
        self.active.retain(|(chat, _)| *chat != chat_id);
        self.active.len() != before
    }

    /// When the next typing runs out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.active.iter().map(|(_, until)| *until).min()
    }

    /// The chats whose typing ran out by `now`, forgotten.
    pub fn expired(&mut self, now: Instant) -> Vec<ChatId> {
        let (gone, kept) = self.active.iter().partition(|(_, until)| *until <= now);
        self.active = kept;
        gone.into_iter().map(|(chat, _)| chat).collect()
    }

    /// Every chat still typed in, forgotten (the socket closes).
    pub fn take_all(&mut self) -> Vec<ChatId> {
        self.active.drain(..).map(|(chat, _)| chat).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_runs_out_unless_refreshed() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut typing = Typing::default();
        typing.started(7, t0 + 6 * s);
        typing.started(8, t0 + 3 * s);
        assert_eq!(typing.next_deadline(), Some(t0 + 3 * s));
        typing.started(8, t0 + 9 * s);
        assert_eq!(typing.expired(t0 + 6 * s), [7]);
        assert_eq!(typing.next_deadline(), Some(t0 + 9 * s));
        assert!(typing.stopped(8));
        assert!(!typing.stopped(8), "already stopped");
        assert_eq!(typing.next_deadline(), None);
        typing.started(1, t0);
        assert_eq!(typing.take_all(), [1]);
    }
}
