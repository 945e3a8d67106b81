//! `soak`: a long run of a steady mix at a rate well within what the machine keeps up with
//! (issue #23): messages in private chats and in groups, typing, users coming and going
//! (presence), edits and reactions, and a share of clients dropping their socket and resuming
//! with `?since=`. Every window (60 s by default) it reports the messages sent and delivered per
//! second, the p50/p99 send → `new_message`, and jetchat's RSS and open files (sampled from
//! `/proc/<pid>` every few seconds); at the end, the verdicts: RSS and open files flat after
//! the warm-up, the p99 flat, and nothing lost (the database check, and reconnect's accounting
//! of every delivery to every member). The clients are `reconnect`'s, the extras `rate`'s.

mod windows;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use self::windows::{
    MAX_GROWTH, MAX_P99_FACTOR, P99_SLACK_MS, Verdict, WindowPlan, WindowRow, Windows, p99_flat,
    resource_flat, window_count,
};
use super::{
    idle::{open_fds, vm_rss_kib},
    live::{churn_chats, churn_user},
    rate::partition,
    reconnect::{Extras, Plan, Shared, account, connect_clients, members_of, spawn_clients},
    seconds,
};
use crate::{
    client::{self, DeliveryHook, micros_at},
    integrity::CheckArgs,
    progress::{Monitor, note},
    rest::{self, NewChat},
    stats::{Count, Counters, LatencySummary, Report, Table, merge},
    target::{Target, TargetArgs},
};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Seconds of load, the warm-up included.
    #[arg(long, default_value_t = 1200.0)]
    duration: f64,
    /// Seconds at the start whose windows are reported but not judged: the verdicts compare
    /// the windows that start at or after it.
    #[arg(long, default_value_t = 120.0)]
    warmup: f64,
    /// Seconds per window of the report.
    #[arg(long, default_value_t = 60.0)]
    window: f64,
    /// Seconds between two samples of jetchat's RSS and open files.
    #[arg(long, default_value_t = 5.0)]
    sample_every: f64,
    /// Messages per second over all clients (a client that is away skips its sends). The
    /// issue asks for half the rate the machine keeps up with: scripts/bench.sh passes half of
    /// the same run's `rate_steps` result (the highest rate, in groups of 10, whose p99 send →
    /// `new_message` stayed under 25 ms); the default is half of what that measured on the
    /// 2-core benchmark machine (1,000 msg/s).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Clients, one user and one socket each.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Share of the clients (0–1) in private chats (pairs); the others are in groups.
    #[arg(long, default_value_t = 0.5)]
    private_share: f64,
    /// Members per group chat.
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Share of the clients (0–1) that keep dropping their socket (no close frame) and
    /// resuming with `?since=<cursor>`.
    #[arg(long, default_value_t = 0.1)]
    flaky: f64,
    /// Mean seconds a flaky client stays connected (uniform over ½–1½ times it).
    #[arg(long, default_value_t = 10.0)]
    online: f64,
    /// Mean seconds a flaky client stays away (uniform over ½–1½ times it).
    #[arg(long, default_value_t = 1.0)]
    offline: f64,
    /// `typing` refreshes per second per client, in its chat.
    #[arg(long, default_value_t = 0.5)]
    typing_per_sec: f64,
    /// Edits of the client's newest acked message per second per client.
    #[arg(long, default_value_t = 0.1)]
    edits_per_sec: f64,
    /// Reactions per second per client, each to the newest message another member sent it.
    #[arg(long, default_value_t = 0.1)]
    reactions_per_sec: f64,
    /// Extra users, each in a private chat with one of the clients, whose socket comes and
    /// goes for the whole run (presence churn).
    #[arg(long, default_value_t = 50)]
    churn: usize,
    /// Seconds a churning user stays online.
    #[arg(long, default_value_t = 2.0)]
    churn_online: f64,
    /// Seconds a churning user stays away (past the server's `PRESENCE_GRACE`, 5 s).
    #[arg(long, default_value_t = 7.0)]
    churn_offline: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    /// jetchat's process id: its VmRSS and open files are sampled (`/proc/<pid>/status`,
    /// `/proc/<pid>/fd`). Without it the memory and files verdicts fail as not judged.
    #[arg(long)]
    pid: Option<u32>,
    #[command(flatten)]
    check: CheckArgs,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Arc::new(Target::resolve(&args.target)?);
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    let width = seconds("window", args.window)?;
    let sample_every = seconds("sample-every", args.sample_every)?;
    let online = seconds("online", args.online)?;
    let offline = seconds("offline", args.offline)?;
    let churn_online = seconds("churn-online", args.churn_online)?;
    let churn_offline = seconds("churn-offline", args.churn_offline)?;
    anyhow::ensure!(
        !duration.is_zero(),
        "--duration must be more than 0 seconds"
    );
    anyhow::ensure!(!width.is_zero(), "--window must be more than 0 seconds");
    anyhow::ensure!(
        !sample_every.is_zero(),
        "--sample-every must be more than 0 seconds"
    );
    anyhow::ensure!(!online.is_zero(), "--online must be more than 0 seconds");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be positive"
    );
    for (flag, share) in [
        ("--private-share", args.private_share),
        ("--flaky", args.flaky),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&share),
            "{flag} is a share between 0 and 1"
        );
    }
    for (flag, value) in [
        ("--typing-per-sec", args.typing_per_sec),
        ("--edits-per-sec", args.edits_per_sec),
        ("--reactions-per-sec", args.reactions_per_sec),
    ] {
        anyhow::ensure!(
            value.is_finite() && value >= 0.0,
            "{flag} must be zero or positive"
        );
    }
    let Some(database_url) = args.check.database_url.clone() else {
        anyhow::bail!("soak needs --database-url: what each member is owed comes from it");
    };
    let chats = plan_chats(args.connections, args.private_share, args.group_size)?;
    let private_clients = chats
        .iter()
        .filter(|c| !c.is_group)
        .map(|c| c.members.len())
        .sum::<usize>();

    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "soak",
        &run,
        json!({
            "duration_s": args.duration, "warmup_s": args.warmup, "window_s": args.window,
            "sample_every_s": args.sample_every, "rate": args.rate,
            "connections": args.connections, "private_clients": private_clients,
            "group_size": args.group_size, "flaky": args.flaky, "online_s": args.online,
            "offline_s": args.offline, "typing_per_sec": args.typing_per_sec,
            "edits_per_sec": args.edits_per_sec, "reactions_per_sec": args.reactions_per_sec,
            "churn": args.churn, "churn_online_s": args.churn_online,
            "churn_offline_s": args.churn_offline, "content_bytes": args.content_bytes,
            "pid": args.pid, "first_user": target.first_user,
        }),
    );

    note(format!(
        "creating {} chats ({private_clients} clients in private chats, the rest in groups of {})",
        chats.len(),
        args.group_size
    ));
    let chat_ids = rest::create_chats(
        &target,
        chats
            .iter()
            .map(|chat| NewChat {
                creator: target.user(chat.members[0]),
                others: chat.members[1..].iter().map(|&m| target.user(m)).collect(),
                is_group: chat.is_group,
            })
            .collect(),
        &run,
    )
    .await?;
    let (members, chat_members) = members_of(
        &target,
        chats
            .iter()
            .map(|c| c.members.as_slice())
            .zip(chat_ids.iter().copied()),
        args.flaky,
    );
    let flaky_count = members.iter().filter(|m| m.flaky).count();
    let churners = churn_chats(&target, args.churn, args.connections, &run).await?;

    note(format!(
        "connecting {} sockets ({flaky_count} flaky)",
        args.connections
    ));
    let instances: Arc<[Arc<Target>]> = vec![target.clone()].into();
    let started = connect_clients(&instances, &members).await?;
    let counters = Arc::new(Counters::default());
    counters
        .presence_from_user
        .add(target.user(args.connections) as u64);
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Plan {
        start,
        end: start + duration,
        period: Duration::from_secs_f64(args.connections as f64 / args.rate),
        online,
        offline,
        extras: Extras {
            typing_per_sec: args.typing_per_sec,
            edits_per_sec: args.edits_per_sec,
            reactions_per_sec: args.reactions_per_sec,
        },
    };
    let window_plan = WindowPlan {
        width,
        duration,
        warmup,
    };
    let windows = Arc::new(Windows::new(
        micros_at(start),
        width,
        window_count(duration, width),
    ));
    let monitor = Monitor::start(
        "soak",
        duration.as_millis() as u64,
        "ms",
        counters.clone(),
        move |_| Instant::now().saturating_duration_since(start).as_millis() as u64,
    );
    // Timed at the steady clients only: a flaky client's catch-up is late by design.
    let clients = spawn_clients(
        started,
        &members,
        &Shared {
            instances,
            run: run.clone(),
            content: client::content(args.content_bytes).into(),
            counters: counters.clone(),
            plan,
        },
        |member| {
            (!member.flaky).then(|| {
                let windows = windows.clone();
                let hook: DeliveryHook =
                    Arc::new(move |_, sent, received| windows.record_latency(sent, received));
                hook
            })
        },
    );
    let churn_changes = Arc::new(Count::default());
    let churn_stop = tokio_util::sync::CancellationToken::new();
    let mut churn = JoinSet::new();
    for (i, &user) in churners.iter().enumerate() {
        churn.spawn(churn_user(
            target.clone(),
            user,
            Duration::from_secs_f64(2.0 * i as f64 / churners.len() as f64),
            (churn_online, churn_offline),
            churn_changes.clone(),
            churn_stop.clone(),
        ));
    }
    let sampler = tokio::spawn(sample(
        windows.clone(),
        window_plan,
        counters.clone(),
        args.pid,
        sample_every,
        plan.end,
    ));
    tokio::time::sleep_until(plan.end.into()).await;
    monitor.finish();
    let _ = sampler.await;
    churn_stop.cancel();
    let mut churn_failures = 0u64;
    let mut still_online = Vec::new();
    while let Some(done) = churn.join_next().await {
        match done {
            Ok(Ok(socket)) => still_online.extend(socket),
            _ => churn_failures += 1,
        }
    }
    drop(still_online);

    report.figure("clients", args.connections as u64);
    report.figure("private_clients", private_clients as u64);
    report.figure("group_clients", (args.connections - private_clients) as u64);
    report.figure("flaky_clients", flaky_count as u64);
    let accounted = account(
        &args.check,
        &database_url,
        &run,
        &members,
        &chat_members,
        clients,
        &mut report,
    )
    .await?;

    // The windows and the verdicts.
    let slots = windows.take();
    let rows: Vec<WindowRow> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| window_plan.row(i, slot))
        .collect();
    let after: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].after_warmup).collect();
    let rss = resource_flat(&after.iter().map(|&i| rows[i].rss_kib).collect::<Vec<_>>());
    let fds = resource_flat(&after.iter().map(|&i| rows[i].fds).collect::<Vec<_>>());
    let p99 = p99_flat(
        &after
            .iter()
            .map(|&i| slots[i].latency.as_ref())
            .collect::<Vec<_>>(),
    );
    let mut steady_latency = None;
    for &i in &after {
        merge(&mut steady_latency, &slots[i].latency);
    }
    let integrity_ok = report.integrity.as_ref().is_some_and(|i| i.ok);
    let nothing_lost = integrity_ok && accounted.delivery_ok;
    let judged = [
        (
            "jetchat's RSS (KiB)",
            &rss,
            "within 10 % of the first window after the warm-up",
            true,
        ),
        (
            "jetchat's open files",
            &fds,
            "within 10 % of the first window after the warm-up",
            true,
        ),
        (
            "p99 send → new_message (ms)",
            &p99,
            "the last third of the windows after the warm-up within 2× (or +10 ms) of the first third",
            false,
        ),
    ];
    for (what, verdict, rule, sampled) in judged {
        match verdict.ok {
            Some(true) => {}
            Some(false) => report.failures.push(format!(
                "{what} not flat: {} against {} (the rule: {rule}; the limit {})",
                show(verdict.worst),
                show(verdict.baseline),
                show(verdict.limit)
            )),
            None => report.failures.push(format!(
                "{what} not judged: it needs two windows after the warm-up with {}",
                match (sampled, args.pid) {
                    (true, None) => "samples (and --pid)",
                    (true, Some(_)) => "samples",
                    (false, _) => "timed messages",
                }
            )),
        }
    }
    let soak_ok = nothing_lost && [&rss, &fds, &p99].iter().all(|v| v.ok == Some(true));

    report.figure("rate", args.rate);
    report.figure("sent", counters.sent.get());
    report.figure("accepted", counters.accepted.get());
    report.figure("stored", accounted.stored);
    report.figure(
        "messages_per_s",
        super::per_second(accounted.stored, duration),
    );
    report.figure(
        "deliveries_per_s",
        super::per_second(counters.delivered.get(), duration),
    );
    report.figure("typing_sent", counters.typing_sent.get());
    report.figure("typing_received", counters.typing_received.get());
    report.figure("edits_sent", counters.edits_sent.get());
    report.figure("edits_received", counters.edits_received.get());
    report.figure("reactions_sent", counters.reactions_sent.get());
    report.figure("reactions_received", counters.reactions_received.get());
    report.figure("presence_changes", churn_changes.get());
    report.figure("presence_received", counters.presence_received.get());
    report.figure("churn_failures", churn_failures);
    report.figure("windows_after_warmup", after.len() as u64);
    verdict_figures(
        &mut report,
        [
            "rss_first_kib",
            "rss_worst_kib",
            "rss_limit_kib",
            "rss_flat",
        ],
        &rss,
    );
    verdict_figures(
        &mut report,
        ["fds_first", "fds_worst", "fds_limit", "fds_flat"],
        &fds,
    );
    verdict_figures(
        &mut report,
        ["p99_early_ms", "p99_late_ms", "p99_limit_ms", "p99_flat"],
        &p99,
    );
    report.figure("nothing_lost", nothing_lost);
    report.figure(
        "verdict_rule",
        format!(
            "RSS and open files: the median sample of each window after the warm-up, the \
             highest against the first such window's, at most {:.0} % more; p99: the last third \
             of those windows against the first third, at most {MAX_P99_FACTOR}× or \
             {P99_SLACK_MS} ms more; nothing lost: every accepted message stored once and every \
             delivery accounted (reconnect's ledger)",
            MAX_GROWTH * 100.0
        ),
    );
    report.figure("soak_ok", soak_ok);
    accounted.figures(&mut report);
    report.latency("send_to_new_message", steady_latency.as_ref());
    report.tables.push(Table {
        title: "windows",
        columns: vec![
            "window",
            "start_s",
            "after_warmup",
            "sent_per_s",
            "deliveries_per_s",
            "p50_ms",
            "p99_ms",
            "timed",
            "rss_kib",
            "rss_max_kib",
            "fds",
            "fds_max",
        ],
        rows: rows.iter().map(row_cells).collect(),
    });
    Ok(report)
}

/// A chat of the run: its clients (by index) and whether it is a group.
struct ChatPlan {
    members: Vec<usize>,
    is_group: bool,
}

/// The first `private_share` of the clients (an even number) in private chats, the others in
/// groups of `group_size` (a remainder too small for a chat joins the last group).
fn plan_chats(
    connections: usize,
    private_share: f64,
    group_size: usize,
) -> anyhow::Result<Vec<ChatPlan>> {
    let private = ((connections as f64 * private_share) as usize) & !1;
    let grouped = connections - private;
    anyhow::ensure!(group_size >= 2, "--group-size must be at least 2");
    anyhow::ensure!(
        grouped == 0 || grouped >= group_size,
        "the {grouped} clients outside private chats are fewer than --group-size {group_size}"
    );
    anyhow::ensure!(connections >= 2, "--connections must be at least 2");
    let mut chats: Vec<ChatPlan> = partition(private, 2)
        .into_iter()
        .filter(|m| m.len() >= 2)
        .map(|members| ChatPlan {
            members,
            is_group: false,
        })
        .collect();
    if grouped > 0 {
        chats.extend(
            partition(grouped, group_size)
                .into_iter()
                .map(|g| ChatPlan {
                    members: g.into_iter().map(|m| m + private).collect(),
                    is_group: true,
                }),
        );
    }
    Ok(chats)
}

/// Every `every` until `end`: jetchat's RSS and open files, and the messages sent and first
/// received since the last tick, into the window of the tick; a line per window as it ends.
async fn sample(
    windows: Arc<Windows>,
    plan: WindowPlan,
    counters: Arc<Counters>,
    pid: Option<u32>,
    every: Duration,
    end: Instant,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (counters.sent.get(), counters.delivered.get());
    let mut current = None;
    loop {
        tick.tick().await;
        let now = Instant::now().min(end);
        let at = micros_at(now);
        let counts = (counters.sent.get(), counters.delivered.get());
        let (rss, fds) = (pid.and_then(vm_rss_kib), pid.and_then(open_fds));
        // A tick just past the end still counts, in the last window.
        let at = windows.index(at).map_or(at.saturating_sub(1), |_| at);
        windows.with_slot(at, |slot| {
            slot.sent += counts.0 - last.0;
            slot.deliveries += counts.1 - last.1;
            slot.rss_kib.extend(rss);
            slot.fds.extend(fds);
        });
        last = counts;
        let index = windows.index(at);
        if let Some(done) = current.filter(|&c| Some(c) != index)
            && let Some(row) = windows.row(done, &plan)
        {
            note(describe(&row));
        }
        if now >= end {
            if let Some(row) = index.and_then(|i| windows.row(i, &plan)) {
                note(describe(&row));
            }
            return;
        }
        current = index;
    }
}

/// A window as a line of progress.
fn describe(row: &WindowRow) -> String {
    format!(
        "window {} ({:.0}–{:.0} s{}): {:.0} sent/s, {:.0} delivered/s, p50 {:.1} ms, p99 {:.1} ms, RSS {} KiB, {} fds",
        row.index,
        row.start_s,
        row.start_s + row.seconds,
        if row.after_warmup { "" } else { ", warm-up" },
        row.sent_per_s,
        row.deliveries_per_s,
        row.latency.p50_ms,
        row.latency.p99_ms,
        row.rss_kib.map_or("?".into(), |v| v.to_string()),
        row.fds.map_or("?".into(), |v| v.to_string()),
    )
}

fn row_cells(row: &WindowRow) -> Vec<Value> {
    let LatencySummary {
        count,
        p50_ms,
        p99_ms,
        ..
    } = row.latency;
    vec![
        json!(row.index),
        json!(row.start_s),
        json!(row.after_warmup),
        json!(row.sent_per_s),
        json!(row.deliveries_per_s),
        json!(p50_ms),
        json!(p99_ms),
        json!(count),
        json!(row.rss_kib),
        json!(row.rss_max_kib),
        json!(row.fds),
        json!(row.fds_max),
    ]
}

/// A verdict as four figures: the first value, the worst, the limit and whether it held.
fn verdict_figures(
    report: &mut Report,
    [first, worst, limit, flat]: [&'static str; 4],
    verdict: &Verdict,
) {
    report.figure(first, verdict.baseline);
    report.figure(worst, verdict.worst);
    report.figure(limit, verdict.limit);
    report.figure(flat, verdict.ok);
}

fn show(value: Option<f64>) -> String {
    value.map_or("?".into(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    use super::plan_chats;

    #[test]
    fn half_the_clients_in_private_chats_the_rest_in_groups() {
        let chats = plan_chats(30, 0.5, 10).unwrap();
        let private: Vec<_> = chats.iter().filter(|c| !c.is_group).collect();
        let groups: Vec<_> = chats.iter().filter(|c| c.is_group).collect();
        // 15 rounded down to 14: 7 pairs; 16 in groups of 10 (a remainder of 6 is a chat).
        assert_eq!(private.len(), 7);
        assert_eq!(private[6].members, vec![12, 13]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].members, (14..24).collect::<Vec<_>>());
        assert_eq!(groups[1].members, (24..30).collect::<Vec<_>>());
        assert!(plan_chats(30, 1.0, 10).unwrap().iter().all(|c| !c.is_group));
        assert!(plan_chats(30, 0.0, 10).unwrap().iter().all(|c| c.is_group));
        assert!(
            plan_chats(12, 0.5, 10).is_err(),
            "6 clients cannot make a group of 10"
        );
    }
}
