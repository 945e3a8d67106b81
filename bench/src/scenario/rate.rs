//! `rate`: open loop at a fixed total rate over C connections in chats of G members. Every
//! message is timed from its *intended* send time (no coordinated omission) to
//! `message_accepted`, `message_ack` and each recipient's `new_message`. With
//! `--find-max-under-p99-ms` the rate is stepped up until the p99 to `new_message` passes the
//! bound.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Budget, DRAIN, Merged, new_log, per_second, seconds};
use crate::{
    client::{self, MsgKey, ReaderCtx, Warmups, WsSink, micros_at, msg_id, send_frame},
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
    let target = Target::resolve(&args.target)?;
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
    note(format!("connecting {} sockets", args.connections));
    let users: Vec<i64> = (0..args.connections).map(|n| target.user(n)).collect();
    let sockets = client::connect_all(&target, &users, 64).await?;

    let counters = Arc::new(Counters::default());
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
    readers.abort_all();
    drop(sinks);

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

/// What a connection's writer needs.
struct Writer {
    run: Arc<str>,
    index: usize,
    senders: Arc<Vec<Sender>>,
    content: Arc<str>,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
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
    let mut seq = 0u32;
    while next < step.end {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
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
