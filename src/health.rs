//! What `/healthz` knows of the pipeline beyond "the database and NATS answer": whether the
//! background tasks run, whether the persister makes progress, and any lasting problem a
//! task found (a `CHAT_IN` behind the database).

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Shared by the persister, the supervisor and `/healthz`; one per process.
#[derive(Debug)]
pub struct Pipeline {
    started: Instant,
    /// Milliseconds after `started` at which the persister last showed progress.
    progress_at: AtomicU64,
    problems: Mutex<Vec<(&'static str, String)>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            started: Instant::now(),
            progress_at: AtomicU64::new(0),
            problems: Mutex::new(Vec::new()),
        }
    }
}

impl Pipeline {
    /// The persister committed a batch, or found nothing to do.
    pub fn progressed(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.progress_at.store(now, Ordering::Relaxed);
    }

    /// How long since the persister last showed progress.
    pub fn since_progress(&self) -> Duration {
        let at = Duration::from_millis(self.progress_at.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(at)
    }

    /// Records (`Some`) or clears (`None`) the problem `source` reports.
    pub fn report(&self, source: &'static str, problem: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        problems.retain(|(s, _)| *s != source);
        if let Some(problem) = problem {
            problems.push((source, problem));
        }
    }

    /// Every problem now reported, as sentences.
    pub fn problems(&self) -> Vec<String> {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        problems.iter().map(|(_, p)| p.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_kept_per_source_until_cleared() {
        let pipeline = Pipeline::default();
        assert!(pipeline.problems().is_empty());
        pipeline.report("persister", Some("stopped".into()));
        pipeline.report("router", Some("gone".into()));
        pipeline.report("persister", Some("restarting".into()));
        assert_eq!(pipeline.problems(), ["gone", "restarting"]);
        pipeline.report("persister", None);
        assert_eq!(pipeline.problems(), ["gone"]);
    }

    #[test]
    fn progress_resets_the_clock() {
        let pipeline = Pipeline::default();
        std::thread::sleep(Duration::from_millis(20));
        let before = pipeline.since_progress();
        pipeline.progressed();
        assert!(pipeline.since_progress() < before);
    }
}
