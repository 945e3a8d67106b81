//! `order`: S senders, spread over one or more jetchat instances, each send M messages into
//! each of G groups as fast as a window of unacknowledged sends allows; L listeners have a
//! socket on every instance. Every listener socket must receive every message once, each
//! sender's messages of a chat in the order they were sent (issue #22, one writer per chat).
//! Reports messages/s from the first send to the last delivery, and any message missing,
//! doubled or out of order (a failed check).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{DRAIN, per_second};
use crate::{
    client,
    progress::note,
    rest::{self, NewChat},
    stats::Report,
    target::{Target, TargetArgs},
};

#[derive(clap::Args, Debug)]
pub struct OrderArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Another instance of the same service (its own URL, same NATS and database); senders
    /// and listeners are spread over `--url` and these.
    #[arg(long = "instance-url")]
    instance_urls: Vec<String>,
    /// Users who send.
    #[arg(long, default_value_t = 12)]
    senders: usize,
    /// Groups every sender and listener is in.
    #[arg(long, default_value_t = 8)]
    groups: usize,
    /// Users who only receive, with a socket on every instance.
    #[arg(long, default_value_t = 2)]
    listeners: usize,
    /// Messages each sender sends into each group.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Most sends of one sender not yet acknowledged (`message_ack`).
    #[arg(long, default_value_t = 32)]
    window: usize,
}

/// What one listener socket saw.
#[derive(Debug, Default)]
struct Seen {
    received: u64,
    out_of_order: u64,
    doubled: u64,
    /// Microseconds after the start at which its last message came.
    last_at_us: u64,
}

pub async fn run(args: OrderArgs) -> anyhow::Result<Report> {
    client::epoch();
    let first = Target::resolve(&args.target)?;
    let mut targets = vec![first];
    for url in &args.instance_urls {
        let mut other = args.target.clone();
        other.url = url.clone();
        other.first_user = Some(targets[0].first_user);
        targets.push(Target::resolve(&other)?);
    }
    anyhow::ensure!(
        args.senders > 0 && args.groups > 0 && args.listeners > 0 && args.messages > 0,
        "--senders, --groups, --listeners and --messages must be at least 1"
    );
    let window = args.window.max(1);
    let run: Arc<str> = client::run_id().into();
    let home = &targets[0];
    let mut report = Report::new(
        "order",
        &run,
        json!({
            "instances": targets.len(), "senders": args.senders, "groups": args.groups,
            "listeners": args.listeners, "messages": args.messages, "window": window,
            "first_user": home.first_user,
        }),
    );
    let senders: Vec<i64> = (0..args.senders).map(|n| home.user(n)).collect();
    let listeners: Vec<i64> = (0..args.listeners)
        .map(|n| home.user(args.senders + n))
        .collect();
    note(format!("creating {} groups", args.groups));
    let members: Vec<i64> = senders[1..].iter().chain(&listeners).copied().collect();
    let groups = rest::create_chats(
        home,
        (0..args.groups)
            .map(|_| NewChat {
                creator: senders[0],
                others: members.clone(),
                is_group: true,
            })
            .collect(),
        &run,
    )
    .await?;

    let expected = (args.senders * args.groups * args.messages) as u64;
    note(format!(
        "connecting {} listener sockets and {} senders over {} instances",
        args.listeners * targets.len(),
        args.senders,
        targets.len()
    ));
    let mut listening = JoinSet::new();
    let start_us = Arc::new(AtomicU64::new(0));
    for target in &targets {
        for &user in &listeners {
            let socket = client::connect(target, user, None).await?;
            listening.spawn(listen(socket, expected));
        }
    }
    let mut sending = JoinSet::new();
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    for (i, &user) in senders.iter().enumerate() {
        sockets.push((
            i,
            client::connect(&targets[i % targets.len()], user, None).await?,
        ));
    }
    let start = Instant::now();
    start_us.store(client::micros_at(start), Ordering::Relaxed);
    for (i, socket) in sockets {
        sending.spawn(send_all(
            socket,
            SendPlan {
                run: run.clone(),
                sender: i,
                groups: groups.clone(),
                messages: args.messages,
                window,
            },
            acked.clone(),
            errors.clone(),
        ));
    }
    while let Some(done) = sending.join_next().await {
        done??;
    }
    let sent_for = start.elapsed();
    let mut seen = Vec::new();
    while let Some(done) = listening.join_next().await {
        seen.push(done?);
    }
    let start_us = start_us.load(Ordering::Relaxed);
    let last_us = seen.iter().map(|s| s.last_at_us).max().unwrap_or(start_us);
    let delivered_for = Duration::from_micros(last_us.saturating_sub(start_us));
    let received: u64 = seen.iter().map(|s| s.received).sum();
    let out_of_order: u64 = seen.iter().map(|s| s.out_of_order).sum();
    let doubled: u64 = seen.iter().map(|s| s.doubled).sum();
    let sockets = seen.len() as u64;
    let missing = (expected * sockets).saturating_sub(received - doubled);
    report.figure("messages", expected);
    report.figure("messages_per_s", per_second(expected, delivered_for));
    report.figure("sent_for_s", sent_for.as_secs_f64());
    report.figure("delivered_for_s", delivered_for.as_secs_f64());
    report.figure("acked", acked.load(Ordering::Relaxed));
    report.figure("errors", errors.load(Ordering::Relaxed));
    report.figure("listener_sockets", sockets);
    report.figure("deliveries", received);
    report.figure("out_of_order", out_of_order);
    report.figure("doubled", doubled);
    report.figure("missing", missing);
    if out_of_order > 0 {
        report.failures.push(format!(
            "{out_of_order} messages reached a listener out of their sender's order"
        ));
    }
    if missing > 0 || doubled > 0 {
        report.failures.push(format!(
            "{missing} deliveries missing and {doubled} doubled over {sockets} listener sockets"
        ));
    }
    if errors.load(Ordering::Relaxed) > 0 {
        report
            .failures
            .push(format!("{} sends refused", errors.load(Ordering::Relaxed)));
    }
    Ok(report)
}

/// One sender's messages.
struct SendPlan {
    run: Arc<str>,
    sender: usize,
    groups: Vec<i64>,
    messages: usize,
    window: usize,
}

/// Sends `messages` into each group (content `<sender>:<n>`), keeping at most `window`
/// unacknowledged, then waits for the last acks.
async fn send_all(
    socket: client::Ws,
    plan: SendPlan,
    acked: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = socket.split();
    let total = plan.messages * plan.groups.len();
    let mut sent = 0;
    let mut done = 0;
    let deadline = Instant::now() + DRAIN * 3;
    while done < total {
        while sent < total && sent - done < plan.window {
            let (n, group) = (
                sent / plan.groups.len(),
                plan.groups[sent % plan.groups.len()],
            );
            let frame = json!({
                "action": "send_message", "chat_id": group,
                "content": format!("{}:{n}", plan.sender),
                "client_msg_id": format!("{}-{}-{group}-{n}", plan.run, plan.sender),
            });
            sink.send(Message::Text(frame.to_string().into())).await?;
            sent += 1;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(message)) = tokio::time::timeout(left, stream.next()).await else {
            anyhow::bail!("sender {}: {done} of {total} acks came", plan.sender);
        };
        let Message::Text(text) = message? else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text)?;
        match frame["action"].as_str() {
            Some("message_ack") => {
                done += 1;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Some("error") => {
                done += 1;
                errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads a listener socket until `expected` messages came (or the drain time passed without
/// one), checking each sender's order per chat.
async fn listen(socket: client::Ws, expected: u64) -> Seen {
    let (_sink, mut stream) = socket.split();
    let mut seen = Seen::default();
    let mut next: HashMap<(i64, u64), u64> = HashMap::new();
    while seen.received < expected {
        let Ok(Some(Ok(message))) = tokio::time::timeout(DRAIN, stream.next()).await else {
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if frame["action"] != "new_message" {
            continue;
        }
        let (Some(chat), Some((sender, n))) = (
            frame["chat_id"].as_i64(),
            frame["content"].as_str().and_then(|c| c.split_once(':')),
        ) else {
            continue;
        };
        let (Ok(sender), Ok(n)) = (sender.parse::<u64>(), n.parse::<u64>()) else {
            continue;
        };
        seen.received += 1;
        seen.last_at_us = client::micros_at(Instant::now());
        let due = next.entry((chat, sender)).or_default();
        if n < *due {
            seen.doubled += 1;
        } else {
            if n > *due {
                seen.out_of_order += 1;
            }
            *due = n + 1;
        }
    }
    seen
}
