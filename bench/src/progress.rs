//! The progress bar shown while a scenario runs (on stderr, hidden when it is not a terminal).

use std::{sync::Arc, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::counters::Counters;

/// How often the bar and its rates refresh.
const REFRESH: Duration = Duration::from_millis(500);

/// A bar that follows a scenario's counters until it is finished.
pub struct Monitor {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Monitor {
    /// A bar of `len` units (`unit` names them) whose position `position` reads.
    pub fn start(
        label: &str,
        len: u64,
        unit: &str,
        counters: Arc<Counters>,
        position: impl Fn(&Counters) -> u64 + Send + 'static,
    ) -> Monitor {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"
            ))
            .expect("a valid template"),
        );
        bar.set_prefix(label.to_owned());
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut last = [0u64; 3];
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                let now = [
                    counters.sent.get(),
                    counters.accepted.get(),
                    counters.delivered.get(),
                ];
                let rate = |i: usize| (now[i] - last[i]) as f64 / REFRESH.as_secs_f64();
                shown.set_position(position(&counters).min(len));
                shown.set_message(format!(
                    "sent {}/s accepted {}/s delivered {}/s errors {}",
                    human(rate(0)),
                    human(rate(1)),
                    human(rate(2)),
                    counters.errors.get()
                ));
                last = now;
            }
        });
        Monitor { bar, task }
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// Prints a line above the bar (or plainly to stderr).
pub fn note(text: impl AsRef<str>) {
    eprintln!("jetchat-load: {}", text.as_ref());
}

fn human(rate: f64) -> String {
    if rate >= 1000.0 {
        format!("{:.1}k", rate / 1000.0)
    } else {
        format!("{rate:.0}")
    }
}
