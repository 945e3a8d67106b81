//! The budget file of the cost guard (`bench/budget.toml`): the fixed workloads, what each is
//! counted per, and the CPU each figure may cost with the reason it costs that much.

use std::{collections::HashSet, path::Path};

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;
use serde_json::Value;

/// Arguments the guard sets on every workload itself.
const SET_BY_THE_GUARD: [&str; 4] = ["--url", "--first-user", "--database-url", "--json"];

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// A figure fails when it exceeds its budget by more than this share (0.25: 25 %), unless
    /// it has a margin of its own.
    pub margin: f64,
    /// Measured runs of each workload, after one warm-up run; the minimum counts.
    pub runs: u32,
    /// Further runs, at most, of a workload whose figure is over budget after `runs`: it fails
    /// only if the minimum of all its runs stays over.
    pub extra_runs: u32,
    #[serde(rename = "workload")]
    pub workloads: Vec<Workload>,
}

/// One fixed workload: a `jetchat-load` scenario with fixed counts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    /// The scenario and its arguments, as on `jetchat-load`'s command line.
    pub args: Vec<String>,
    /// What the figures are per ("message", "delivery", "connect").
    pub per: String,
    /// JSON pointers into the scenario's `--json` report whose values, added up, are the count
    /// the CPU is divided by.
    pub count: Vec<String>,
    /// jetchat's CPU per unit, µs.
    pub jetchat: Option<Figure>,
    /// Its nats-server's CPU per unit, µs.
    pub nats_server: Option<Figure>,
    /// jetchat's CPU over nats-server's in the same run: a busy machine slows both alike, so
    /// this ratio moves far less than either time.
    pub jetchat_over_nats: Option<Figure>,
}

/// What a figure may be, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// The budget: µs of CPU (user + system) per unit, or the ratio.
    pub value: f64,
    /// This figure's margin instead of the file's.
    pub margin: Option<f64>,
    /// One line: where the figure comes from and why it is what it is.
    pub why: String,
}

impl Budget {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> anyhow::Result<Budget> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the budget {}", path.display()))?;
        Budget::parse(&text).with_context(|| format!("the budget {}", path.display()))
    }

    /// Parses and checks a budget.
    pub fn parse(text: &str) -> anyhow::Result<Budget> {
        let budget: Budget = toml::from_str(text)?;
        check_margin("margin", budget.margin)?;
        ensure!(budget.runs >= 1, "runs must be at least 1");

        ensure!(!budget.workloads.is_empty(), "no [[workload]]");
        let mut names = HashSet::new();
        for workload in &budget.workloads {
            let name = &workload.name;
            ensure!(
                names.insert(name.as_str()),
                "workload {name:?} appears twice"
            );
            ensure!(
                !workload.args.is_empty(),
                "workload {name:?}: args is empty"
            );
            if let Some(arg) = workload
                .args
                .iter()
                .find(|arg| SET_BY_THE_GUARD.contains(&arg.split('=').next().unwrap_or(arg)))
            {
                bail!("workload {name:?}: {arg} is set by the guard, not the budget");
            }
            ensure!(
                !workload.count.is_empty(),
                "workload {name:?}: count is empty"
            );
            if let Some(pointer) = workload.count.iter().find(|p| !p.starts_with('/')) {
                bail!("workload {name:?}: count {pointer:?} is not a JSON pointer (/figures/…)");
            }
            ensure!(
                workload
                    .figures()
                    .iter()
                    .any(|(_, figure)| figure.is_some()),
                "workload {name:?} has no figure (jetchat, nats_server or jetchat_over_nats)"
            );
            for (process, figure) in workload.figures() {
                let Some(figure) = figure else { continue };
                ensure!(
                    figure.value.is_finite() && figure.value > 0.0,
                    "workload {name:?}: {process}.value must be a positive number"
                );
                if let Some(margin) = figure.margin {
                    check_margin(&format!("workload {name:?}: {process}.margin"), margin)?;
                }
                ensure!(
                    !figure.why.trim().is_empty(),
                    "workload {name:?}: {process}.why is empty: say why it costs that much"
                );
            }
        }
        Ok(budget)
    }
}

impl Workload {
    /// The figures, by name.
    pub fn figures(&self) -> [(&'static str, Option<&Figure>); 3] {
        [
            ("jetchat", self.jetchat.as_ref()),
            ("nats_server", self.nats_server.as_ref()),
            ("jetchat_over_nats", self.jetchat_over_nats.as_ref()),
        ]
    }

    /// What a run counted: the values at `count` in its report, added up; an error when one
    /// is missing or nothing was counted.
    pub fn count_in(&self, report: &Value) -> anyhow::Result<f64> {
        let mut total = 0.0;
        for pointer in &self.count {
            let Some(value) = report.pointer(pointer).and_then(Value::as_f64) else {
                bail!(
                    "workload {:?}: its report has no number at {pointer}",
                    self.name
                );
            };
            total += value;
        }
        ensure!(
            total > 0.0,
            "workload {:?}: the run counted no {}",
            self.name,
            self.per
        );
        Ok(total)
    }
}

/// A margin is a share between 0 and 3 (300 %).
fn check_margin(name: &str, margin: f64) -> anyhow::Result<()> {
    ensure!(
        (0.0..=3.0).contains(&margin),
        "{name} must be between 0 and 3 (a share: 0.25 is 25 %), not {margin}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const GOOD: &str = r#"
        margin = 0.2
        runs = 3
        extra_runs = 4

        [[workload]]
        name = "pairs"
        args = ["pairs", "--pairs", "5", "--messages", "3000"]
        per = "message"
        count = ["/integrity/stored_rows"]
        jetchat = { value = 400, margin = 1.0, why = "a transaction per message" }
        nats_server = { value = 150.5, why = "two stored per message" }
        jetchat_over_nats = { value = 2.3, why = "the persister's statements" }

        [[workload]]
        name = "reconnect"
        args = ["reconnect"]
        per = "connect"
        count = ["/figures/clients", "/figures/reconnects"]
        jetchat = { value = 900, why = "the catch-up queries" }
    "#;

    #[test]
    fn the_committed_budget_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("budget.toml");
        let budget = Budget::load(&path).unwrap();
        assert!(
            budget.workloads.len() >= 4,
            "pairs, rate, fan-out, reconnect"
        );
    }

    #[test]
    fn a_budget_reads_with_its_workloads_in_order() {
        let budget = Budget::parse(GOOD).unwrap();
        assert_eq!(budget.margin, 0.2);
        assert_eq!(budget.runs, 3);
        assert_eq!(budget.extra_runs, 4);
        let names: Vec<_> = budget.workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["pairs", "reconnect"]);
        let pairs = &budget.workloads[0];
        assert_eq!(pairs.nats_server.as_ref().unwrap().value, 150.5);
        assert_eq!(pairs.jetchat.as_ref().unwrap().margin, Some(1.0));
        assert_eq!(pairs.jetchat_over_nats.as_ref().unwrap().value, 2.3);
        assert!(budget.workloads[1].nats_server.is_none());
    }

    #[test]
    fn a_bad_budget_is_refused_with_the_reason() {
        let refused = |from: &str, to: &str| {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "the test's replacement must apply");
            format!("{:#}", Budget::parse(&text).unwrap_err())
        };
        assert!(refused("margin = 0.2", "margin = 20").contains("margin must be between"));
        assert!(refused("margin = 1.0", "margin = -1").contains("jetchat.margin must be"));
        assert!(refused("runs = 3", "runs = 0").contains("runs must be at least 1"));
        assert!(refused("\"a transaction per message\"", "\" \"").contains("jetchat.why is empty"));
        assert!(refused("value = 400", "value = -1").contains("jetchat.value must be a positive"));
        assert!(
            refused(
                "\"5\", \"--messages\"",
                "\"5\", \"--url=x\", \"--messages\""
            )
            .contains("--url=x is set by the guard")
        );
        assert!(
            refused("\"/integrity/stored_rows\"", "\"stored_rows\"")
                .contains("is not a JSON pointer")
        );
        assert!(refused("name = \"reconnect\"", "name = \"pairs\"").contains("appears twice"));
        assert!(refused("per = \"message\"", "per = \"message\"\nspeed = 1").contains("speed"));
        assert!(
            refused(
                "jetchat = { value = 900, why = \"the catch-up queries\" }",
                ""
            )
            .contains("has no figure")
        );
    }

    #[test]
    fn the_count_adds_up_its_pointers_and_refuses_nothing_or_a_missing_one() {
        let budget = Budget::parse(GOOD).unwrap();
        let reconnect = &budget.workloads[1];
        let report = json!({"figures": {"clients": 50, "reconnects": 450}});
        assert_eq!(reconnect.count_in(&report).unwrap(), 500.0);
        let missing = json!({"figures": {"clients": 50}});
        assert!(
            reconnect
                .count_in(&missing)
                .unwrap_err()
                .to_string()
                .contains("no number at /figures/reconnects")
        );
        let nothing = json!({"figures": {"clients": 0, "reconnects": 0}});
        assert!(
            reconnect
                .count_in(&nothing)
                .unwrap_err()
                .to_string()
                .contains("counted no connect")
        );
    }
}
