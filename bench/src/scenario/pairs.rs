//! `pairs`: P sender/receiver pairs in private chats, closed loop. The sender sends, the
//! receiver waits for that message's `new_message` and acknowledges it (read), then the sender
//! sends the next: messages/s and send → `new_message` latency at full back-pressure.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{Budget, DRAIN, Merged, new_log, per_second, seconds};
use crate::{
    client::{
        self, Frame, MsgKey, ReaderCtx, Warmups, Ws, WsSink, acknowledge_frame, micros_at, msg_id,
        now_us, send_frame,
    },
    integrity::{CheckArgs, Expected},
    progress::{Monitor, note},
    rest::{self, NewChat},
    stats::{Counters, Report, latency_histogram, merge, wait_settled},
    target::{Target, TargetArgs},
};

/// How long a receiver waits for a message before the pair gives up.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct PairsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Sender/receiver pairs, each in its own private chat.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many messages in total (whichever comes first).
    #[arg(long)]
    messages: Option<u64>,
    /// Seconds at the start whose messages are counted but not timed.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    #[command(flatten)]
    check: CheckArgs,
}

/// What one pair measured.
#[derive(Default)]
struct PairLog {
    round_trip: Option<Histogram<u64>>,
    /// Round trips started after the warm-up.
    timed: u64,
    round_trips: u64,
    /// Messages the receiver never got within [`RECEIVE_TIMEOUT`] (ends the pair).
    lost: u64,
    receiver_errors: u64,
}

/// Everything a pair's loop needs.
struct Pair {
    run: Arc<str>,
    conn: u32,
    chat_id: i64,
    content: Arc<str>,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
    deadline: Instant,
    warmup_us: u64,
}

pub async fn run(args: PairsArgs) -> anyhow::Result<crate::stats::Report> {
    client::epoch();
    let target = Target::resolve(&args.target)?;
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    anyhow::ensure!(args.pairs > 0, "--pairs must be at least 1");
    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "pairs",
        &run,
        json!({
            "pairs": args.pairs, "duration_s": args.duration, "messages": args.messages,
            "warmup_s": args.warmup, "content_bytes": args.content_bytes,
            "first_user": target.first_user,
        }),
    );

    note(format!("creating {} private chats", args.pairs));
    let chats = rest::create_chats(
        &target,
        (0..args.pairs)
            .map(|i| NewChat {
                creator: target.user(2 * i),
                others: vec![target.user(2 * i + 1)],
                is_group: false,
            })
            .collect(),
        &run,
    )
    .await?;
    note(format!("connecting {} sockets", 2 * args.pairs));
    let users: Vec<i64> = (0..2 * args.pairs).map(|n| target.user(n)).collect();
    let sockets = client::connect_all(&target, &users, 64).await?;

    let counters = Arc::new(Counters::default());
    let budget = Budget::new(args.messages);
    let content: Arc<str> = client::content(args.content_bytes).into();
    let start = Instant::now();
    let warmups = Warmups::new(1);
    warmups.set(0, micros_at(start + warmup));
    let mut readers = JoinSet::new();
    let mut loops = JoinSet::new();
    let mut logs = Vec::new();
    let mut senders = HashMap::new();
    let mut sockets = sockets.into_iter();
    for (i, chat_id) in chats.iter().copied().enumerate() {
        let (Some(sender), Some(receiver)) = (sockets.next(), sockets.next()) else {
            unreachable!("two sockets per pair")
        };
        let conn = (2 * i) as u32;
        senders.insert(conn, (target.user(2 * i), chat_id));
        let (sink, stream) = sender.split();
        let log = new_log();
        logs.push((conn, log.clone()));
        readers.spawn(client::read_frames(
            stream,
            ReaderCtx {
                run: run.clone(),
                conn,
                counters: counters.clone(),
                warmups: warmups.clone(),
                log,
                on_delivery: None,
                on_settled: None,
            },
        ));
        let pair = Pair {
            run: run.clone(),
            conn,
            chat_id,
            content: content.clone(),
            counters: counters.clone(),
            budget: budget.clone(),
            deadline: start + duration,
            warmup_us: micros_at(start + warmup),
        };
        loops.spawn(pair.run(sink, receiver));
    }

    let monitor = Monitor::start(
        "pairs",
        duration.as_millis() as u64,
        "ms",
        counters.clone(),
        move |_| start.elapsed().as_millis() as u64,
    );
    let mut pairs = PairLog::default();
    let mut open = Vec::new();
    while let Some(done) = loops.join_next().await {
        let (log, sink, receiver) = done?;
        open.push((sink, receiver));
        merge(&mut pairs.round_trip, &log.round_trip);
        pairs.timed += log.timed;
        pairs.round_trips += log.round_trips;
        pairs.lost += log.lost;
        pairs.receiver_errors += log.receiver_errors;
    }
    let elapsed = start.elapsed();
    monitor.finish();
    let settled = wait_settled(&counters, DRAIN).await;
    readers.abort_all();
    drop(open);
    let merged = Merged::of(&logs, None);

    let timed_for = elapsed.saturating_sub(warmup);
    report.figure("round_trips", pairs.round_trips);
    report.figure("messages_per_s", per_second(pairs.timed, timed_for));
    report.figure("elapsed_s", elapsed.as_secs_f64());
    report.figure("sent", counters.sent.get());
    report.figure("accepted", counters.accepted.get());
    report.figure("acked", counters.acked.get());
    report.figure("status_updates_read", merged.status_updates);
    report.figure("lost", pairs.lost);
    report.figure("receiver_errors", pairs.receiver_errors);
    report.figure("settled", settled);
    report.figure("problems", merged.problems());
    report.latency("send_to_accepted", merged.accepted.as_ref());
    report.latency("send_to_ack", merged.acked.as_ref());
    report.latency("send_to_new_message", pairs.round_trip.as_ref());

    report.integrity = args
        .check
        .run(|| Expected {
            run: run.to_string(),
            senders,
            accepted: merged.accepted_keys,
        })
        .await?;
    Ok(report)
}

impl Pair {
    /// Send, await the receiver's `new_message`, acknowledge it; again until the deadline.
    async fn run(self, mut sink: WsSink, mut receiver: Ws) -> (PairLog, WsSink, Ws) {
        let mut log = PairLog::default();
        let mut seq = 0u32;
        while Instant::now() < self.deadline && self.budget.take() {
            let sent = now_us();
            let key = MsgKey {
                conn: self.conn,
                stage: 0,
                seq,
            };
            let id = msg_id(&self.run, key, sent);
            if sink
                .send(send_frame(self.chat_id, &self.content, &id))
                .await
                .is_err()
            {
                break;
            }
            self.counters.sent.inc();
            self.counters.expected_deliveries.inc();
            let got = tokio::time::timeout(
                RECEIVE_TIMEOUT,
                wait_for(&mut receiver, &id, &mut log.receiver_errors),
            )
            .await;
            let Ok(Some((chat_id, message_id))) = got else {
                log.lost += 1;
                break;
            };
            let received = now_us();
            self.counters.delivered.inc();
            log.round_trips += 1;
            if sent >= self.warmup_us {
                log.timed += 1;
                log.round_trip
                    .get_or_insert_with(latency_histogram)
                    .saturating_record(received.saturating_sub(sent).max(1));
            }
            if receiver
                .send(acknowledge_frame(chat_id, message_id))
                .await
                .is_err()
            {
                break;
            }
            seq += 1;
        }
        // The sockets stay open until the run has drained: acks may still be on their way.
        (log, sink, receiver)
    }
}

/// Reads the receiver until the `new_message` of `id`; `(chat_id, message_id)`, or `None`
/// when the socket ends.
async fn wait_for(receiver: &mut Ws, id: &str, errors: &mut u64) -> Option<(i64, i64)> {
    while let Some(message) = receiver.next().await {
        let Ok(Message::Text(text)) = message else {
            match message {
                Ok(Message::Close(_)) | Err(_) => return None,
                _ => continue,
            }
        };
        let Some(frame) = Frame::parse(&text) else {
            continue;
        };
        match frame.action.as_ref() {
            "new_message" if frame.client_msg_id.as_deref() == Some(id) => {
                return Some((frame.chat_id?, frame.message_id?));
            }
            "error" => *errors += 1,
            _ => {}
        }
    }
    None
}
