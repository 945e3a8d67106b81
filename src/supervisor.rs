//! Keeps the background tasks honest: the persister is started again, with backoff, when it
//! ends or panics before shutdown; the router cannot be (its tables are every socket's
//! routes), so its end stops the whole process with an error instead of leaving an instance
//! that accepts sockets and delivers nothing. `/healthz` reports either while it lasts.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::health::Pipeline;

/// The `/healthz` problem source of a task that died.
const TASK: &str = "tasks";

/// Longest pause between two starts of a persister that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A run this long counts as healthy: the next failure starts the backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs a task (the persister) until `shutdown`, starting it again whenever it stops early,
/// with backoff; `name` says which in the log and in `/healthz`. The task is made anew by
/// `start` for each run.
pub fn restarting<F, Fut>(
    name: &'static str,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
    mut start: F,
) -> JoinHandle<()>
where
    F: FnMut(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = tokio::time::Instant::now();
            let outcome = tokio::spawn(start(shutdown.clone())).await;
            if shutdown.is_cancelled() {
                return;
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = Duration::from_secs(1);
            }
            let why = ended(outcome);
            tracing::error!(
                task = name,
                why,
                ?backoff,
                "a task stopped; starting it again"
            );
            pipeline.report(TASK, Some(format!("the {name} {why}; restarting it")));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            pipeline.report(TASK, None);
        }
    })
}

/// Watches the router: if it ends before `shutdown`, the process shuts down and the returned
/// task yields why (the process then exits with an error).
pub fn router(
    router: JoinHandle<()>,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
) -> JoinHandle<Option<String>> {
    tokio::spawn(async move {
        let outcome = router.await;
        if shutdown.is_cancelled() {
            return None;
        }
        let why = format!("the router {}", ended(outcome));
        tracing::error!(
            why,
            "stopping: no socket of this instance would get another frame"
        );
        pipeline.report(TASK, Some(why.clone()));
        shutdown.cancel();
        Some(why)
    })
}

/// What a panic said (`panic!("…")` carries a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// How a task ended, in words.
fn ended(outcome: Result<(), JoinError>) -> String {
    match outcome {
        Ok(()) => "ended".into(),
        Err(error) if error.is_panic() => {
            format!("panicked ({})", panic_message(&*error.into_panic()))
        }
        Err(error) => format!("was cancelled ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_router_that_ends_early_stops_the_process_and_says_why() {
        let pipeline = Arc::new(Pipeline::default());
        let shutdown = CancellationToken::new();
        let watched = router(
            tokio::spawn(async { panic!("lost its tables") }),
            pipeline.clone(),
            shutdown.clone(),
        );
        let why = watched.await.unwrap().expect("a reason");
        assert!(why.contains("panicked (lost its tables)"), "{why}");
        assert!(shutdown.is_cancelled(), "the process shuts down");
        assert_eq!(pipeline.problems(), [why]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ends_early_is_started_again_and_healthz_hears_of_it() {
        let pipeline = Arc::new(Pipeline::default());
        let shutdown = CancellationToken::new();
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        let supervised = restarting(
            "persister",
            pipeline.clone(),
            shutdown.clone(),
            move |shutdown: CancellationToken| {
                let runs = counted.clone();
                async move {
                    if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        panic!("lost its connection");
                    }
                    shutdown.cancelled().await
                }
            },
        );
        while runs.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(pipeline.problems().is_empty(), "cleared once it runs again");
        shutdown.cancel();
        supervised.await.unwrap();
    }

    #[tokio::test]
    async fn a_router_that_ends_at_shutdown_is_no_problem() {
        let pipeline = Arc::new(Pipeline::default());
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let watched = router(tokio::spawn(async {}), pipeline.clone(), shutdown);
        assert_eq!(watched.await.unwrap(), None);
        assert!(pipeline.problems().is_empty());
    }
}
