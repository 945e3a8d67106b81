//! `guard`: the cost guard (BENCHMARKS.md, "The cost guard"). Runs the fixed workloads of a
//! budget file against a running jetchat, reads the CPU time jetchat and its nats-server spend
//! on each from `/proc` (user + system; this machine has no hardware counters for
//! instruction counts), per message, delivery or connect, and fails when a figure exceeds its
//! budget by more than its margin. Besides the two times, jetchat's over nats-server's in the
//! same run: a busy neighbour slows both processes alike, so that ratio is the steadiest figure
//! on a shared machine (BENCHMARKS.md has the measured spread).
//!
//! Each workload runs once as a warm-up (not counted), then `runs` times; each run starts and
//! ends with both processes quiet, and each figure is the minimum of its runs: noise on a
//! shared machine mostly adds CPU time. A workload with a figure over budget runs again, up to
//! `extra_runs` times, until the minimum is within: a real cost stays in every run, a busy
//! neighbour seldom does.

mod budget;
mod cpu;

use std::{fmt::Write as _, path::PathBuf, process::Command};

use anyhow::{Context as _, bail};
use serde_json::Value;

use self::budget::{Budget, Workload};

/// Users of one run: each run takes a fresh block of ids, so runs share no user or chat.
const USERS_PER_RUN: i64 = 100_000;

#[derive(clap::Args, Debug)]
pub struct GuardArgs {
    /// The budget file: the workloads and what each figure may cost.
    #[arg(long, default_value = "bench/budget.toml")]
    budget: PathBuf,
    /// jetchat's base URL (loopback).
    #[arg(long, env = "JETCHAT_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// jetchat's database, for every workload's check that nothing accepted was lost or
    /// doubled.
    #[arg(long)]
    database_url: Option<String>,
    /// jetchat's process id.
    #[arg(long)]
    jetchat_pid: u32,
    /// Its nats-server's process id.
    #[arg(long)]
    nats_pid: u32,
    /// Measured runs per workload (default: the budget file's `runs`).
    #[arg(long)]
    runs: Option<u32>,
    /// Only the workloads of these names (repeatable; default: all).
    #[arg(long)]
    only: Vec<String>,
    /// The first user id of the first run.
    #[arg(long, default_value_t = 20_000_000)]
    first_user: i64,
}

/// CPU per unit of one run, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cost {
    units: f64,
    jetchat_us: f64,
    nats_server_us: f64,
}

impl Cost {
    /// The figure of this name.
    fn figure(&self, name: &str) -> f64 {
        match name {
            "jetchat" => self.jetchat_us,
            "nats_server" => self.nats_server_us,
            "jetchat_over_nats" => self.jetchat_us / self.nats_server_us,
            other => unreachable!("no figure {other}"),
        }
    }
}

/// One figure against its budget.
#[derive(Debug, PartialEq)]
struct Verdict {
    workload: String,
    process: &'static str,
    per: String,
    /// The minimum over the runs, and every run's figure.
    measured: f64,
    runs: Vec<f64>,
    budget: f64,
    margin: f64,
    over_budget: bool,
}

/// Runs every workload of the budget and judges its figures; an error names the figures over
/// budget.
pub async fn run(args: GuardArgs) -> anyhow::Result<()> {
    let budget = Budget::load(&args.budget)?;
    if let Some(unknown) = args
        .only
        .iter()
        .find(|name| !budget.workloads.iter().any(|w| &w.name == *name))
    {
        bail!(
            "--only {unknown}: no such workload in {}",
            args.budget.display()
        );
    }
    let runs = args.runs.unwrap_or(budget.runs);
    anyhow::ensure!(runs >= 1, "--runs must be at least 1");
    let tick_us = 1e6 / cpu::ticks_per_second() as f64;
    let pids = [args.jetchat_pid, args.nats_pid];
    for pid in pids {
        cpu::ticks(pid)?;
    }
    eprintln!(
        "guard: jetchat pid {}, nats-server pid {}; CPU time from /proc (a tick is {tick_us:.0} µs); \
         one warm-up and {runs} runs per workload (up to {} more while a figure is over), the \
         minimum counts",
        args.jetchat_pid, args.nats_pid, budget.extra_runs,
    );

    let mut next_user = args.first_user;
    let mut verdicts = Vec::new();
    for workload in &budget.workloads {
        if !args.only.is_empty() && !args.only.contains(&workload.name) {
            continue;
        }
        let mut costs = Vec::new();
        let mut run = 0;
        let judged = loop {
            let cost = measure(workload, &args, next_user, tick_us).await?;
            next_user += USERS_PER_RUN;
            eprintln!(
                "guard: {} {}: jetchat {:.1} µs, nats-server {:.1} µs per {} ({} counted)",
                workload.name,
                match run {
                    0 => "warm-up".to_owned(),
                    run if run <= runs => format!("run {run}/{runs}"),
                    run => format!("extra run {}/{}", run - runs, budget.extra_runs),
                },
                cost.jetchat_us,
                cost.nats_server_us,
                workload.per,
                cost.units
            );
            if run > 0 {
                costs.push(cost);
            }
            run += 1;
            if run <= runs {
                continue;
            }
            let judged = judge(workload, &costs, budget.margin);
            if !judged.iter().any(|v| v.over_budget) || run > runs + budget.extra_runs {
                break judged;
            }
        };
        verdicts.extend(judged);
    }

    print!("{}", table(&verdicts));
    let over: Vec<_> = verdicts.iter().filter(|v| v.over_budget).collect();
    if !over.is_empty() {
        bail!(
            "{} of {} figures over budget by more than their margin: {}. If the cost is meant, \
             raise its budget in {} and say why in BENCHMARKS.md (\"The cost guard\") in the \
             same commit.",
            over.len(),
            verdicts.len(),
            over.iter()
                .map(|v| format!("{} {}", v.workload, v.process))
                .collect::<Vec<_>>()
                .join(", "),
            args.budget.display()
        );
    }
    Ok(())
}

/// One run of `workload`: the CPU both processes spent on it, from quiet to quiet, per unit.
async fn measure(
    workload: &Workload,
    args: &GuardArgs,
    first_user: i64,
    tick_us: f64,
) -> anyhow::Result<Cost> {
    let pids = [args.jetchat_pid, args.nats_pid];
    if !cpu::wait_quiet(&pids).await? {
        eprintln!("guard: warning: jetchat and nats-server did not go quiet before the run");
    }
    let before = [cpu::ticks(pids[0])?, cpu::ticks(pids[1])?];
    let mut command = Command::new(std::env::current_exe().context("this program's path")?);
    command
        .args(&workload.args)
        .args(["--url", &args.url, "--first-user", &first_user.to_string()])
        .arg("--json");
    if let Some(database_url) = &args.database_url {
        command.args(["--database-url", database_url]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("starting the workload")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        bail!(
            "workload {} failed ({}):\n{}",
            workload.name,
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    if !cpu::wait_quiet(&pids).await? {
        eprintln!("guard: warning: jetchat and nats-server did not go quiet after the run");
    }
    let after = [cpu::ticks(pids[0])?, cpu::ticks(pids[1])?];
    let report: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("workload {}: its --json report", workload.name))?;
    let units = workload.count_in(&report)?;
    let per_unit = |i: usize| (after[i] - before[i]) as f64 * tick_us / units;
    Ok(Cost {
        units,
        jetchat_us: per_unit(0),
        nats_server_us: per_unit(1),
    })
}

/// Each budgeted figure of `workload`: the minimum of `costs` against its budget.
fn judge(workload: &Workload, costs: &[Cost], margin: f64) -> Vec<Verdict> {
    workload
        .figures()
        .into_iter()
        .filter_map(|(process, figure)| {
            let figure = figure?;
            let runs: Vec<f64> = costs.iter().map(|c| c.figure(process)).collect();
            let measured = runs.iter().copied().fold(f64::INFINITY, f64::min);
            let margin = figure.margin.unwrap_or(margin);
            Some(Verdict {
                workload: workload.name.clone(),
                process,
                per: workload.per.clone(),
                measured,
                runs,
                budget: figure.value,
                margin,
                over_budget: measured > figure.value * (1.0 + margin),
            })
        })
        .collect()
}

/// The verdicts as a table.
fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "\ncost guard: CPU (user + system) per unit in µs, or jetchat's over nats-server's; the \
         minimum of the runs against the budget; a figure fails above budget + margin\n\n",
    );
    let _ = writeln!(
        out,
        "{:<10} {:<17} {:<8} {:>9} {:>9} {:>7} {:>8}  {:<7} runs",
        "workload", "figure", "per", "measured", "budget", "margin", "÷budget", "verdict"
    );
    for v in verdicts {
        let runs: Vec<String> = v.runs.iter().map(|x| format!("{x:.2}")).collect();
        let _ = writeln!(
            out,
            "{:<10} {:<17} {:<8} {:>9.2} {:>9.2} {:>6.0}% {:>8.2}  {:<7} {}",
            v.workload,
            v.process,
            v.per,
            v.measured,
            v.budget,
            v.margin * 100.0,
            v.measured / v.budget,
            if v.over_budget { "OVER" } else { "ok" },
            runs.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget::parse(
            r#"
            margin = 0.25
            runs = 3
            extra_runs = 2
            [[workload]]
            name = "pairs"
            args = ["pairs"]
            per = "message"
            count = ["/integrity/stored_rows"]
            jetchat = { value = 400, why = "w" }
            nats_server = { value = 100, margin = 1.0, why = "w" }
            jetchat_over_nats = { value = 3.5, why = "w" }
            [[workload]]
            name = "fanout"
            args = ["fanout"]
            per = "delivery"
            count = ["/figures/deliveries"]
            jetchat = { value = 10, why = "w" }
        "#,
        )
        .unwrap()
    }

    fn cost(jetchat_us: f64, nats_server_us: f64) -> Cost {
        Cost {
            units: 1000.0,
            jetchat_us,
            nats_server_us,
        }
    }

    #[test]
    fn each_figure_is_the_minimum_of_its_runs_and_fails_only_past_its_margin() {
        let budget = budget();
        let verdicts = judge(
            &budget.workloads[0],
            &[cost(520.0, 130.0), cost(499.0, 190.0), cost(610.0, 160.0)],
            budget.margin,
        );
        assert_eq!(verdicts.len(), 3);
        // jetchat: 499 against 400 × 1.25 = 500: within.
        assert_eq!(verdicts[0].process, "jetchat");
        assert_eq!(verdicts[0].measured, 499.0);
        assert_eq!(verdicts[0].runs, [520.0, 499.0, 610.0]);
        assert!(!verdicts[0].over_budget);
        // nats-server: the minimum is another run's than jetchat's; its own margin, 100 %.
        assert_eq!(verdicts[1].measured, 130.0);
        assert_eq!(verdicts[1].margin, 1.0);
        assert!(!verdicts[1].over_budget);
        // The ratio of each run, the smallest: 499 / 190.
        assert_eq!(verdicts[2].measured, 499.0 / 190.0);
        assert!(!verdicts[2].over_budget);

        let over = judge(
            &budget.workloads[0],
            &[cost(501.0, 201.0), cost(700.0, 250.0)],
            budget.margin,
        );
        assert!(over[0].over_budget, "501 > 500");
        assert!(over[1].over_budget, "201 > 200");
        assert!(!over[2].over_budget, "2.49 and 2.8 ≤ 4.375");
        let ratio_over = judge(&budget.workloads[0], &[cost(450.0, 100.0)], 0.25);
        assert!(ratio_over[2].over_budget, "4.5 > 4.375");
    }

    #[test]
    fn a_figure_without_a_budget_is_not_judged() {
        let budget = budget();
        let verdicts = judge(&budget.workloads[1], &[cost(9.0, 1000.0)], budget.margin);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].process, "jetchat");
        assert!(!verdicts[0].over_budget);
    }

    #[test]
    fn the_table_shows_every_run_and_marks_what_is_over() {
        let budget = budget();
        let mut verdicts = judge(
            &budget.workloads[0],
            &[cost(600.0, 80.0), cost(650.0, 85.5)],
            budget.margin,
        );
        verdicts.extend(judge(&budget.workloads[1], &[cost(8.0, 0.1)], 0.25));
        let table = table(&verdicts);
        let line = |prefix: &str| {
            table
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no line {prefix:?} in\n{table}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("pairs      jetchat "),
            "pairs jetchat message 600.00 400.00 25% 1.50 OVER 600.00 650.00"
        );
        assert_eq!(
            line("pairs      nats_server"),
            "pairs nats_server message 80.00 100.00 100% 0.80 ok 80.00 85.50"
        );
        assert_eq!(
            line("pairs      jetchat_over_nats"),
            "pairs jetchat_over_nats message 7.50 3.50 25% 2.14 OVER 7.50 7.60"
        );
        assert_eq!(
            line("fanout"),
            "fanout jetchat delivery 8.00 10.00 25% 0.80 ok 8.00"
        );
    }
}
