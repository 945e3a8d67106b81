//! The CPU table of the summary: jetchat's and its nats-server's CPU time per message of each
//! message scenario (scripts/bench.sh records both processes' user + system time over the
//! scenario under `cpu`), judged against the targets: jetchat spends no more per
//! message than nats-server, and nats-server no more than twice what it spends per published
//! message in `ceiling`.

use serde_json::Value;

use super::{Variant, count, number, verdict};

/// jetchat's CPU per message over nats-server's, at most.
const MAX_JETCHAT_OVER_NATS: f64 = 1.0;
/// nats-server's CPU per message over what it spends per published message in `ceiling`, at
/// most.
const MAX_NATS_OVER_CEILING: f64 = 2.0;

/// The message scenarios the table shows, in its order.
pub const SCENARIOS: [&str; 7] = [
    "pairs",
    "rate_private",
    "rate_target",
    "rate_steps",
    "fanout",
    "rate_live",
    "rate_mix",
];

/// What a scenario cost per message, in microseconds of CPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerMessage {
    pub messages: f64,
    pub jetchat_us: Option<f64>,
    pub nats_server_us: Option<f64>,
}

impl PerMessage {
    /// A scenario's CPU over its messages: those the database check found stored (every one
    /// of the run, warm-up included, as the CPU was measured over the whole run), else those
    /// accepted; the `ceiling`'s published ones.
    pub fn of(scenario: &Value) -> Option<PerMessage> {
        let get = |path: &str| scenario.pointer(path).and_then(Value::as_f64);
        let messages = get("/integrity/stored_rows")
            .or_else(|| get("/figures/accepted"))
            .or_else(|| get("/figures/published"))
            .filter(|&n| n > 0.0)?;
        let per_message = |seconds: Option<f64>| seconds.map(|s| s * 1e6 / messages);
        Some(PerMessage {
            messages,
            jetchat_us: per_message(get("/cpu/jetchat_s")),
            nats_server_us: per_message(get("/cpu/nats_server_s")),
        })
    }

    /// jetchat's CPU per message over nats-server's.
    pub fn jetchat_over_nats(&self) -> Option<f64> {
        ratio(self.jetchat_us, self.nats_server_us)
    }

    /// nats-server's CPU per message over twice its CPU per published message in `ceiling`.
    pub fn nats_over_ceiling(&self, ceiling_us: Option<f64>) -> Option<f64> {
        ratio(
            self.nats_server_us,
            ceiling_us.map(|c| c * MAX_NATS_OVER_CEILING),
        )
    }
}

fn ratio(over: Option<f64>, under: Option<f64>) -> Option<f64> {
    over.zip(under.filter(|&u| u > 0.0)).map(|(o, u)| o / u)
}

/// The table, from the `ceiling`'s row (the reference) down through every message scenario of
/// every variant.
pub fn table(ceiling: Option<&Value>, rows: &[(String, &Value, Variant)]) -> String {
    let ceiling = ceiling.and_then(PerMessage::of);
    let ceiling_us = ceiling.and_then(|c| c.nats_server_us);
    let mut out = String::from(
        "CPU time per message (user + system, from `/proc`, over the whole scenario: setup \
         and warm-up included), against the targets: jetchat's ≤ nats-server's, and \
         nats-server's ≤ 2 × what it spends per published message in `ceiling`.\n\n\
         | scenario | messages | jetchat µs/msg | nats-server µs/msg | jetchat ÷ nats-server \
         (target ≤ 1) | nats-server ÷ (2 × `ceiling`'s) (target ≤ 1) |\n\
         |---|---|---|---|---|---|\n",
    );
    out += &format!(
        "| `ceiling` | {} published | — | {} | — | — (the reference) |\n",
        number(ceiling.map(|c| c.messages)),
        microseconds(ceiling_us)
    );
    for (label, scenario, variant) in rows {
        let Some(cost) = PerMessage::of(scenario) else {
            out += &format!("| {label} | ? | ? | ? | ? | ? |\n");
            continue;
        };
        // A fan-out message goes to every member's socket and once through nats-server: its
        // jetchat cost is per delivery, not comparable with nats-server's per message.
        let jetchat_over_nats =
            if scenario.pointer("/scenario").and_then(Value::as_str) == Some("fanout") {
                format!(
                    "— (each message to {} sockets)",
                    number(fanout_recipients(scenario))
                )
            } else {
                judged(
                    cost.jetchat_over_nats(),
                    MAX_JETCHAT_OVER_NATS,
                    variant.judged,
                )
            };
        out += &format!(
            "| {label} | {} | {} | {} | {jetchat_over_nats} | {} |\n",
            count(cost.messages),
            microseconds(cost.jetchat_us),
            microseconds(cost.nats_server_us),
            judged(cost.nats_over_ceiling(ceiling_us), 1.0, variant.judged),
        );
    }
    out
}

/// The members of a fan-out group but the sender.
fn fanout_recipients(scenario: &Value) -> Option<f64> {
    scenario
        .pointer("/params/members")
        .and_then(Value::as_f64)
        .map(|m| m - 1.0)
}

/// A ratio and whether it is within `limit`; only shown for a variant that is not judged.
fn judged(value: Option<f64>, limit: f64, judge: bool) -> String {
    match value {
        None => "?".into(),
        Some(v) if judge => format!("{v:.2}: {}", verdict(Some(v <= limit))),
        Some(v) => format!("{v:.2}"),
    }
}

fn microseconds(value: Option<f64>) -> String {
    match value {
        None => "?".into(),
        Some(v) if v >= 10.0 => count(v),
        Some(v) => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cpu_per_message_counts_the_stored_messages() {
        let scenario = json!({
            "figures": {"accepted": 90_000},
            "integrity": {"stored_rows": 100_000},
            "cpu": {"jetchat_s": 9.0, "nats_server_s": 4.5}
        });
        let cost = PerMessage::of(&scenario).unwrap();
        assert_eq!(cost.messages, 100_000.0);
        assert_eq!(cost.jetchat_us, Some(90.0));
        assert_eq!(cost.nats_server_us, Some(45.0));
        assert_eq!(cost.jetchat_over_nats(), Some(2.0));
        assert_eq!(cost.nats_over_ceiling(Some(15.0)), Some(1.5));
        assert_eq!(cost.nats_over_ceiling(None), None);
    }

    #[test]
    fn the_ceiling_counts_what_it_published_and_nothing_is_no_figure() {
        let ceiling = json!({"figures": {"published": 300_000}, "cpu": {"nats_server_s": 3.0,
                             "jetchat_s": null}});
        let cost = PerMessage::of(&ceiling).unwrap();
        assert_eq!(cost.nats_server_us, Some(10.0));
        assert_eq!(cost.jetchat_us, None);
        assert_eq!(cost.jetchat_over_nats(), None);
        assert!(PerMessage::of(&json!({"failed": true})).is_none());
        assert!(PerMessage::of(&json!({"figures": {"accepted": 0}})).is_none());
    }

    #[test]
    fn the_table_judges_the_defaults_and_shows_the_rest() {
        let ceiling = json!({"figures": {"published": 100_000}, "cpu": {"nats_server_s": 2.0}});
        let pairs = json!({"scenario": "pairs", "integrity": {"stored_rows": 10_000},
                           "cpu": {"jetchat_s": 0.5, "nats_server_s": 0.6}});
        let fanout = json!({"scenario": "fanout", "params": {"members": 1000},
                            "integrity": {"stored_rows": 500},
                            "cpu": {"jetchat_s": 2.0, "nats_server_s": 0.01}});
        let defaults = Variant {
            judged: true,
            label: None,
        };
        let other = Variant {
            judged: false,
            label: Some("x".into()),
        };
        let table = table(
            Some(&ceiling),
            &[
                ("`pairs`".into(), &pairs, defaults.clone()),
                ("`pairs` · x".into(), &pairs, other),
                ("`fanout`".into(), &fanout, defaults),
            ],
        );
        assert!(table.contains("| `ceiling` | 100,000 published | — | 20 | — |"));
        // 50 µs against 60 µs; 60 µs against 2 × 20 µs.
        assert!(table.contains("| `pairs` | 10,000 | 50 | 60 | 0.83: yes | 1.50: no |"));
        assert!(table.contains("| `pairs` · x | 10,000 | 50 | 60 | 0.83 | 1.50 |"));
        assert!(table.contains(
            "| `fanout` | 500 | 4,000 | 20 | — (each message to 999 sockets) | 0.50: yes |"
        ));
    }
}
