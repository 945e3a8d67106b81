//! `slow`: back-pressure. One group of M members, all connected; member 0 posts at a fixed
//! rate for D seconds, twice over the same sockets: first a baseline in which every member
//! reads, then the same load while K members stop reading their sockets (their streams are
//! never polled). jetchat should drop those K with close code 4008 once their queue
//! (`SOCKET_QUEUE` frames) is full, keep its memory bounded, and deliver to everyone else as
//! fast as in the baseline. Reports the fast members' send → `new_message` latency in both
//! phases, jetchat's VmRSS before, during and after (with `--pid`), and how the slow sockets
//! were closed: a close frame is read only when its socket is read, so they are read once the
//! second phase has drained.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use tokio::{
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::{DRAIN, Merged, idle::vm_rss_kib, new_log, per_second, seconds};
use crate::{
    client::{
        self, ConnLog, MsgKey, ReaderCtx, Warmups, WsSink, WsStream, micros_at, msg_id, send_frame,
    },
    integrity::{CheckArgs, Expected},
    progress::{Monitor, note},
    rest,
    stats::{Counters, LatencySummary, Report, Table, wait_settled},
    target::{Target, TargetArgs},
};

/// The close code jetchat gives a socket whose queue overflowed (`docs/protocol.md`).
const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// How often jetchat's VmRSS is sampled for the peaks.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Sockets' logs by connection index.
type Logs = [(u32, Arc<Mutex<ConnLog>>)];

/// The two phases, as stages of the message ids.
const BASELINE: u16 = 0;
const SLOW: u16 = 1;

#[derive(clap::Args, Debug)]
pub struct SlowArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Members of the group, all connected: the sender, the slow readers and the fast ones.
    #[arg(long, default_value_t = 200)]
    members: usize,
    /// Members that stop reading in the second phase.
    #[arg(long, default_value_t = 10)]
    slow: usize,
    /// Messages per second the sender posts, in each phase.
    #[arg(long, default_value_t = 250.0)]
    rate: f64,
    /// Seconds of load in each phase.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds at the start of each phase whose messages are counted but not timed.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Bytes of content per message (jetchat refuses more than MAX_CONTENT_CHARS, 10,000 by
    /// default).
    #[arg(long, default_value_t = 4096)]
    content_bytes: usize,
    /// SO_RCVBUF of the slow sockets (the kernel doubles it), so that they stall jetchat's
    /// writes after that much rather than after the auto-tuned loopback maximum (32 MiB
    /// here); 0 keeps the kernel's auto-tuning. The fast sockets always keep it.
    #[arg(long, default_value_t = 65536)]
    slow_recv_buffer: u32,
    /// jetchat's process id: its VmRSS is sampled before, during and after.
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds the slow sockets stay unread after the second phase drained, before they are
    /// read (jetchat's memory is read at the end of it: what clients that never read again
    /// cost it).
    #[arg(long, default_value_t = 0.0)]
    unread_hold: f64,
    /// Seconds to wait, reading the slow sockets at the end, for their close frames.
    #[arg(long, default_value_t = 20.0)]
    close_wait: f64,
    /// Seconds to let jetchat settle before the last memory reading.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// WebSocket handshakes in flight while connecting.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[command(flatten)]
    check: CheckArgs,
}

/// The highest VmRSS of a process since the last look, sampled in the background.
struct RssPeak {
    pid: Option<u32>,
    peak: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl RssPeak {
    fn start(pid: Option<u32>) -> RssPeak {
        let peak = Arc::new(AtomicU64::new(0));
        let task = pid.map(|pid| {
            let peak = peak.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(RSS_EVERY);
                loop {
                    tick.tick().await;
                    if let Some(kib) = vm_rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
            })
        });
        RssPeak { pid, peak, task }
    }

    /// VmRSS now, in KiB.
    fn now(&self) -> Option<u64> {
        self.pid.and_then(vm_rss_kib)
    }

    /// The peak since the last call (or the start), counting now; starts a new period.
    fn take_peak(&self) -> Option<u64> {
        let now = self.now()?;
        Some(self.peak.swap(0, Ordering::Relaxed).max(now))
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// What one phase measured.
struct Phase {
    name: &'static str,
    sent: u64,
    sent_per_s: f64,
    accepted: u64,
    fast_deliveries: u64,
    fast_expected: u64,
    drained: bool,
    fast: Merged,
    sender: Merged,
    rss_peak_kib: Option<u64>,
}

impl Phase {
    fn row(&self) -> Vec<Value> {
        let l = LatencySummary::of(self.fast.delivered.as_ref());
        vec![
            json!(self.name),
            json!(self.sent),
            json!(self.sent_per_s),
            json!(self.accepted),
            json!(self.fast_deliveries),
            json!(self.fast_expected),
            json!(l.p50_ms),
            json!(l.p90_ms),
            json!(l.p99_ms),
            json!(l.p99_9_ms),
            json!(l.max_ms),
            json!(self.rss_peak_kib),
            json!(self.drained),
        ]
    }
}

/// Where a phase sends and who counts what.
struct Load<'a> {
    run: &'a str,
    chat_id: i64,
    content: &'a str,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    warmups: &'a Warmups,
    /// The sender and the fast members.
    counters: &'a Arc<Counters>,
    /// The slow members while they read.
    slow_counters: &'a Counters,
    fast_members: u64,
    /// Slow members that read in this phase (their deliveries are waited for).
    slow_reading: u64,
}

pub async fn run(args: SlowArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Target::resolve(&args.target)?;
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    let close_wait = seconds("close-wait", args.close_wait)?;
    let settle = seconds("settle", args.settle)?;
    let unread_hold = seconds("unread-hold", args.unread_hold)?;
    anyhow::ensure!(
        args.members >= args.slow + 2,
        "--members must leave room for the sender and at least one fast member beside --slow"
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be positive"
    );
    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "slow",
        &run,
        json!({
            "members": args.members, "slow": args.slow, "rate": args.rate,
            "duration_s": args.duration, "warmup_s": args.warmup,
            "content_bytes": args.content_bytes, "slow_recv_buffer": args.slow_recv_buffer,
            "unread_hold_s": args.unread_hold, "pid": args.pid,
            "first_user": target.first_user,
        }),
    );
    let rss = RssPeak::start(args.pid);
    let rss_start = rss.now();

    // Member 0 sends, 1..=K stop reading in the second phase, the rest always read.
    let slow_range = 1..=args.slow;
    let fast_members = (args.members - 1 - args.slow) as u64;
    note(format!("creating a group of {} members", args.members));
    let chat_id = rest::create_group(&target, args.members, &run).await?;
    note(format!(
        "connecting {} sockets ({} slow)",
        args.members, args.slow
    ));
    let recv_buffer = (args.slow_recv_buffer > 0).then_some(args.slow_recv_buffer);
    let sockets: Vec<client::Ws> = stream::iter(0..args.members)
        .map(|n| {
            let buffer = recv_buffer.filter(|_| slow_range.contains(&n));
            client::connect_with(&target, target.user(n), None, buffer)
        })
        .buffered(args.connect_concurrency.max(1))
        .try_collect()
        .await?;

    let counters = Arc::new(Counters::default());
    let slow_counters = Arc::new(Counters::default());
    let warmups = Warmups::new(2);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    let mut slow_readers = Vec::with_capacity(args.slow);
    let (mut sender_logs, mut slow_logs, mut fast_logs) = (Vec::new(), Vec::new(), Vec::new());
    let mut sender_sink = None;
    let mut member_sinks = Vec::with_capacity(args.members);
    for (conn, socket) in sockets.into_iter().enumerate() {
        let (sink, stream) = socket.split();
        let log = new_log();
        let is_slow = slow_range.contains(&conn);
        let ctx = ReaderCtx {
            run: run.clone(),
            conn: conn as u32,
            counters: if is_slow {
                slow_counters.clone()
            } else {
                counters.clone()
            },
            warmups: warmups.clone(),
            log: log.clone(),
            on_delivery: None,
            on_settled: None,
        };
        if is_slow {
            slow_logs.push((conn as u32, log));
            let mut stop = stop_rx.clone();
            slow_readers.push(tokio::spawn(client::read_frames_until(
                stream,
                ctx,
                async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                },
            )));
        } else {
            if conn == 0 {
                sender_logs.push((0, log));
            } else {
                fast_logs.push((conn as u32, log));
            }
            readers.spawn(client::read_frames(stream, ctx));
        }
        if conn == 0 {
            sender_sink = Some(sink);
        } else {
            member_sinks.push(sink);
        }
    }
    let mut sink = sender_sink.expect("the sender is member 0");
    let content = client::content(args.content_bytes);
    let load = |slow_reading: u64| Load {
        run: &run,
        chat_id,
        content: &content,
        rate: args.rate,
        duration,
        warmup,
        warmups: &warmups,
        counters: &counters,
        slow_counters: &slow_counters,
        fast_members,
        slow_reading,
    };

    // The baseline: everyone reads.
    let rss_connected = rss.now();
    rss.take_peak();
    let (sent, sent_per_s) = send_phase(&mut sink, BASELINE, &load(args.slow as u64)).await;
    let drained = wait_settled(&counters, DRAIN).await;
    let slow_drained = wait_settled(&slow_counters, DRAIN).await;
    let baseline = phase(
        "baseline",
        BASELINE,
        (sent, sent_per_s, drained && slow_drained),
        (&sender_logs, &fast_logs),
        fast_members,
        rss.take_peak(),
    );
    note(format!(
        "baseline: {sent} sent, fast members' p99 to new_message {:.2} ms",
        LatencySummary::of(baseline.fast.delivered.as_ref()).p99_ms
    ));

    // The slow members stop reading; their sockets stay open.
    let _ = stop_tx.send(true);
    let mut slow_streams: Vec<(usize, WsStream)> = Vec::with_capacity(args.slow);
    let mut closed_early = 0u64;
    for (i, reader) in slow_readers.into_iter().enumerate() {
        match reader.await {
            Ok(Some(stream)) => slow_streams.push((i, stream)),
            _ => closed_early += 1,
        }
    }
    let rss_before = rss.now();
    rss.take_peak();
    let (sent, sent_per_s) = send_phase(&mut sink, SLOW, &load(0)).await;
    let drained = wait_settled(&counters, DRAIN).await;
    // Still unread: whatever jetchat holds for the slow sockets now is what a client that
    // never reads again would cost it.
    tokio::time::sleep(unread_hold).await;
    let rss_unread = rss.now();
    let slowed = phase(
        "slow readers",
        SLOW,
        (sent, sent_per_s, drained),
        (&sender_logs, &fast_logs),
        fast_members,
        rss.take_peak(),
    );
    note(format!(
        "with {} slow readers: {sent} sent, fast members' p99 to new_message {:.2} ms; reading the slow sockets",
        args.slow,
        LatencySummary::of(slowed.fast.delivered.as_ref()).p99_ms
    ));

    // Read the slow sockets to the end: the close frame is behind what the kernel holds.
    let mut closers = JoinSet::new();
    let mut reading = Vec::with_capacity(slow_streams.len());
    for (i, stream) in slow_streams {
        let (conn, log) = &slow_logs[i];
        let ended = Arc::new(AtomicBool::new(false));
        reading.push((log.clone(), ended.clone()));
        let ctx = ReaderCtx {
            run: run.clone(),
            conn: *conn,
            counters: slow_counters.clone(),
            warmups: warmups.clone(),
            log: log.clone(),
            on_delivery: None,
            on_settled: None,
        };
        closers.spawn(async move {
            client::read_frames(stream, ctx).await;
            ended.store(true, Ordering::Relaxed);
        });
    }
    let deadline = Instant::now() + close_wait;
    while Instant::now() < deadline && !slow_done(&reading, slowed.accepted) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    closers.abort_all();
    while closers.join_next().await.is_some() {}
    tokio::time::sleep(settle).await;
    let rss_after = rss.now();
    readers.abort_all();
    drop((sink, member_sinks));

    let slow_merged = Merged::of(&slow_logs, None);
    let slow_phase_received: u64 = Merged::of(&slow_logs, Some(SLOW)).delivered_count;
    let closed_4008 = slow_merged
        .closed
        .get(&CLOSE_SLOW_CONSUMER)
        .copied()
        .unwrap_or(0);
    let closed_total: u64 = slow_merged.closed.values().sum();
    let b = LatencySummary::of(baseline.fast.delivered.as_ref());
    let s = LatencySummary::of(slowed.fast.delivered.as_ref());
    let missing = baseline
        .fast_expected
        .saturating_sub(baseline.fast_deliveries)
        + slowed.fast_expected.saturating_sub(slowed.fast_deliveries);
    let ok = closed_4008 == args.slow as u64 && missing == 0;
    if !ok {
        note(format!(
            "warning: {closed_4008} of {} slow sockets closed with {CLOSE_SLOW_CONSUMER}, {missing} deliveries to fast members missing",
            args.slow
        ));
    }
    let ratio = |slow: f64, base: f64| (base > 0.0).then(|| slow / base);
    report.figure("members", args.members);
    report.figure("slow_members", args.slow);
    report.figure("fast_members", fast_members);
    report.figure("message_bytes", args.content_bytes);
    report.figure("sent_per_phase", sent);
    report.figure("fast_p50_ms_baseline", b.p50_ms);
    report.figure("fast_p50_ms_slow", s.p50_ms);
    report.figure("fast_p99_ms_baseline", b.p99_ms);
    report.figure("fast_p99_ms_slow", s.p99_ms);
    report.figure("fast_max_ms_baseline", b.max_ms);
    report.figure("fast_max_ms_slow", s.max_ms);
    report.figure("fast_p99_slow_over_baseline", ratio(s.p99_ms, b.p99_ms));
    report.figure("fast_deliveries_missing", missing);
    report.figure("slow_closed_4008", closed_4008);
    report.figure(
        "slow_closed_by_code",
        json!(
            slow_merged
                .closed
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    report.figure("slow_closed_during_baseline", closed_early);
    report.figure(
        "slow_not_closed_by_server",
        (args.slow as u64).saturating_sub(closed_total),
    );
    report.figure(
        "slow_new_messages_per_socket_before_close",
        per_socket(slow_phase_received, args.slow),
    );
    report.figure("jetchat_rss_start_kib", rss_start);
    report.figure("jetchat_rss_connected_kib", rss_connected);
    report.figure("jetchat_rss_baseline_peak_kib", baseline.rss_peak_kib);
    report.figure("jetchat_rss_before_kib", rss_before);
    report.figure("jetchat_rss_during_peak_kib", slowed.rss_peak_kib);
    report.figure("jetchat_rss_slow_unread_kib", rss_unread);
    report.figure("jetchat_rss_after_kib", rss_after);
    report.figure(
        "jetchat_rss_growth_during_kib",
        slowed
            .rss_peak_kib
            .zip(rss_before)
            .map(|(peak, before)| peak as i64 - before as i64),
    );
    report.figure("backpressure_ok", ok);
    report.figure("settled", baseline.drained && slowed.drained);
    let everyone: Vec<_> = sender_logs.iter().chain(&fast_logs).cloned().collect();
    report.figure("problems", Merged::of(&everyone, None).problems());
    let sender_all = Merged::of(&sender_logs, None);
    report.latency(
        "baseline_send_to_accepted",
        baseline.sender.accepted.as_ref(),
    );
    report.latency(
        "baseline_fast_send_to_new_message",
        baseline.fast.delivered.as_ref(),
    );
    report.latency("slow_send_to_accepted", slowed.sender.accepted.as_ref());
    report.latency(
        "slow_fast_send_to_new_message",
        slowed.fast.delivered.as_ref(),
    );
    report.tables.push(Table {
        title: "phases",
        columns: vec![
            "phase",
            "sent",
            "sent_per_s",
            "accepted",
            "fast_deliveries",
            "fast_expected",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p99_9_ms",
            "max_ms",
            "rss_peak_kib",
            "drained",
        ],
        rows: vec![baseline.row(), slowed.row()],
    });

    report.integrity = args
        .check
        .run(|| Expected {
            run: run.to_string(),
            senders: HashMap::from([(0, (target.user(0), chat_id))]),
            accepted: sender_all.accepted_keys,
        })
        .await?;
    Ok(report)
}

/// Posts into the group on schedule for one phase; every message carries its scheduled send
/// time, so a sender that falls behind shows as latency. Returns messages sent and their rate.
async fn send_phase(sink: &mut WsSink, stage: u16, load: &Load<'_>) -> (u64, f64) {
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + load.duration;
    load.warmups.set(stage, micros_at(start + load.warmup));
    let period = Duration::from_secs_f64(1.0 / load.rate);
    let monitor = Monitor::start(
        if stage == BASELINE {
            "slow: baseline"
        } else {
            "slow: slow readers"
        },
        load.duration.as_millis() as u64,
        "ms",
        load.counters.clone(),
        move |_| Instant::now().saturating_duration_since(start).as_millis() as u64,
    );
    let mut next = start;
    let mut seq = 0u32;
    'sending: while next < end {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        while next <= now && next < end {
            let key = MsgKey {
                conn: 0,
                stage,
                seq,
            };
            let id = msg_id(load.run, key, micros_at(next));
            if sink
                .feed(send_frame(load.chat_id, load.content, &id))
                .await
                .is_err()
            {
                break 'sending;
            }
            load.counters.sent.inc();
            load.counters.expected_deliveries.add(load.fast_members);
            load.slow_counters
                .expected_deliveries
                .add(load.slow_reading);
            seq += 1;
            next += period;
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    monitor.finish();
    let sent = u64::from(seq);
    (sent, per_second(sent, load.duration))
}

/// Adds up a phase from the sender's and the fast members' logs.
fn phase(
    name: &'static str,
    stage: u16,
    (sent, sent_per_s, drained): (u64, f64, bool),
    (sender_logs, fast_logs): (&Logs, &Logs),
    fast_members: u64,
    rss_peak_kib: Option<u64>,
) -> Phase {
    let sender = Merged::of(sender_logs, Some(stage));
    let fast = Merged::of(fast_logs, Some(stage));
    let accepted = sender.accepted_keys.len() as u64;
    Phase {
        name,
        sent,
        sent_per_s,
        accepted,
        fast_deliveries: fast.delivered_count,
        fast_expected: accepted * fast_members,
        drained,
        fast,
        sender,
        rss_peak_kib,
    }
}

/// Whether every slow socket read at the end has ended (closed or broken) or got every
/// message of the slow phase (jetchat never dropped it).
fn slow_done(reading: &[(Arc<Mutex<ConnLog>>, Arc<AtomicBool>)], accepted: u64) -> bool {
    reading.iter().all(|(log, ended)| {
        ended.load(Ordering::Relaxed)
            || log.lock().expect("log lock").stage(SLOW).delivered_count >= accepted
    })
}

fn per_socket(total: u64, sockets: usize) -> Option<f64> {
    (sockets > 0).then(|| total as f64 / sockets as f64)
}
