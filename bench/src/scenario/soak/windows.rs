//! The soak's windows and verdicts: what each stretch of the run sent, delivered and how fast,
//! and what jetchat held meanwhile (RSS, open files); then, over the windows that start after
//! the warm-up, whether memory, files and the p99 stayed flat. Pure: the scenario feeds it.

use std::{sync::Mutex, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::{LatencySummary, latency_histogram, merge};

/// RSS and open files may grow by this share over the first window after the warm-up.
pub const MAX_GROWTH: f64 = 0.10;
/// The late windows' p99 may be this many times the early windows'…
pub const MAX_P99_FACTOR: f64 = 2.0;
/// …or this many milliseconds more, whichever is larger: at a p99 of a few milliseconds, a
/// doubling is scheduling noise on a shared machine, not a trend.
pub const P99_SLACK_MS: f64 = 10.0;

/// What one window gathered.
#[derive(Default)]
pub struct Slot {
    /// Send → `new_message` (µs) of the messages sent in the window, at the steady clients.
    pub latency: Option<Histogram<u64>>,
    /// Messages sent and first receipts, counted by the sampler at its ticks in the window.
    pub sent: u64,
    pub deliveries: u64,
    /// jetchat's VmRSS (KiB) and open files at each sample in the window.
    pub rss_kib: Vec<u64>,
    pub fds: Vec<u64>,
}

/// The windows of a run, filled concurrently (sockets' readers and the sampler).
pub struct Windows {
    start_us: u64,
    width_us: u64,
    slots: Mutex<Vec<Slot>>,
}

impl Windows {
    /// `count` windows of `width`, the first starting at `start_us` (µs since the epoch).
    pub fn new(start_us: u64, width: Duration, count: usize) -> Windows {
        Windows {
            start_us,
            width_us: (width.as_micros() as u64).max(1),
            slots: Mutex::new((0..count).map(|_| Slot::default()).collect()),
        }
    }

    /// The window `at_us` falls in, if any.
    pub fn index(&self, at_us: u64) -> Option<usize> {
        let count = self.slots.lock().expect("windows lock").len();
        window_index(at_us, self.start_us, self.width_us, count)
    }

    /// A message sent at `sent_us` reached a steady client at `received_us`.
    pub fn record_latency(&self, sent_us: u64, received_us: u64) {
        self.with_slot(sent_us, |slot| {
            slot.latency
                .get_or_insert_with(latency_histogram)
                .saturating_record(received_us.saturating_sub(sent_us).max(1));
        });
    }

    /// Runs `f` on the window `at_us` falls in (nothing outside the run).
    pub fn with_slot(&self, at_us: u64, f: impl FnOnce(&mut Slot)) {
        let mut slots = self.slots.lock().expect("windows lock");
        if let Some(i) = window_index(at_us, self.start_us, self.width_us, slots.len()) {
            f(&mut slots[i]);
        }
    }

    /// The figures of window `i` so far.
    pub fn row(&self, i: usize, plan: &WindowPlan) -> Option<WindowRow> {
        let slots = self.slots.lock().expect("windows lock");
        slots.get(i).map(|slot| plan.row(i, slot))
    }

    /// Every window, for the verdicts (later records go nowhere).
    pub fn take(&self) -> Vec<Slot> {
        std::mem::take(&mut *self.slots.lock().expect("windows lock"))
    }
}

/// Which window `at_us` falls in: `count` windows of `width_us` from `start_us`.
pub fn window_index(at_us: u64, start_us: u64, width_us: u64, count: usize) -> Option<usize> {
    let i = (at_us.checked_sub(start_us)? / width_us.max(1)) as usize;
    (i < count).then_some(i)
}

/// The number of windows of `width` in `duration` (a last, shorter one included).
pub fn window_count(duration: Duration, width: Duration) -> usize {
    let width = width.as_secs_f64();
    if width <= 0.0 {
        return 0;
    }
    (duration.as_secs_f64() / width - 1e-9).ceil().max(0.0) as usize
}

/// The run's lengths, to turn a slot into a row.
#[derive(Clone, Copy, Debug)]
pub struct WindowPlan {
    pub width: Duration,
    pub duration: Duration,
    pub warmup: Duration,
}

/// One window's figures, as the report shows them.
#[derive(Clone, Debug, Serialize)]
pub struct WindowRow {
    pub index: usize,
    pub start_s: f64,
    /// Its length (the last one may be shorter).
    pub seconds: f64,
    /// Whether it starts at or after the end of the warm-up: the verdicts look at those.
    pub after_warmup: bool,
    pub sent_per_s: f64,
    pub deliveries_per_s: f64,
    pub latency: LatencySummary,
    /// The median of the window's samples, and their maximum.
    pub rss_kib: Option<u64>,
    pub rss_max_kib: Option<u64>,
    pub fds: Option<u64>,
    pub fds_max: Option<u64>,
}

impl WindowPlan {
    pub fn row(&self, index: usize, slot: &Slot) -> WindowRow {
        let start = self.width.as_secs_f64() * index as f64;
        let seconds = self
            .width
            .as_secs_f64()
            .min(self.duration.as_secs_f64() - start)
            .max(0.0);
        let rate = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        WindowRow {
            index,
            start_s: start,
            seconds,
            after_warmup: start + 1e-9 >= self.warmup.as_secs_f64(),
            sent_per_s: rate(slot.sent),
            deliveries_per_s: rate(slot.deliveries),
            latency: LatencySummary::of(slot.latency.as_ref()),
            rss_kib: median(&slot.rss_kib),
            rss_max_kib: slot.rss_kib.iter().max().copied(),
            fds: median(&slot.fds),
            fds_max: slot.fds.iter().max().copied(),
        }
    }
}

/// The median of some samples (the lower of the middle two), `None` when there are none.
pub fn median(samples: &[u64]) -> Option<u64> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// Whether a figure stayed flat: the worst later value against the first one and the limit
/// that follows from it. `ok` is `None` when there was too little to judge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub ok: Option<bool>,
    pub baseline: Option<f64>,
    pub worst: Option<f64>,
    pub limit: Option<f64>,
}

impl Verdict {
    fn not_judged() -> Verdict {
        Verdict {
            ok: None,
            baseline: None,
            worst: None,
            limit: None,
        }
    }
}

/// RSS or open files flat after the warm-up: each post-warm-up window's median sample, the
/// highest of the later windows against the first one's; flat when it is at most
/// [`MAX_GROWTH`] more. (Less is fine: memory handed back is no leak.) `values` are the
/// post-warm-up windows' medians in order; windows without a sample are skipped. Not judged
/// with fewer than two windows that have one.
pub fn resource_flat(values: &[Option<u64>]) -> Verdict {
    let values: Vec<f64> = values.iter().flatten().map(|&v| v as f64).collect();
    let [first, rest @ ..] = values.as_slice() else {
        return Verdict::not_judged();
    };
    let Some(worst) = rest.iter().copied().reduce(f64::max) else {
        return Verdict::not_judged();
    };
    let limit = first * (1.0 + MAX_GROWTH);
    Verdict {
        ok: Some(worst <= limit),
        baseline: Some(*first),
        worst: Some(worst),
        limit: Some(limit),
    }
}

/// The p99 flat after the warm-up: the post-warm-up windows split in thirds (at least one
/// window each), the p99 of the last third's messages together against the first third's;
/// flat when it is at most [`MAX_P99_FACTOR`] times as high or [`P99_SLACK_MS`] higher,
/// whichever allows more. A third rather than one window each, so that a single stall on a
/// shared machine does not decide, while a trend (a queue or a table that grows) does. Not
/// judged with fewer than two windows that timed a message.
pub fn p99_flat(windows: &[Option<&Histogram<u64>>]) -> Verdict {
    let timed: Vec<&Histogram<u64>> = windows
        .iter()
        .flatten()
        .copied()
        .filter(|h| !h.is_empty())
        .collect();
    if timed.len() < 2 {
        return Verdict::not_judged();
    }
    let third = (timed.len() / 3).max(1);
    let p99 = |part: &[&Histogram<u64>]| {
        let mut merged = None;
        for h in part {
            merge(&mut merged, &Some((*h).clone()));
        }
        LatencySummary::of(merged.as_ref()).p99_ms
    };
    let early = p99(&timed[..third]);
    let late = p99(&timed[timed.len() - third..]);
    let limit = (early * MAX_P99_FACTOR).max(early + P99_SLACK_MS);
    Verdict {
        ok: Some(late <= limit),
        baseline: Some(early),
        worst: Some(late),
        limit: Some(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(p99_ms: u64) -> Histogram<u64> {
        let mut h = latency_histogram();
        for _ in 0..99 {
            h.record(1_000).unwrap();
        }
        h.record(p99_ms * 1_000).unwrap();
        h.record(p99_ms * 1_000).unwrap();
        h
    }

    #[test]
    fn times_fall_in_their_window_and_none_outside_the_run() {
        assert_eq!(window_index(999, 1_000, 10, 3), None);
        assert_eq!(window_index(1_000, 1_000, 10, 3), Some(0));
        assert_eq!(window_index(1_009, 1_000, 10, 3), Some(0));
        assert_eq!(window_index(1_010, 1_000, 10, 3), Some(1));
        assert_eq!(window_index(1_029, 1_000, 10, 3), Some(2));
        assert_eq!(window_index(1_030, 1_000, 10, 3), None);
        let s = Duration::from_secs;
        assert_eq!(window_count(s(1200), s(60)), 20);
        assert_eq!(window_count(s(1230), s(60)), 21);
        assert_eq!(window_count(s(5), s(60)), 1);
        assert_eq!(window_count(s(0), s(60)), 0);
    }

    #[test]
    fn a_row_has_rates_medians_and_whether_it_is_past_the_warm_up() {
        let plan = WindowPlan {
            width: Duration::from_secs(60),
            duration: Duration::from_secs(150),
            warmup: Duration::from_secs(60),
        };
        let slot = Slot {
            latency: Some(histogram(20)),
            sent: 600,
            deliveries: 1_200,
            rss_kib: vec![100, 300, 200],
            fds: vec![50, 52],
        };
        let first = plan.row(0, &slot);
        assert!(!first.after_warmup);
        assert_eq!((first.sent_per_s, first.deliveries_per_s), (10.0, 20.0));
        assert_eq!((first.rss_kib, first.rss_max_kib), (Some(200), Some(300)));
        assert_eq!((first.fds, first.fds_max), (Some(50), Some(52)));
        assert!(
            (first.latency.p99_ms - 20.0).abs() < 0.5,
            "{:?}",
            first.latency
        );
        assert!(plan.row(1, &slot).after_warmup);
        // The last window is 30 s long: its rates are per its own seconds.
        let last = plan.row(2, &slot);
        assert_eq!((last.seconds, last.sent_per_s), (30.0, 20.0));
        assert_eq!(plan.row(2, &Slot::default()).rss_kib, None);
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
    }

    #[test]
    fn memory_and_files_are_flat_within_ten_percent_of_the_first_window() {
        let flat = resource_flat(&[Some(100_000), Some(108_000), Some(109_999), Some(95_000)]);
        assert_eq!(flat.ok, Some(true));
        assert_eq!(flat.baseline, Some(100_000.0));
        assert_eq!(flat.worst, Some(109_999.0));
        assert!((flat.limit.unwrap() - 110_000.0).abs() < 1e-6);
        // One window past the limit fails, wherever it is.
        let grown = resource_flat(&[Some(100), Some(111), Some(100)]);
        assert_eq!((grown.ok, grown.worst), (Some(false), Some(111.0)));
        // Windows without a sample are skipped; fewer than two with one is not judged.
        assert_eq!(
            resource_flat(&[None, Some(100), None, Some(105)]).ok,
            Some(true)
        );
        assert_eq!(resource_flat(&[Some(100)]).ok, None);
        assert_eq!(resource_flat(&[None, None]).ok, None);
        assert_eq!(resource_flat(&[]).ok, None);
    }

    #[test]
    fn the_p99_is_flat_when_the_last_third_stays_within_twice_the_first() {
        let windows = |p99s: &[u64]| p99s.iter().map(|&p| histogram(p)).collect::<Vec<_>>();
        let judge = |hs: &[Histogram<u64>]| p99_flat(&hs.iter().map(Some).collect::<Vec<_>>());
        // First third 20 ms, last third 38 ms: within 2×.
        let ok = judge(&windows(&[20, 20, 25, 30, 35, 38]));
        assert_eq!(ok.ok, Some(true), "{ok:?}");
        assert!((ok.baseline.unwrap() - 20.0).abs() < 0.5);
        assert!((ok.limit.unwrap() - 40.0).abs() < 1.0);
        // A trend: 20 ms to 60 ms.
        assert_eq!(judge(&windows(&[20, 20, 30, 40, 60, 60])).ok, Some(false));
        // One stall in the middle does not decide.
        assert_eq!(judge(&windows(&[20, 20, 500, 20, 20, 20])).ok, Some(true));
        // At a few milliseconds, 10 ms of slack: 3 → 12 ms is flat, 3 → 14 is not.
        assert_eq!(judge(&windows(&[3, 12])).ok, Some(true));
        assert_eq!(judge(&windows(&[3, 14])).ok, Some(false));
        // Too little to judge: one window, or windows that timed nothing.
        assert_eq!(judge(&windows(&[20])).ok, None);
        assert_eq!(
            p99_flat(&[None, Some(&latency_histogram()), Some(&histogram(5))]).ok,
            None
        );
    }
}
