//! One cancellation token that every task watches, and the signals that trigger it.
//!
//! `jetchat serve` waits for SIGINT and SIGTERM on a thread of its own, not on the async
//! runtime: the first signal cancels the token, a second one exits at once (128 + the signal's
//! number, 130 for Ctrl-C), and a shutdown still running after its deadline exits with 1. The
//! signal thread acts before it logs, and logs through [`log_bounded`], so a log write that
//! fails or blocks (stderr piped into a `tee` that Ctrl-C killed, or one nobody reads) cannot
//! swallow a signal.

use std::{
    sync::{Once, mpsc},
    time::Duration,
};

use nix::sys::signal::{SigSet, Signal};
use tokio_util::sync::CancellationToken;

/// SIGINT and SIGTERM, blocked in every thread so that only the signal thread receives them.
pub struct Signals(SigSet);

impl Signals {
    /// Blocks SIGINT and SIGTERM in the calling thread and in the threads it starts later.
    /// Call it before the async runtime starts its threads, which inherit the mask (children
    /// do not: `std::process::Command` resets the mask before it executes a program).
    pub fn block() -> nix::Result<Signals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block()?;
        Ok(Signals(set))
    }

    /// Starts the signal thread: the first signal cancels `token`, a second exits the process
    /// at once. However the shutdown starts (a signal, or a task cancelling `token`), the
    /// process exits with status 1 if it is still running `deadline` later. Call it inside
    /// the runtime.
    pub fn watch(self, token: CancellationToken, deadline: Duration) -> std::io::Result<()> {
        let Signals(set) = self;
        let on_signal = token.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let Ok(first) = set.wait() else { return };
                on_signal.cancel();
                arm_deadline(deadline);
                log_bounded(move || {
                    tracing::info!(signal = %first, "shutting down; a second signal exits at once");
                });
                let Ok(second) = set.wait() else { return };
                log_bounded(move || {
                    tracing::error!(signal = %second, "second signal: exiting without finishing the shutdown");
                });
                std::process::exit(128 + second as i32);
            })?;
        tokio::spawn(async move {
            token.cancelled().await;
            arm_deadline(deadline);
        });
        Ok(())
    }
}

/// Exits the process with status 1 once `deadline` has passed, on a thread of its own so
/// nothing the shutdown waits for can hold it up. The first call counts; later ones do nothing.
fn arm_deadline(deadline: Duration) {
    static ARMED: Once = Once::new();
    ARMED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("shutdown-deadline".into())
            .spawn(move || {
                std::thread::sleep(deadline);
                log_bounded(move || {
                    tracing::error!(
                        ?deadline,
                        "the shutdown did not finish within SHUTDOWN_TIMEOUT; exiting"
                    );
                });
                std::process::exit(1);
            });
        if started.is_err() {
            // Without a thread there is no deadline; the second signal still works.
            log_bounded(|| tracing::error!("cannot start the shutdown deadline's thread"));
        }
    });
}

/// Runs `log` on a thread of its own and waits for it at most half a second: a write to a
/// stderr pipe that nobody reads blocks, and the signal path must not.
pub fn log_bounded(log: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || {
            log();
            let _ = done.send(());
        });
    if started.is_ok() {
        let _ = finished.recv_timeout(Duration::from_millis(500));
    }
}
