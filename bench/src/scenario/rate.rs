//! `rate`: open loop at a fixed total rate over C connections in chats of G members. Every
//! message is timed from its *intended* send time (no coordinated omission) to
//! `message_accepted`, `message_ack` and each recipient's `new_message`. With
//! `--find-max-under-p99-ms` the rate is stepped up until the p99 to `new_message` passes the
//! bound.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{
    Budget, DRAIN, Merged,
    live::{EMOJI, Periodic, churn_chats, churn_user},
    new_log, per_second, seconds,
};
use crate::{
    client::{
        self, ConnLog, MsgKey, ReaderCtx, Warmups, WsSink, edit_frame, micros_at, msg_id,
        react_frame, send_frame, typing_frame,
    },
    integrity::{CheckArgs, Expected},
    progress::{Monitor, note},
    rest::{self, NewChat},
    stats::{Counters, LatencySummary, Report, Table, wait_settled},
    target::{Target, TargetArgs},
};

/// A step passes only if the senders kept at least this share of the target rate.
const MIN_RATE_SHARE: f64 = 0.95;

#[derive(clap::Args, Debug)]
pub struct RateArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Messages per second over all connections (the first step's rate with
    /// --find-max-under-p99-ms).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Connections, one user each.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Members per group chat; every connection sends into its own group.
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Private chats (pairs of connections) instead of groups.
    #[arg(long)]
    private: bool,
    /// Seconds of load (per step).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop a step after this many messages in total (whichever comes first).
    #[arg(long)]
    messages: Option<u64>,
    /// Seconds at the start of each step whose messages are counted but not timed.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Step the rate up (× --step-factor) while the p99 from send to new_message stays under
    /// this many milliseconds; report the highest such rate.
    #[arg(long)]
    find_max_under_p99_ms: Option<f64>,
    /// Rate multiplier between steps.
    #[arg(long, default_value_t = 1.5)]
    step_factor: f64,
    /// Most steps.
    #[arg(long, default_value_t = 8)]
    max_steps: u16,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    /// `typing` refreshes per second per connection in its chat, mixed into the messages (a
    /// typing user refreshes every few seconds; the server allows 2 a second per socket).
    #[arg(long, default_value_t = 0.0)]
    typing_per_sec: f64,
    /// Extra users, each in a private chat with one of the connections, whose socket comes
    /// and goes for the whole run: every arrival and every departure (once the server's
    /// `PRESENCE_GRACE` has passed) is a `presence` frame to that connection.
    #[arg(long, default_value_t = 0)]
    churn: usize,
    /// Seconds a churning user stays online.
    #[arg(long, default_value_t = 2.0)]
    churn_online: f64,
    /// Seconds a churning user stays away: longer than the server's `PRESENCE_GRACE` (5 s by
    /// default), so that each departure is told.
    #[arg(long, default_value_t = 7.0)]
    churn_offline: f64,
    /// `edit_message`s per second per connection, mixed into the messages: each replaces the
    /// text of the connection's newest acked message.
    #[arg(long, default_value_t = 0.0)]
    edits_per_sec: f64,
    /// `react`s per second per connection: each puts one emoji on the newest message another
    /// member sent it (skipped when nothing new arrived since the last reaction).
    #[arg(long, default_value_t = 0.0)]
    reactions_per_sec: f64,
    #[command(flatten)]
    check: CheckArgs,
}

/// A connection's place in the run.
struct Sender {
    conn: u32,
    chat_id: i64,
    /// Members of its chat besides itself: the `new_message`s each send should produce.
    recipients: u64,
}

/// One step's schedule.
#[derive(Clone, Copy)]
struct Step {
    stage: u16,
    rate: f64,
    start: Instant,
    end: Instant,
}

/// One step's outcome.
struct StepResult {
    rate: f64,
    sent: u64,
    accepted: u64,
    deliveries: u64,
    /// From the step's start to its last `message_ack` / `new_message`: the end-to-end rates
    /// count what was persisted and delivered, however late.
    ack_span: Duration,
    delivery_span: Duration,
    settled: bool,
    accepted_latency: LatencySummary,
    ack_latency: LatencySummary,
    delivery_latency: LatencySummary,
    merged: Merged,
}

impl StepResult {
    /// Whether the step kept its rate, drained and held the bound.
    fn passes(&self, duration: Duration, bound_ms: f64) -> bool {
        let planned = self.rate * duration.as_secs_f64();
        self.settled
            && self.sent as f64 >= MIN_RATE_SHARE * planned
            && self.delivery_latency.count > 0
            && self.delivery_latency.p99_ms <= bound_ms
    }

    fn row(&self, duration: Duration, bound_ms: Option<f64>) -> Vec<Value> {
        vec![
            json!(self.rate),
            json!(per_second(self.sent, duration)),
            json!(per_second(self.accepted, duration)),
            json!(per_second(self.merged.acked_count, self.ack_span)),
            json!(per_second(self.deliveries, self.delivery_span)),
            json!(self.accepted_latency.p99_ms),
            json!(self.ack_latency.p99_ms),
            json!(self.delivery_latency.p50_ms),
            json!(self.delivery_latency.p99_ms),
            json!(self.delivery_latency.max_ms),
            json!(self.settled),
            json!(bound_ms.map(|b| self.passes(duration, b))),
        ]
    }
}

pub async fn run(args: RateArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Arc::new(Target::resolve(&args.target)?);
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    let group_size = if args.private { 2 } else { args.group_size };
    anyhow::ensure!(
        group_size >= 2 && args.connections >= group_size,
        "--connections must be at least --group-size, and --group-size at least 2"
    );
    anyhow::ensure!(
        !args.private || args.connections.is_multiple_of(2),
        "--private needs an even number of --connections"
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be positive"
    );
    anyhow::ensure!(
        args.step_factor > 1.0,
        "--step-factor must be greater than 1"
    );
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
    let churn_online = seconds("churn-online", args.churn_online)?;
    let churn_offline = seconds("churn-offline", args.churn_offline)?;
    let steps = if args.find_max_under_p99_ms.is_some() {
        args.max_steps.max(1)
    } else {
        1
    };
    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "rate",
        &run,
        json!({
            "rate": args.rate, "connections": args.connections, "group_size": group_size,
            "private": args.private, "duration_s": args.duration, "messages": args.messages,
            "warmup_s": args.warmup, "find_max_under_p99_ms": args.find_max_under_p99_ms,
            "step_factor": args.step_factor, "content_bytes": args.content_bytes,
            "typing_per_sec": args.typing_per_sec, "churn": args.churn,
            "churn_online_s": args.churn_online, "churn_offline_s": args.churn_offline,
            "edits_per_sec": args.edits_per_sec, "reactions_per_sec": args.reactions_per_sec,
            "first_user": target.first_user,
        }),
    );

    let groups = partition(args.connections, group_size);
    note(format!(
        "creating {} {} chats",
        groups.len(),
        if args.private { "private" } else { "group" }
    ));
    let chats = rest::create_chats(
        &target,
        groups
            .iter()
            .map(|members| NewChat {
                creator: target.user(members[0]),
                others: members[1..].iter().map(|&m| target.user(m)).collect(),
                is_group: !args.private,
            })
            .collect(),
        &run,
    )
    .await?;
    let mut senders: Vec<Sender> = Vec::with_capacity(args.connections);
    for (members, chat_id) in groups.iter().zip(&chats) {
        for &m in members {
            senders.push(Sender {
                conn: m as u32,
                chat_id: *chat_id,
                recipients: (members.len() - 1) as u64,
            });
        }
    }
    senders.sort_by_key(|s| s.conn);
    let churners = churn_chats(&target, args.churn, args.connections, &run).await?;
    note(format!("connecting {} sockets", args.connections));
    let users: Vec<i64> = (0..args.connections).map(|n| target.user(n)).collect();
    let sockets = client::connect_all(&target, &users, 64).await?;

    let counters = Arc::new(Counters::default());
    // The churn's presence frames only, not those of the connections' own arrivals.
    counters
        .presence_from_user
        .add(target.user(args.connections) as u64);
    let warmups = Warmups::new(usize::from(steps));
    let mut readers = JoinSet::new();
    let mut logs = Vec::new();
    let mut sinks = Vec::new();
    for (sender, socket) in senders.iter().zip(sockets) {
        let (sink, stream) = socket.split();
        let log = new_log();
        logs.push((sender.conn, log.clone()));
        readers.spawn(client::read_frames(
            stream,
            ReaderCtx {
                run: run.clone(),
                conn: sender.conn,
                counters: counters.clone(),
                warmups: warmups.clone(),
                log,
                on_delivery: None,
                on_settled: None,
            },
        ));
        sinks.push(sink);
    }

    let content: Arc<str> = client::content(args.content_bytes).into();
    let senders: Arc<Vec<Sender>> = Arc::new(senders);
    let churn_changes = Arc::new(crate::stats::Count::default());
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
    let typing_before = (counters.typing_sent.get(), counters.typing_received.get());
    let mix_before = mix_counts(&counters);
    let mut results: Vec<StepResult> = Vec::new();
    let mut rate = args.rate;
    for stage in 0..steps {
        let start = Instant::now() + Duration::from_millis(50);
        let step = Step {
            stage,
            rate,
            start,
            end: start + duration,
        };
        warmups.set(stage, micros_at(start + warmup));
        let sent_before = counters.sent.get();
        let accepted_before = counters.accepted.get();
        let monitor = Monitor::start(
            &format!("rate {rate:.0}/s"),
            duration.as_millis() as u64,
            "ms",
            counters.clone(),
            move |_| Instant::now().saturating_duration_since(start).as_millis() as u64,
        );
        let budget = Budget::new(args.messages);
        let mut writers = JoinSet::new();
        for (i, sink) in sinks.drain(..).enumerate() {
            writers.spawn(write_step(
                sink,
                step,
                Writer {
                    run: run.clone(),
                    index: i,
                    senders: senders.clone(),
                    content: content.clone(),
                    counters: counters.clone(),
                    budget: budget.clone(),
                    log: logs[i].1.clone(),
                    typing_per_sec: args.typing_per_sec,
                    edits_per_sec: args.edits_per_sec,
                    reactions_per_sec: args.reactions_per_sec,
                },
            ));
        }
        let mut returned = Vec::with_capacity(senders.len());
        while let Some(done) = writers.join_next().await {
            returned.push(done?);
        }
        // Back in connection order: the next step's writer `i` must get socket `i` again.
        returned.sort_by_key(|(i, _)| *i);
        sinks.extend(returned.into_iter().map(|(_, sink)| sink));
        monitor.finish();
        let settled = wait_settled(&counters, DRAIN).await;
        let merged = Merged::of(&logs, Some(stage));
        let since_start = |us: u64| Duration::from_micros(us.saturating_sub(micros_at(start)));
        let result = StepResult {
            rate,
            sent: counters.sent.get() - sent_before,
            accepted: counters.accepted.get() - accepted_before,
            deliveries: merged.delivered_count,
            ack_span: since_start(merged.last_ack_us),
            delivery_span: since_start(merged.last_delivery_us),
            settled,
            accepted_latency: LatencySummary::of(merged.accepted.as_ref()),
            ack_latency: LatencySummary::of(merged.acked.as_ref()),
            delivery_latency: LatencySummary::of(merged.delivered.as_ref()),
            merged,
        };
        let passes = args
            .find_max_under_p99_ms
            .is_none_or(|bound| result.passes(duration, bound));
        note(format!(
            "step {stage}: {rate:.0} msg/s target, {:.0} sent/s, p99 to new_message {:.2} ms{}",
            per_second(result.sent, duration),
            result.delivery_latency.p99_ms,
            if settled { "" } else { ", NOT drained" }
        ));
        results.push(result);
        if !passes {
            break;
        }
        rate *= args.step_factor;
    }
    churn_stop.cancel();
    let mut churn_failures = 0u64;
    let mut still_online = Vec::new();
    while let Some(done) = churn.join_next().await {
        match done {
            Ok(Ok(socket)) => still_online.extend(socket),
            _ => churn_failures += 1,
        }
    }
    // The last arrivals', edits' and reactions' frames may still be on their way.
    let deadline = Instant::now() + Duration::from_secs(2);
    // Every member's sockets hear of an edit or a reaction, the sender's own included.
    let members = senders[0].recipients + 1;
    let mix_pending = || {
        let now = mix_counts(&counters);
        now[1] - mix_before[1] < (now[0] - mix_before[0]) * members
            || now[3] - mix_before[3] < (now[2] - mix_before[2]) * members
    };
    while (counters.presence_received.get() < churn_changes.get() || mix_pending())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (typing_sent, typing_received) = (
        counters.typing_sent.get() - typing_before.0,
        counters.typing_received.get() - typing_before.1,
    );
    let presence_received = counters.presence_received.get();
    readers.abort_all();
    drop((sinks, still_online));

    // The headline: the best passing step (or the only one).
    let best = match args.find_max_under_p99_ms {
        Some(bound) => results.iter().rev().find(|r| r.passes(duration, bound)),
        None => results.first(),
    };
    if args.find_max_under_p99_ms.is_some() {
        report.figure("max_rate_under_p99", best.map(|b| b.rate));
    }
    let headline = best.or(results.first());
    if let Some(r) = headline {
        report.figure("rate_target", r.rate);
        report.figure("sent_per_s", per_second(r.sent, duration));
        report.figure("accepted_per_s", per_second(r.accepted, duration));
        report.figure("acked_per_s", per_second(r.merged.acked_count, r.ack_span));
        report.figure(
            "deliveries_per_s",
            per_second(r.deliveries, r.delivery_span),
        );
        report.figure("last_ack_after_s", r.ack_span.as_secs_f64());
        report.figure("sent", r.sent);
        report.figure("accepted", r.accepted);
        report.figure("acked", r.merged.acked_count);
        report.figure("deliveries", r.deliveries);
        report.figure("settled", r.settled);
        report.figure("problems", r.merged.problems());
        report.latency("send_to_accepted", r.merged.accepted.as_ref());
        report.latency("send_to_ack", r.merged.acked.as_ref());
        report.latency("send_to_new_message", r.merged.delivered.as_ref());
    }
    let elapsed = duration * u32::try_from(results.len()).unwrap_or(1);
    if args.typing_per_sec > 0.0 {
        report.figure("typing_sent_per_s", per_second(typing_sent, elapsed));
        report.figure("typing_sent", typing_sent);
        report.figure("typing_received", typing_received);
        // Each refresh is told to every other member (one socket each here).
        report.figure(
            "typing_received_share",
            share(typing_received, typing_sent * senders[0].recipients),
        );
    }
    let mix = [
        (
            args.edits_per_sec,
            0,
            [
                "edits_sent_per_s",
                "edits_sent",
                "edits_received",
                "edits_received_share",
            ],
        ),
        (
            args.reactions_per_sec,
            2,
            [
                "reactions_sent_per_s",
                "reactions_sent",
                "reactions_received",
                "reactions_received_share",
            ],
        ),
    ];
    for (per_sec, at, [per_s, sent_name, received_name, share_name]) in mix {
        if per_sec > 0.0 {
            let counts = mix_counts(&counters);
            let sent = counts[at] - mix_before[at];
            let received = counts[at + 1] - mix_before[at + 1];
            report.figure(per_s, per_second(sent, elapsed));
            report.figure(sent_name, sent);
            report.figure(received_name, received);
            report.figure(share_name, share(received, sent * members));
        }
    }
    if args.churn > 0 {
        report.figure("presence_changes", churn_changes.get());
        report.figure("presence_received", presence_received);
        report.figure(
            "presence_received_share",
            share(presence_received, churn_changes.get()),
        );
        report.figure("churn_failures", churn_failures);
    }
    if results.len() > 1 {
        report.tables.push(Table {
            title: "steps",
            columns: vec![
                "rate_target",
                "sent_per_s",
                "accepted_per_s",
                "acked_per_s",
                "deliveries_per_s",
                "p99_accepted_ms",
                "p99_ack_ms",
                "p50_new_message_ms",
                "p99_new_message_ms",
                "max_new_message_ms",
                "drained",
                "passes",
            ],
            rows: results
                .iter()
                .map(|r| r.row(duration, args.find_max_under_p99_ms))
                .collect(),
        });
    }

    report.integrity = args
        .check
        .run(|| Expected {
            run: run.to_string(),
            senders: senders
                .iter()
                .map(|s| (s.conn, (target.user(s.conn as usize), s.chat_id)))
                .collect::<HashMap<_, _>>(),
            accepted: Merged::of(&logs, None).accepted_keys,
        })
        .await?;
    Ok(report)
}

/// The edit and reaction counters: edits sent, received, reactions sent, received.
fn mix_counts(counters: &Counters) -> [u64; 4] {
    [
        counters.edits_sent.get(),
        counters.edits_received.get(),
        counters.reactions_sent.get(),
        counters.reactions_received.get(),
    ]
}

/// `part / whole`, or `None` when there is no whole.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// What a connection's writer needs.
struct Writer {
    run: Arc<str>,
    index: usize,
    senders: Arc<Vec<Sender>>,
    content: Arc<str>,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
    /// What its reader saw: the messages edits and reactions are aimed at.
    log: Arc<Mutex<ConnLog>>,
    /// `typing` refreshes, edits and reactions per second (0: none).
    typing_per_sec: f64,
    edits_per_sec: f64,
    reactions_per_sec: f64,
}

/// Runs one connection's writer for a step and hands its socket back with its index.
async fn write_step(sink: WsSink, step: Step, w: Writer) -> (usize, WsSink) {
    let index = w.index;
    (index, write_schedule(sink, step, w).await)
}

/// Sends one connection's share of a step on schedule. A late writer catches up with a
/// burst, and every message carries its scheduled time, so lateness shows as latency.
async fn write_schedule(mut sink: WsSink, step: Step, w: Writer) -> WsSink {
    let sender = &w.senders[w.index];
    let connections = w.senders.len() as f64;
    let period = Duration::from_secs_f64(connections / step.rate);
    // Connections start spread over one period so that their sends interleave.
    let mut next = step.start + period.mul_f64(w.index as f64 / connections);
    let mut typing = Periodic::new(w.typing_per_sec, step.start, w.index, connections, 0.5);
    let mut edits = Periodic::new(w.edits_per_sec, step.start, w.index, connections, 0.25);
    let mut reactions = Periodic::new(w.reactions_per_sec, step.start, w.index, connections, 0.75);
    let mut last_reacted = None;
    let mut seq = 0u32;
    let mut extras = 0u64;
    while next < step.end {
        let wake = [&typing, &edits, &reactions]
            .into_iter()
            .flatten()
            .map(|p| p.next)
            .fold(next, Instant::min);
        tokio::time::sleep_until(wake.into()).await;
        let now = Instant::now();
        if typing.as_mut().is_some_and(|p| p.due(now)) {
            if sink.feed(typing_frame(sender.chat_id)).await.is_err() {
                return sink;
            }
            w.counters.typing_sent.inc();
        }
        let (own, received) = {
            let log = w.log.lock().expect("log lock");
            (log.last_own_message, log.last_received_message)
        };
        if edits.as_mut().is_some_and(|p| p.due(now))
            && let Some(message_id) = own
        {
            extras += 1;
            let text = format!("edited {extras}");
            if sink
                .feed(edit_frame(sender.chat_id, message_id, &text))
                .await
                .is_err()
            {
                return sink;
            }
            w.counters.edits_sent.inc();
        }
        if reactions.as_mut().is_some_and(|p| p.due(now))
            && let Some(message_id) = received
            && last_reacted != Some(message_id)
        {
            last_reacted = Some(message_id);
            extras += 1;
            let emoji = EMOJI[extras as usize % EMOJI.len()];
            if sink
                .feed(react_frame(sender.chat_id, message_id, emoji))
                .await
                .is_err()
            {
                return sink;
            }
            w.counters.reactions_sent.inc();
        }
        while next <= now && next < step.end {
            if !w.budget.take() {
                let _ = sink.flush().await;
                return sink;
            }
            let key = MsgKey {
                conn: sender.conn,
                stage: step.stage,
                seq,
            };
            let id = msg_id(&w.run, key, micros_at(next));
            if sink
                .feed(send_frame(sender.chat_id, &w.content, &id))
                .await
                .is_err()
            {
                return sink;
            }
            w.counters.sent.inc();
            w.counters.expected_deliveries.add(sender.recipients);
            seq += 1;
            next += period;
        }
        if sink.flush().await.is_err() {
            return sink;
        }
    }
    sink
}

/// Splits connections `0..n` into chats of `size` members; a remainder too small for a chat
/// joins the last one.
pub fn partition(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect();
    if groups.len() > 1 && groups.last().is_some_and(|g| g.len() < 2) {
        let rest = groups.pop().unwrap_or_default();
        groups.last_mut().expect("more than one group").extend(rest);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partition_keeps_every_chat_at_two_or_more() {
        assert_eq!(partition(4, 2), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(partition(5, 2), vec![vec![0, 1], vec![2, 3, 4]]);
        assert_eq!(partition(7, 3), vec![vec![0, 1, 2], vec![3, 4, 5, 6]]);
        assert_eq!(
            partition(8, 3),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
    }
}
