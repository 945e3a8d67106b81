//! `jetchat-load`: drives a running jetchat over real WebSockets with real tokens, speaking the
//! same frames as any client, and reports throughput and latency (HDR histograms).
//!
//! Scenarios live in [`scenario`]; every one prints a summary table (or `--json`) and the
//! message scenarios can check the database afterwards ([`integrity`]): a fast number must
//! never hide a lost or doubled message.

mod client;
mod counters;
mod guard;
mod integrity;
mod msg_id;
mod plot;
mod progress;
mod rest;
mod scenario;
mod stats;
mod summary;
mod target;

use clap::{Parser, Subcommand};

/// Exit code when the run finished but the database does not hold every accepted message
/// exactly once.
const EXIT_INTEGRITY: i32 = 2;

#[derive(Parser)]
#[command(name = "jetchat-load", version, about)]
struct Cli {
    /// Print the result as JSON on stdout (the table goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Closed loop: P sender/receiver pairs in private chats; send, await the receiver's
    /// new_message, the receiver acknowledges (read).
    Pairs(scenario::pairs::PairsArgs),
    /// Open loop at a fixed total rate over C connections in chats of G members; latency to
    /// message_accepted, message_ack and new_message; optionally steps the rate up.
    Rate(scenario::rate::RateArgs),
    /// One group of M members, all connected; one sender posts N messages.
    Fanout(scenario::fanout::FanoutArgs),
    /// C idle connections held open; jetchat's memory per connection.
    Idle(scenario::idle::IdleArgs),
    /// The raw JetStream rate of this machine, no jetchat in the path.
    Ceiling(scenario::ceiling::CeilingArgs),
    /// Back-pressure: one group, a baseline, then the same load while K members stop reading;
    /// the others' latency, jetchat's memory, and the slow sockets closed with 4008.
    Slow(scenario::slow::SlowArgs),
    /// Clients in group chats under steady load, a share of them dropping their socket and
    /// coming back with ?since=<cursor>: catch-up time, frames replayed, and that every
    /// stored message reached every member once (beyond the documented overlap).
    Reconnect(scenario::reconnect::ReconnectArgs),
    /// Many users in many chats, a share of them online (issue #14): the router with tens of
    /// thousands of subscribed chats under steady traffic, handshakes and membership changes
    /// meanwhile, and jetchat's memory per chat subscription.
    ManyChats(scenario::many_chats::ManyChatsArgs),
    /// Senders spread over one or more instances send into groups as fast as a window of
    /// unacknowledged sends allows; listeners on every instance check that every message
    /// comes once and in its sender's order (one writer per chat).
    Order(scenario::order::OrderArgs),
    /// A long steady mix at half the rate the machine keeps up with (issue #23): messages in
    /// private chats and groups, typing, presence churn, edits, reactions and clients resuming
    /// with ?since=; per window the rates, p50/p99 and jetchat's RSS and open files; fails
    /// unless memory, files and the p99 stay flat after the warm-up and nothing is lost.
    Soak(scenario::soak::SoakArgs),
    /// Draws the latency percentiles of a results JSON (scripts/bench.sh's or one
    /// scenario's --json) as a PNG.
    Plot(plot::PlotArgs),
    /// Renders a results JSON of scripts/bench.sh as Markdown, each figure beside its target;
    /// with --update, into the suite section of BENCHMARKS.md.
    Summary(summary::SummaryArgs),
    /// The cost guard: runs the fixed workloads of a budget file against a running jetchat
    /// and fails when jetchat's or its nats-server's CPU per message (delivery, connect)
    /// exceeds its budget by more than the file's margin.
    Guard(guard::GuardArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let json = cli.json;
    let chosen = match cli.scenario {
        Scenario::Plot(args) => return plot::run(&args),
        Scenario::Summary(args) => return summary::run(&args),
        chosen => chosen,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let chosen = match chosen {
        Scenario::Guard(args) => return runtime.block_on(guard::run(args)),
        chosen => chosen,
    };
    let report = runtime.block_on(async {
        match chosen {
            Scenario::Pairs(args) => scenario::pairs::run(args).await,
            Scenario::Rate(args) => scenario::rate::run(args).await,
            Scenario::Fanout(args) => scenario::fanout::run(args).await,
            Scenario::Idle(args) => scenario::idle::run(args).await,
            Scenario::Ceiling(args) => scenario::ceiling::run(args).await,
            Scenario::Slow(args) => scenario::slow::run(args).await,
            Scenario::Reconnect(args) => scenario::reconnect::run(args).await,
            Scenario::ManyChats(args) => scenario::many_chats::run(args).await,
            Scenario::Order(args) => scenario::order::run(args).await,
            Scenario::Soak(args) => scenario::soak::run(args).await,
            Scenario::Plot(_) | Scenario::Summary(_) | Scenario::Guard(_) => {
                unreachable!("done above")
            }
        }
    })?;
    // Open sockets and tasks are not waited for: the report is all that is left to do.
    runtime.shutdown_background();
    report.emit(json);
    if report.integrity.as_ref().is_some_and(|i| !i.ok) {
        eprintln!(
            "jetchat-load: INTEGRITY CHECK FAILED: accepted messages are missing or doubled in the database"
        );
        std::process::exit(EXIT_INTEGRITY);
    }
    if !report.failures.is_empty() {
        for failure in &report.failures {
            eprintln!("jetchat-load: CHECK FAILED: {failure}");
        }
        std::process::exit(EXIT_INTEGRITY);
    }
    Ok(())
}
