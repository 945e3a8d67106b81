//! What the scenarios mix in beside their messages: actions a client does a few times a second
//! (typing, edits, reactions) and users whose socket comes and goes (presence churn). Used by
//! `rate` (`--typing-per-sec`, `--churn`, `--edits-per-sec`, `--reactions-per-sec`) and `soak`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;

use crate::{
    client::{self, WsSink, WsStream},
    progress::note,
    rest::{self, NewChat},
    target::Target,
};

/// The churning users (after the `connections` users of the clients), each made a private
/// chat with client `i % connections`, so that its comings and goings are told to that client.
pub async fn churn_chats(
    target: &Target,
    churn: usize,
    connections: usize,
    run: &str,
) -> anyhow::Result<Vec<i64>> {
    let churners: Vec<i64> = (0..churn).map(|i| target.user(connections + i)).collect();
    if !churners.is_empty() {
        note(format!(
            "creating {} private chats for churning users",
            churners.len()
        ));
        rest::create_chats(
            target,
            churners
                .iter()
                .enumerate()
                .map(|(i, &user)| NewChat {
                    creator: user,
                    others: vec![target.user(i % connections)],
                    is_group: false,
                })
                .collect(),
            run,
        )
        .await?;
    }
    Ok(churners)
}

/// The emoji a connection reacts with, in turn.
pub const EMOJI: &[&str] = &["👍", "❤️", "😂", "🎉", "👀"];

/// Something a writer does `per_sec` times a second beside its messages. A late writer skips
/// what it missed, as a client would, rather than bursting.
pub struct Periodic {
    period: Duration,
    /// When it is next due.
    pub next: Instant,
}

impl Periodic {
    /// `None` for a rate of 0. Connection `index` of `connections` starts `offset` (0..1) of
    /// its own share into the period, so that connections do not act all at once.
    pub fn new(
        per_sec: f64,
        start: Instant,
        index: usize,
        connections: f64,
        offset: f64,
    ) -> Option<Self> {
        (per_sec > 0.0).then(|| {
            let period = Duration::from_secs_f64(1.0 / per_sec);
            Periodic {
                period,
                next: start + period.mul_f64((index as f64 + offset) / connections),
            }
        })
    }

    /// Whether it is due at `now`; if so, the next time is moved past `now`.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.next > now {
            return false;
        }
        while self.next <= now {
            self.next += self.period;
        }
        true
    }
}

/// A user whose socket comes and goes until `stop`: online for `online`, away for
/// `offline` (longer than the server's `PRESENCE_GRACE`), starting after `delay`. Counts each
/// arrival, and each departure once its time away is over (by then the server has told it);
/// stopped while away, it first sits out the rest of that time, so that every departure it
/// counts has been told. Stopped while online, it hands its socket back: the caller drops it
/// once it has read the counts.
pub async fn churn_user(
    target: Arc<Target>,
    user: i64,
    delay: Duration,
    (online, offline): (Duration, Duration),
    changes: Arc<crate::stats::Count>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<(WsSink, WsStream)>> {
    if tokio::time::timeout(delay, stop.cancelled()).await.is_ok() {
        return Ok(None);
    }
    loop {
        let socket = client::connect(&target, user, None).await?;
        changes.inc();
        let (sink, mut stream) = socket.split();
        let reading = async { while let Some(Ok(_)) = stream.next().await {} };
        tokio::select! {
            () = reading => anyhow::bail!("the server closed a churning user's socket"),
            () = stop.cancelled() => return Ok(Some((sink, stream))),
            () = tokio::time::sleep(online) => {}
        }
        // Abrupt: dropping both halves closes the TCP connection without a close frame, the
        // way a phone that loses its network does.
        drop((sink, stream));
        let stopped = tokio::time::timeout(offline, stop.cancelled())
            .await
            .is_ok();
        if stopped {
            tokio::time::sleep(offline).await;
        }
        changes.inc();
        if stopped {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Periodic;

    #[test]
    fn a_periodic_action_is_due_once_per_period_and_skips_what_a_late_writer_missed() {
        let start = Instant::now();
        assert!(Periodic::new(0.0, start, 0, 10.0, 0.5).is_none());
        let mut p = Periodic::new(2.0, start, 5, 10.0, 0.0).unwrap();
        assert_eq!(
            p.next,
            start + Duration::from_millis(250),
            "half of its share"
        );
        assert!(!p.due(start));
        assert!(p.due(start + Duration::from_millis(250)));
        assert!(!p.due(start + Duration::from_millis(700)));
        // Two seconds late: due once, and next after now.
        let late = start + Duration::from_millis(2_800);
        assert!(p.due(late));
        assert!(p.next > late && p.next <= late + Duration::from_millis(500));
        assert!(!p.due(late));
    }
}
