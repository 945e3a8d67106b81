//! Reporting: HDR latency histograms and the report every scenario ends with (a table for
//! people, JSON for machines); the live counters (in [`crate::counters`]) are re-exported here
//! for the scenarios.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use crate::counters::{Count, Counters, wait_settled};
use crate::integrity::Integrity;

/// A latency histogram in microseconds, 1 µs to 2 minutes, two significant digits (1 %
/// resolution) so that a thousand sockets can each keep their own.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 2).expect("valid histogram bounds")
}

/// Adds `from` into `into`.
pub fn merge(into: &mut Option<Histogram<u64>>, from: &Option<Histogram<u64>>) {
    if let Some(from) = from {
        into.get_or_insert_with(latency_histogram)
            .add(from)
            .expect("histograms of the same bounds add up");
    }
}

/// The percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    /// The summary of a histogram in microseconds; all zero when it is empty.
    pub fn of(histogram: Option<&Histogram<u64>>) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        match histogram.filter(|h| !h.is_empty()) {
            None => LatencySummary {
                count: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p99_9_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            },
            Some(h) => LatencySummary {
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.50)),
                p90_ms: ms(h.value_at_quantile(0.90)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p99_9_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
                mean_ms: h.mean() / 1000.0,
            },
        }
    }
}

/// Extra rows a scenario reports (e.g. one per rate step).
pub struct Table {
    pub title: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

/// What a scenario found.
pub struct Report {
    pub scenario: &'static str,
    pub run_id: String,
    pub started_at: String,
    /// The settings the figures were measured with.
    pub params: Value,
    pub figures: Vec<(&'static str, Value)>,
    pub latencies: Vec<(&'static str, LatencySummary)>,
    pub tables: Vec<Table>,
    /// The database check, when one was asked for.
    pub integrity: Option<Integrity>,
    /// Checks of the scenario's own that failed (e.g. a message a reconnecting client never
    /// got): the run fails like a failed database check.
    pub failures: Vec<String>,
}

impl Report {
    /// An empty report for `scenario`, started now.
    pub fn new(scenario: &'static str, run_id: &str, params: Value) -> Report {
        Report {
            scenario,
            run_id: run_id.to_owned(),
            started_at: chrono::Utc::now().to_rfc3339(),
            params,
            figures: Vec::new(),
            latencies: Vec::new(),
            tables: Vec::new(),
            integrity: None,
            failures: Vec::new(),
        }
    }

    pub fn figure(&mut self, name: &'static str, value: impl Into<Value>) {
        self.figures.push((name, value.into()));
    }

    pub fn latency(&mut self, name: &'static str, histogram: Option<&Histogram<u64>>) {
        self.latencies.push((name, LatencySummary::of(histogram)));
    }

    /// The machine-readable form.
    pub fn to_json(&self) -> Value {
        let figures: Map<String, Value> = self
            .figures
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let latencies: Map<String, Value> = self
            .latencies
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let tables: Map<String, Value> = self
            .tables
            .iter()
            .map(|t| {
                let rows = t
                    .rows
                    .iter()
                    .map(|row| {
                        let object: Map<String, Value> = t
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| ((*c).to_owned(), v.clone()))
                            .collect();
                        Value::Object(object)
                    })
                    .collect();
                (t.title.to_owned(), Value::Array(rows))
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "params": self.params,
            "figures": figures,
            "latency_ms": latencies,
            "tables": tables,
            "integrity": self.integrity,
            "failures": self.failures,
        })
    }

    /// The table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== {} (run {}) ==", self.scenario, self.run_id);
        let _ = writeln!(out, "params: {}", self.params);
        let width = self.figures.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (name, value) in &self.figures {
            let _ = writeln!(out, "  {name:<width$}  {}", show(value));
        }
        if !self.latencies.is_empty() {
            let rows = self
                .latencies
                .iter()
                .map(|(name, l)| {
                    vec![
                        json!(name),
                        json!(l.count),
                        json!(l.p50_ms),
                        json!(l.p90_ms),
                        json!(l.p99_ms),
                        json!(l.p99_9_ms),
                        json!(l.max_ms),
                    ]
                })
                .collect::<Vec<_>>();
            let columns = ["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"];
            grid(&mut out, &columns, &rows);
        }
        for table in &self.tables {
            let _ = writeln!(out, "{}:", table.title);
            grid(&mut out, &table.columns, &table.rows);
        }
        if let Some(integrity) = &self.integrity {
            let _ = writeln!(out, "{integrity}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "FAILED: {failure}");
        }
        out
    }

    /// Prints the report: JSON on stdout (table on stderr) or the table on stdout.
    pub fn emit(&self, json: bool) {
        if json {
            eprint!("{}", self.to_table());
            println!(
                "{}",
                serde_json::to_string_pretty(&self.to_json()).expect("JSON values serialise")
            );
        } else {
            print!("{}", self.to_table());
        }
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.abs() >= 100.0 {
                format!("{f:.0}")
            } else if f.abs() >= 10.0 {
                format!("{f:.1}")
            } else {
                format!("{f:.3}")
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn grid(out: &mut String, columns: &[&str], rows: &[Vec<Value>]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(show).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .filter_map(|r| r.get(i).map(String::len))
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, " {cell:>width$}");
        }
        text
    };
    let _ = writeln!(out, "{}", line(&mut columns.iter().copied()));
    for row in &cells {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(String::as_str)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_in_milliseconds() {
        let mut h = latency_histogram();
        for us in 1..=1000 {
            h.record(us * 10).unwrap();
        }
        let s = LatencySummary::of(Some(&h));
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 5.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 10.0).abs() < 0.1, "{s:?}");
        assert_eq!(LatencySummary::of(None).count, 0);
    }

    #[test]
    fn reports_render_both_ways() {
        let mut report = Report::new("pairs", "abcd", json!({"pairs": 1}));
        report.figure("messages_per_s", 1234.5);
        report.latency("send_to_new_message", None);
        assert_eq!(report.to_json()["figures"]["messages_per_s"], 1234.5);
        assert!(report.to_table().contains("messages_per_s"));
    }
}
