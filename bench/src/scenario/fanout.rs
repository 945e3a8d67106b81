//! `fanout`: one group of M members, every one connected; one of them posts N messages (a
//! window of them unacknowledged at a time, optionally paced). Reports deliveries/s and, per
//! message, the time until the last member had it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{DRAIN, Merged, new_log, per_second, seconds};
use crate::{
    client::{self, DeliveryHook, MsgKey, ReaderCtx, Warmups, msg_id, now_us, send_frame},
    integrity::{CheckArgs, Expected},
    progress::{Monitor, note},
    rest,
    stats::{Counters, Report, latency_histogram, wait_settled},
    target::{Target, TargetArgs},
};

/// How long the sender waits for its window to open before giving up.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Members of the group, all connected.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Messages the sender posts.
    #[arg(long, default_value_t = 200)]
    messages: u32,
    /// Stop sending after this many seconds (whichever comes first).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Messages sent but not yet acknowledged (message_ack) at a time.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Pace the sender to this many messages per second (default: as fast as the window
    /// allows).
    #[arg(long)]
    rate: Option<f64>,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    /// WebSocket handshakes in flight while connecting.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[command(flatten)]
    check: CheckArgs,
}

/// Per message: how many members have it and when the last one got it.
struct Track {
    sent_us: Vec<AtomicU64>,
    deliveries: Vec<AtomicU32>,
    last_us: Vec<AtomicU64>,
}

impl Track {
    fn new(n: usize) -> Track {
        let zeros = |_| AtomicU64::new(0);
        Track {
            sent_us: (0..n).map(zeros).collect(),
            deliveries: (0..n).map(|_| AtomicU32::new(0)).collect(),
            last_us: (0..n).map(zeros).collect(),
        }
    }

    fn delivered(&self, seq: u32, at_us: u64) {
        let i = seq as usize;
        if let (Some(count), Some(last)) = (self.deliveries.get(i), self.last_us.get(i)) {
            count.fetch_add(1, Ordering::Relaxed);
            last.fetch_max(at_us, Ordering::Relaxed);
        }
    }
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Target::resolve(&args.target)?;
    let duration = seconds("duration", args.duration)?;
    anyhow::ensure!(args.members >= 2, "--members must be at least 2");
    anyhow::ensure!(args.window >= 1, "--window must be at least 1");
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be positive");
    }
    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "fanout",
        &run,
        json!({
            "members": args.members, "messages": args.messages, "duration_s": args.duration,
            "window": args.window, "rate": args.rate, "content_bytes": args.content_bytes,
            "first_user": target.first_user,
        }),
    );

    note(format!("creating a group of {} members", args.members));
    let chat_id = rest::create_group(&target, args.members, &run).await?;
    note(format!("connecting {} sockets", args.members));
    let users: Vec<i64> = (0..args.members).map(|n| target.user(n)).collect();
    let sockets = client::connect_all(&target, &users, args.connect_concurrency).await?;

    let n = args.messages as usize;
    let track = Arc::new(Track::new(n));
    let counters = Arc::new(Counters::default());
    let window = Arc::new(Semaphore::new(args.window));
    let hook: DeliveryHook = {
        let track = track.clone();
        Arc::new(move |key: MsgKey, _sent, at| track.delivered(key.seq, at))
    };
    let mut readers = JoinSet::new();
    let mut logs = Vec::new();
    let mut sender_sink = None;
    let mut member_sinks = Vec::with_capacity(args.members);
    for (conn, socket) in sockets.into_iter().enumerate() {
        let (sink, stream) = socket.split();
        let log = new_log();
        logs.push((conn as u32, log.clone()));
        let is_sender = conn == 0;
        readers.spawn(client::read_frames(
            stream,
            ReaderCtx {
                run: run.clone(),
                conn: conn as u32,
                counters: counters.clone(),
                warmups: Warmups::new(1),
                log,
                on_delivery: (!is_sender).then(|| hook.clone()),
                on_settled: is_sender.then(|| window.clone()),
            },
        ));
        if is_sender {
            sender_sink = Some(sink);
        } else {
            member_sinks.push(sink);
        }
    }
    let mut sink = sender_sink.expect("the sender is member 0");

    let content = client::content(args.content_bytes);
    let recipients = (args.members - 1) as u64;
    let start = Instant::now();
    let deadline = start + duration;
    let monitor = Monitor::start(
        "fanout",
        u64::from(args.messages),
        "messages",
        counters.clone(),
        |c| c.sent.get(),
    );
    let mut sent = 0u32;
    while sent < args.messages && Instant::now() < deadline {
        match tokio::time::timeout(WINDOW_TIMEOUT, window.acquire()).await {
            Ok(Ok(permit)) => permit.forget(),
            _ => break,
        }
        if let Some(rate) = args.rate {
            let at = start + Duration::from_secs_f64(f64::from(sent) / rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let at = now_us();
        track.sent_us[sent as usize].store(at, Ordering::Relaxed);
        let key = MsgKey {
            conn: 0,
            stage: 0,
            seq: sent,
        };
        if sink
            .send(send_frame(chat_id, &content, &msg_id(&run, key, at)))
            .await
            .is_err()
        {
            break;
        }
        counters.sent.inc();
        counters.expected_deliveries.add(recipients);
        sent += 1;
    }
    let sending = start.elapsed();
    let settled = wait_settled(&counters, DRAIN).await;
    monitor.finish();
    readers.abort_all();
    drop((sink, member_sinks));
    let merged = Merged::of(&logs, None);

    // Per message: the time until the last member had it.
    let mut to_last: Option<Histogram<u64>> = None;
    let mut complete = 0u64;
    let mut deliveries = 0u64;
    let mut last_delivery = 0u64;
    let first_send = track
        .sent_us
        .first()
        .map_or(0, |t| t.load(Ordering::Relaxed));
    for i in 0..sent as usize {
        let got = u64::from(track.deliveries[i].load(Ordering::Relaxed));
        let last = track.last_us[i].load(Ordering::Relaxed);
        deliveries += got;
        last_delivery = last_delivery.max(last);
        if got >= recipients {
            complete += 1;
            to_last
                .get_or_insert_with(latency_histogram)
                .saturating_record(
                    last.saturating_sub(track.sent_us[i].load(Ordering::Relaxed))
                        .max(1),
                );
        }
    }
    let span = Duration::from_micros(last_delivery.saturating_sub(first_send));
    report.figure("messages_sent", sent);
    report.figure("messages_per_s", per_second(u64::from(sent), sending));
    report.figure("deliveries", deliveries);
    report.figure("deliveries_expected", u64::from(sent) * recipients);
    report.figure("deliveries_per_s", per_second(deliveries, span));
    report.figure("messages_complete", complete);
    report.figure("first_send_to_last_delivery_s", span.as_secs_f64());
    report.figure("accepted", counters.accepted.get());
    report.figure("acked", counters.acked.get());
    report.figure("settled", settled);
    report.figure("problems", merged.problems());
    report.latency("send_to_accepted", merged.accepted.as_ref());
    report.latency("send_to_ack", merged.acked.as_ref());
    report.latency("send_to_each_new_message", merged.delivered.as_ref());
    report.latency("send_to_last_member", to_last.as_ref());

    report.failures.extend(nothing_sent(sent));
    report.integrity = args
        .check
        .run(|| Expected {
            run: run.to_string(),
            senders: [(0, (target.user(0), chat_id))].into(),
            accepted: merged.accepted_keys,
        })
        .await?;
    Ok(report)
}

/// A run that sent nothing measured nothing: its zero deliveries per second are no figure.
fn nothing_sent(sent: u32) -> Option<String> {
    (sent == 0).then(|| {
        format!(
            "no message was sent: the sender's first send failed, or no `message_accepted` \
             opened its window within {} s",
            WINDOW_TIMEOUT.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::nothing_sent;

    #[test]
    fn a_run_that_sent_nothing_fails_and_one_that_sent_passes() {
        assert!(nothing_sent(0).is_some_and(|why| why.contains("no message was sent")));
        assert_eq!(nothing_sent(1), None);
        assert_eq!(nothing_sent(500), None);
    }
}
