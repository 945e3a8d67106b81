//! `idle`: C authenticated sockets held open and silent. Reports how many one jetchat holds,
//! how fast they connect, and jetchat's memory per socket (VmRSS before and after, from
//! `/proc/<pid>/status`). Sockets come from several loopback source addresses (127.0.0.2,
//! 127.0.0.3, …): each has its own ephemeral ports, so C is not capped at ~28,000.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Instant,
};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use rlimit::Resource;
use serde_json::json;
use tokio::task::JoinSet;

use super::{per_second, seconds};
use crate::{
    client,
    progress::{Monitor, note},
    stats::{Counters, Report, latency_histogram},
    target::{Target, TargetArgs},
};

/// Sockets per loopback source address when `--source-addrs` is not given (the ephemeral
/// range holds ~28,000 ports per address).
const SOCKETS_PER_SOURCE: usize = 20_000;

/// File descriptors kept spare beyond one per socket.
const SPARE_FDS: u64 = 1024;

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Sockets to open, one user each.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// jetchat's process id; its VmRSS is read before and after the sockets open.
    #[arg(long)]
    pid: Option<u32>,
    /// Loopback source addresses to spread the sockets over (127.0.0.2 and up); default one
    /// per 20,000 sockets; 0 lets the kernel choose.
    #[arg(long)]
    source_addrs: Option<usize>,
    /// Seconds to hold every socket open once all are connected.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds to let jetchat settle before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// WebSocket handshakes in flight while connecting.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
}

pub async fn run(args: IdleArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Target::resolve(&args.target)?;
    let hold = seconds("duration", args.duration)?;
    let settle = seconds("settle", args.settle)?;
    let sources = match (target.addr.ip(), args.source_addrs) {
        (IpAddr::V6(_), _) | (_, Some(0)) => 0,
        (_, Some(n)) => n.min(250),
        (_, None) => args.connections.div_ceil(SOCKETS_PER_SOURCE).max(1),
    };
    let nofile = raise_nofile(args.connections as u64 + SPARE_FDS);
    if nofile < args.connections as u64 + 64 {
        note(format!(
            "warning: this process may open only {nofile} files; connections beyond will fail"
        ));
    }
    let run = client::run_id();
    let mut report = Report::new(
        "idle",
        &run,
        json!({
            "connections": args.connections, "pid": args.pid, "source_addrs": sources,
            "hold_s": args.duration, "first_user": target.first_user,
        }),
    );
    if let Some(pid) = args.pid
        && let Some(limit) = open_files_limit(pid)
        && limit < args.connections as u64 + 64
    {
        note(format!(
            "warning: jetchat (pid {pid}) may open only {limit} files; raise its `ulimit -n`"
        ));
    }
    let rss_before = args.pid.and_then(vm_rss_kib);

    let target = Arc::new(target);
    let counters = Arc::new(Counters::default());
    let monitor = Monitor::start(
        "idle",
        args.connections as u64,
        "sockets",
        counters.clone(),
        |c| c.accepted.get(),
    );
    let started = Instant::now();
    let mut holders = JoinSet::new();
    let mut connect_latency: Histogram<u64> = latency_histogram();
    let mut failures = 0u64;
    let mut first_failure = None;
    let mut attempts = futures_util::stream::iter(0..args.connections)
        .map(|n| {
            let target = target.clone();
            let source = (sources > 0)
                .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % sources) as u8)));
            async move {
                let began = Instant::now();
                let socket = client::connect(&target, target.user(n), source).await;
                (socket, began.elapsed())
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1));
    while let Some((socket, took)) = attempts.next().await {
        match socket {
            Ok(mut ws) => {
                connect_latency.saturating_record(took.as_micros() as u64);
                // `accepted` counts open sockets here, `closed` those the server ended.
                counters.accepted.inc();
                let counters = counters.clone();
                holders.spawn(async move {
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_close() {
                            break;
                        }
                    }
                    counters.closed.inc();
                });
            }
            Err(error) => {
                failures += 1;
                first_failure.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    let connecting = started.elapsed();
    monitor.finish();
    let connected = counters.accepted.get();
    note(format!(
        "{connected} sockets open ({failures} failed) in {:.1} s; holding",
        connecting.as_secs_f64()
    ));
    tokio::time::sleep(settle).await;
    let rss_after = args.pid.and_then(vm_rss_kib);
    let fds = args.pid.and_then(open_fds);
    tokio::time::sleep(hold.saturating_sub(settle)).await;
    let still_open = connected - counters.closed.get();
    holders.abort_all();
    while holders.join_next().await.is_some() {}
    tokio::time::sleep(settle).await;
    let rss_after_close = args.pid.and_then(vm_rss_kib);

    report.figure("connected", connected);
    report.figure("failed", failures);
    report.figure("first_failure", first_failure);
    report.figure("connects_per_s", per_second(connected, connecting));
    report.figure("still_open_after_hold", still_open);
    report.figure("jetchat_rss_before_kib", rss_before);
    report.figure("jetchat_rss_after_kib", rss_after);
    report.figure("jetchat_rss_after_close_kib", rss_after_close);
    report.figure("jetchat_open_fds", fds);
    let per_socket = match (rss_before, rss_after) {
        (Some(before), Some(after)) if connected > 0 => {
            Some(after.saturating_sub(before) as f64 * 1024.0 / connected as f64)
        }
        _ => None,
    };
    report.figure("jetchat_rss_per_connection_bytes", per_socket);
    report.figure("loadgen_nofile_limit", nofile);
    report.latency("connect", Some(&connect_latency));
    Ok(report)
}

/// Raises this process's open-file limit to at least `want` (the hard limit too, when
/// allowed); returns the soft limit in force.
pub fn raise_nofile(want: u64) -> u64 {
    let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) else {
        return 0;
    };
    if soft < want {
        let hard = hard.max(want);
        if rlimit::setrlimit(Resource::NOFILE, want, hard).is_err() {
            let _ = rlimit::increase_nofile_limit(want);
        }
    }
    rlimit::getrlimit(Resource::NOFILE).map_or(soft, |(soft, _)| soft)
}

/// The resident set of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The soft "Max open files" of a process.
fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// How many files a process has open.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tjetchat\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_our_own_memory_and_limits() {
        let pid = std::process::id();
        assert!(vm_rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(open_files_limit(pid).is_some());
        assert!(open_fds(pid).is_some_and(|n| n > 0));
    }
}
