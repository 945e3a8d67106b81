//! `many_chats`: many users in many chats, a share of them online, under steady traffic
//! (issue #14). Every user is in `--chats-per-user` chats (`--private-per-user` private ones,
//! the rest groups of `--group-size`), created over REST first (timed: the setup is part of
//! the result). The online users' sockets subscribe the router to tens of thousands of chats;
//! then, for `--duration` seconds and all at once:
//!
//! - steady traffic: `--rate` messages/s from the online users, each into its chats in turn,
//!   timed from its scheduled send to `message_accepted`, `message_ack` and every online
//!   member's `new_message`;
//! - handshakes: `--handshakes-per-sec` offline users come online (connect → HTTP 101, and →
//!   the first frame, `unread`) and leave after `--handshake-hold` seconds;
//! - membership changes: `--creates-per-sec` groups created with `POST /chats/` (→ every
//!   online member's `chat_created`) and `--adds-per-sec` online users added to a group with
//!   an `add_members` command on JetStream (`--nats-url`; → every online member's
//!   `member_added`, the new one's included). Every frame owed is counted.
//!
//! With `--pid`, jetchat's RSS before and after the online sockets connect, divided by the
//! router's subscriptions (`jetchat_router_subscriptions` of `/metrics`), and its CPU time during the
//! run.

mod plan;
mod track;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use async_nats::jetstream;
use futures_util::{SinkExt, StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use self::{
    plan::{PlannedChat, Shape, SplitMix64},
    track::{Change, Track, created_name},
};
use super::{DRAIN, idle, per_second, seconds};
use crate::{
    client::{self, MsgKey, WsSink, WsStream, micros_at, msg_id, now_us, send_frame},
    integrity::{CheckArgs, Expected},
    progress::{Monitor, note},
    rest::{self, NewChat},
    stats::{Count, Counters, Report, latency_histogram},
    target::{Target, TargetArgs, loopback_addr},
};

/// File descriptors kept spare beyond the sockets (REST connections, NATS, the database).
const SPARE_FDS: u64 = 1024;

/// How long a handshake socket waits for its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct ManyChatsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Users, each in --chats-per-user chats.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Chats every user is in.
    #[arg(long, default_value_t = 10)]
    chats_per_user: usize,
    /// Of those, private chats (the rest are groups of --group-size).
    #[arg(long, default_value_t = 5)]
    private_per_user: usize,
    /// Members per group.
    #[arg(long, default_value_t = 5)]
    group_size: usize,
    /// Share of the users online (connected) for the whole run.
    #[arg(long, default_value_t = 0.1)]
    online_share: f64,
    /// Messages per second over all online users.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds at the start whose messages are counted but not timed.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    /// Offline users coming online per second during the run (each a timed handshake).
    #[arg(long, default_value_t = 20.0)]
    handshakes_per_sec: f64,
    /// Seconds such a user stays online.
    #[arg(long, default_value_t = 5.0)]
    handshake_hold: f64,
    /// Groups created per second during the run (`POST /chats/`, an online creator).
    #[arg(long, default_value_t = 5.0)]
    creates_per_sec: f64,
    /// Online users added to a group per second during the run (`add_members` on
    /// JetStream; needs --nats-url).
    #[arg(long, default_value_t = 5.0)]
    adds_per_sec: f64,
    /// jetchat's NATS server (loopback), where `add_members` commands are published.
    #[arg(long)]
    nats_url: Option<String>,
    /// jetchat's NATS_SUBJECT_PREFIX.
    #[arg(long, default_value = "chat")]
    subject_prefix: String,
    /// jetchat's process id: its RSS before and after the online sockets connect, its CPU
    /// time during the run.
    #[arg(long)]
    pid: Option<u32>,
    /// `POST /chats/` in flight at once during the setup.
    #[arg(long, default_value_t = 128)]
    create_concurrency: usize,
    /// WebSocket handshakes in flight while the online users connect.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Seconds to let jetchat settle before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Seed of the chat plan and of the changes' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    check: CheckArgs,
}

/// An online user's socket and its steady chats.
struct Online {
    user: i64,
    /// Its sends into chat slot `s` carry conn `conn_base + s` (the database check knows
    /// each conn's sender and chat).
    conn_base: u32,
    chats: Arc<[i64]>,
    /// Online members of each chat besides itself: the `new_message`s a send there owes.
    recipients: Vec<u64>,
}

pub async fn run(args: ManyChatsArgs) -> anyhow::Result<Report> {
    client::epoch();
    let target = Arc::new(Target::resolve(&args.target)?);
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    let hold = seconds("handshake-hold", args.handshake_hold)?;
    let settle = seconds("settle", args.settle)?;
    let shape = Shape {
        users: args.users,
        chats_per_user: args.chats_per_user,
        private_per_user: args.private_per_user,
        group_size: args.group_size,
        seed: args.seed,
    };
    shape.check().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.chats_per_user >= 1,
        "--chats-per-user must be at least 1"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.online_share),
        "--online-share must be between 0 and 1"
    );
    let online_n = ((args.users as f64 * args.online_share).round() as usize).clamp(1, args.users);
    for (flag, value) in [
        ("--rate", args.rate),
        ("--handshakes-per-sec", args.handshakes_per_sec),
        ("--creates-per-sec", args.creates_per_sec),
        ("--adds-per-sec", args.adds_per_sec),
    ] {
        anyhow::ensure!(
            value.is_finite() && value >= 0.0,
            "{flag} must be zero or positive"
        );
    }
    let nofile = idle::raise_nofile(online_n as u64 + SPARE_FDS);
    if nofile < online_n as u64 + 256 {
        note(format!(
            "warning: this process may open only {nofile} files for {online_n} sockets"
        ));
    }
    let run: Arc<str> = client::run_id().into();
    let mut report = Report::new(
        "many_chats",
        &run,
        json!({
            "users": args.users, "chats_per_user": args.chats_per_user,
            "private_per_user": args.private_per_user, "group_size": args.group_size,
            "online_share": args.online_share, "online": online_n, "rate": args.rate,
            "duration_s": args.duration, "warmup_s": args.warmup,
            "content_bytes": args.content_bytes, "handshakes_per_sec": args.handshakes_per_sec,
            "handshake_hold_s": args.handshake_hold, "creates_per_sec": args.creates_per_sec,
            "adds_per_sec": if args.nats_url.is_some() { args.adds_per_sec } else { 0.0 },
            "create_concurrency": args.create_concurrency, "seed": args.seed,
            "first_user": target.first_user,
        }),
    );

    // The setup: every chat over REST, as many at once as jetchat takes.
    let planned = plan::plan(&shape);
    let privates = planned.iter().filter(|c| !c.is_group).count();
    note(format!(
        "creating {} chats ({privates} private, {} groups) for {} users, {} at a time",
        planned.len(),
        planned.len() - privates,
        args.users,
        args.create_concurrency
    ));
    let setup_started = Instant::now();
    let (chat_ids, create_latency) =
        create_all(&target, &planned, &run, args.create_concurrency).await?;
    let setup_took = setup_started.elapsed();
    note(format!(
        "created {} chats in {:.1} s ({:.0}/s)",
        chat_ids.len(),
        setup_took.as_secs_f64(),
        per_second(chat_ids.len() as u64, setup_took)
    ));

    // Who is online, in which chats, with whom.
    let mut user_chats: Vec<Vec<usize>> = vec![Vec::new(); args.users];
    for (i, chat) in planned.iter().enumerate() {
        for &m in &chat.members {
            user_chats[m].push(i);
        }
    }
    let online_members =
        |chat: &PlannedChat| chat.members.iter().filter(|&&m| m < online_n).count();
    let routed_expected = planned.iter().filter(|c| online_members(c) > 0).count() as u64;
    let slots = args.chats_per_user as u32;
    let online: Vec<Online> = (0..online_n)
        .map(|u| Online {
            user: target.user(u),
            conn_base: u as u32 * slots,
            chats: user_chats[u].iter().map(|&c| chat_ids[c]).collect(),
            recipients: user_chats[u]
                .iter()
                .map(|&c| online_members(&planned[c]) as u64 - 1)
                .collect(),
        })
        .collect();

    let metrics_url = target.base.join("/metrics")?;
    let http = reqwest::Client::new();
    tokio::time::sleep(settle).await;
    let rss_before = args.pid.and_then(idle::vm_rss_kib);
    let subs_before = router_subscriptions(&http, &metrics_url).await;
    note(format!("connecting {online_n} online users"));
    let connect_started = Instant::now();
    let users: Vec<i64> = online.iter().map(|o| o.user).collect();
    let sockets = client::connect_all(&target, &users, args.connect_concurrency).await?;
    let connect_took = connect_started.elapsed();
    tokio::time::sleep(settle).await;
    let rss_after = args.pid.and_then(idle::vm_rss_kib);
    let subs_after = router_subscriptions(&http, &metrics_url).await;
    note(format!(
        "{online_n} sockets in {:.1} s; router subscriptions {} (chats with an online member: \
         {routed_expected})",
        connect_took.as_secs_f64(),
        subs_after.map_or("?".into(), |s| s.to_string())
    ));

    // The run.
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + duration;
    let track = Arc::new(Track::new(&run, micros_at(start + warmup)));
    let mut readers = JoinSet::new();
    let mut writers = JoinSet::new();
    let content: Arc<str> = client::content(args.content_bytes).into();
    for (i, (socket, o)) in sockets.into_iter().zip(&online).enumerate() {
        let (sink, stream) = socket.split();
        readers.spawn(read_online(
            stream,
            track.clone(),
            o.conn_base,
            o.chats.clone(),
        ));
        writers.spawn(write_traffic(
            sink,
            Traffic {
                run: run.clone(),
                content: content.clone(),
                track: track.clone(),
                conn_base: o.conn_base,
                chats: o.chats.clone(),
                recipients: o.recipients.clone(),
                period: if args.rate > 0.0 {
                    Duration::from_secs_f64(online_n as f64 / args.rate)
                } else {
                    Duration::ZERO
                },
                offset: i as f64 / online_n as f64,
                silent: args.rate == 0.0,
            },
            start,
            end,
        ));
    }
    let handshakes = Arc::new(Handshakes::default());
    let offline: Vec<i64> = (online_n..args.users).map(|u| target.user(u)).collect();
    let handshake_loop = tokio::spawn(handshake_schedule(
        target.clone(),
        offline,
        args.handshakes_per_sec,
        hold,
        handshakes.clone(),
        (start, end),
    ));
    let js = match &args.nats_url {
        Some(url) => Some(nats(url).await?),
        None => {
            if args.adds_per_sec > 0.0 {
                note("no --nats-url: no add_members during the run");
            }
            None
        }
    };
    let groups: Vec<(i64, Vec<usize>)> = planned
        .iter()
        .zip(&chat_ids)
        .filter(|(c, _)| c.is_group)
        .map(|(c, &id)| (id, c.members.clone()))
        .collect();
    let changes = Arc::new(Changes::default());
    let change_loop = tokio::spawn(change_schedule(
        ChangeCtx {
            target: target.clone(),
            http: http.clone(),
            track: track.clone(),
            run: run.clone(),
            online_n,
            users: args.users,
            group_size: args.group_size,
            groups,
            js: js.map(|js| (js, args.subject_prefix.clone())),
            creates_per_sec: args.creates_per_sec,
            adds_per_sec: if args.nats_url.is_some() {
                args.adds_per_sec
            } else {
                0.0
            },
            seed: args.seed,
        },
        changes.clone(),
        (start, end),
    ));
    let cpu_before = args.pid.and_then(cpu_seconds);
    let monitor = Monitor::start(
        &format!("many_chats {:.0}/s", args.rate),
        duration.as_millis() as u64,
        "ms",
        track.counters.clone(),
        move |_| Instant::now().saturating_duration_since(start).as_millis() as u64,
    );
    let mut sinks = Vec::with_capacity(online_n);
    while let Some(done) = writers.join_next().await {
        sinks.push(done?);
    }
    let mut spawned = handshake_loop.await?;
    let mut change_tasks = change_loop.await?;
    let cpu_after = args.pid.and_then(cpu_seconds);
    let subs_during = router_subscriptions(&http, &metrics_url).await;
    monitor.finish();
    // Everything owed: answers to every send, every delivery, every membership frame.
    let deadline = Instant::now() + DRAIN;
    while !(track.counters.settled() && track.owed() == 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled = track.counters.settled();
    while spawned.join_next().await.is_some() {}
    while change_tasks.join_next().await.is_some() {}
    let owed_frames = track.owed();
    let closed_online = track.counters.closed.get();
    readers.abort_all();
    drop(sinks);
    let rss_end = args.pid.and_then(idle::vm_rss_kib);

    // The figures.
    let c = &track.counters;
    report.figure("chats_private", privates as u64);
    report.figure("chats_group", (planned.len() - privates) as u64);
    report.figure(
        "memberships",
        planned.iter().map(|c| c.members.len() as u64).sum::<u64>(),
    );
    report.figure("setup_create_s", setup_took.as_secs_f64());
    report.figure(
        "setup_creates_per_s",
        per_second(chat_ids.len() as u64, setup_took),
    );
    report.figure("online_connect_s", connect_took.as_secs_f64());
    report.figure("router_subscriptions_before", subs_before);
    report.figure("router_subscriptions", subs_after);
    report.figure("router_subscriptions_end_of_run", subs_during);
    report.figure("chats_with_an_online_member", routed_expected);
    report.figure("jetchat_rss_before_connect_kib", rss_before);
    report.figure("jetchat_rss_after_connect_kib", rss_after);
    report.figure("jetchat_rss_end_kib", rss_end);
    let growth = rss_before
        .zip(rss_after)
        .map(|(b, a)| a.saturating_sub(b) as f64 * 1024.0);
    report.figure(
        "jetchat_rss_per_subscription_bytes",
        growth
            .zip(subs_after.filter(|&s| s > 0))
            .map(|(g, s)| g / s as f64),
    );
    report.figure(
        "jetchat_rss_per_online_socket_bytes",
        growth.map(|g| g / online_n as f64),
    );
    let cpu = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    report.figure("jetchat_cpu_s_during_run", cpu);
    report.figure(
        "jetchat_cpu_share_during_run",
        cpu.map(|s| s / duration.as_secs_f64()),
    );
    report.figure(
        "jetchat_cpu_us_per_message",
        cpu.filter(|_| c.sent.get() > 0)
            .map(|s| s * 1e6 / c.sent.get() as f64),
    );
    report.figure("sent", c.sent.get());
    report.figure("sent_per_s", per_second(c.sent.get(), duration));
    report.figure("accepted", c.accepted.get());
    report.figure("acked", c.acked.get());
    report.figure("acked_per_s", per_second(c.acked.get(), duration));
    report.figure("deliveries", c.delivered.get());
    report.figure("deliveries_expected", c.expected_deliveries.get());
    report.figure("deliveries_per_s", per_second(c.delivered.get(), duration));
    report.figure(
        "deliveries_in_joined_chats",
        track.joined_chat_deliveries.get(),
    );
    report.figure("settled", settled);
    report.figure("errors", json!(*track.errors.lock().expect("errors lock")));
    report.figure("online_sockets_closed", closed_online);
    report.figure("handshakes", handshakes.done.get());
    report.figure("handshake_failures", handshakes.failed.get());
    report.figure("chats_created_during_run", changes.created.get());
    report.figure("members_added_during_run", changes.added.get());
    report.figure("membership_frames_expected", changes.frames_expected.get());
    report.figure("membership_frames_missing", owed_frames);
    report.figure(
        "membership_frames_unexpected",
        track.unexpected_membership_frames.get(),
    );
    report.figure("change_failures", changes.failed.get());
    report.latency("setup_post_chats", Some(&create_latency));
    report.latency(
        "send_to_accepted",
        Some(&*track.accepted.lock().expect("lock")),
    );
    report.latency("send_to_ack", Some(&*track.acked.lock().expect("lock")));
    report.latency(
        "send_to_new_message",
        Some(&*track.delivered.lock().expect("lock")),
    );
    report.latency(
        "handshake_to_upgrade",
        handshakes.upgrade.lock().expect("lock").as_ref(),
    );
    report.latency(
        "handshake_to_unread",
        handshakes.first_frame.lock().expect("lock").as_ref(),
    );
    report.latency(
        "post_chats_during_run",
        changes.rest.lock().expect("lock").as_ref(),
    );
    report.latency(
        "post_chats_to_chat_created",
        Some(&*track.created_frames.lock().expect("lock")),
    );
    report.latency(
        "add_members_to_member_added",
        Some(&*track.added_frames.lock().expect("lock")),
    );

    if let Some(subs) = subs_after
        && subs != routed_expected
    {
        report.failures.push(format!(
            "the router subscribes to {subs} chats, but {routed_expected} chats have an online member"
        ));
    }
    if owed_frames > 0 {
        report.failures.push(format!(
            "{owed_frames} chat_created/member_added frames never reached an online member"
        ));
    }
    if closed_online > 0 {
        report.failures.push(format!(
            "{closed_online} online sockets were closed during the run"
        ));
    }
    for (what, failed, first) in [
        (
            "handshakes",
            handshakes.failed.get(),
            &handshakes.first_failure,
        ),
        (
            "membership changes",
            changes.failed.get(),
            &changes.first_failure,
        ),
    ] {
        if failed > 0 {
            let first = first.lock().expect("lock").clone().unwrap_or_default();
            report
                .failures
                .push(format!("{failed} {what} failed, e.g. {first}"));
        }
    }

    let accepted = std::mem::take(&mut *track.accepted_keys.lock().expect("keys lock"));
    report.integrity = args
        .check
        .run(|| Expected {
            run: run.to_string(),
            senders: online
                .iter()
                .flat_map(|o| {
                    o.chats
                        .iter()
                        .enumerate()
                        .map(|(s, &chat)| (o.conn_base + s as u32, (o.user, chat)))
                        .collect::<Vec<_>>()
                })
                .collect::<HashMap<_, _>>(),
            accepted,
        })
        .await?;
    Ok(report)
}

/// Creates every planned chat, `concurrency` at a time, with a progress bar; their ids in
/// plan order and the latency of each `POST /chats/`.
async fn create_all(
    target: &Target,
    planned: &[PlannedChat],
    run: &str,
    concurrency: usize,
) -> anyhow::Result<(Vec<i64>, Histogram<u64>)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let done = Arc::new(Counters::default());
    let monitor = Monitor::start("setup", planned.len() as u64, "chats", done.clone(), |c| {
        c.accepted.get()
    });
    let latency = Mutex::new(latency_histogram());
    let ids: Vec<i64> = stream::iter(planned.iter().enumerate())
        .map(|(i, chat)| {
            let (http, done, latency) = (&http, &done, &latency);
            async move {
                let new = NewChat {
                    creator: target.user(chat.members[0]),
                    others: chat.members[1..].iter().map(|&m| target.user(m)).collect(),
                    is_group: chat.is_group,
                };
                let name = chat.is_group.then(|| format!("mc {run} #{i}"));
                let began = Instant::now();
                let id = rest::create_chat(http, target, &new, name).await?;
                latency
                    .lock()
                    .expect("latency lock")
                    .saturating_record(began.elapsed().as_micros() as u64);
                done.accepted.inc();
                anyhow::Ok(id)
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    monitor.finish();
    Ok((ids, latency.into_inner().expect("latency lock")))
}

/// Reads an online socket until it closes (or the task is aborted).
async fn read_online(mut stream: WsStream, track: Arc<Track>, conn_base: u32, chats: Arc<[i64]>) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => track.frame(&text, now_us(), conn_base, &chats),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    track.counters.closed.inc();
}

/// One online socket's share of the steady traffic.
struct Traffic {
    run: Arc<str>,
    content: Arc<str>,
    track: Arc<Track>,
    conn_base: u32,
    chats: Arc<[i64]>,
    recipients: Vec<u64>,
    period: Duration,
    /// Where in the period it starts (0..1), so that the sockets interleave.
    offset: f64,
    silent: bool,
}

/// Sends on schedule into the socket's chats in turn; every message carries its scheduled
/// time, so a late writer's lateness shows as latency.
async fn write_traffic(mut sink: WsSink, t: Traffic, start: Instant, end: Instant) -> WsSink {
    if t.silent {
        return sink;
    }
    let mut next = start + t.period.mul_f64(t.offset);
    let mut seq = 0u32;
    let counters = &t.track.counters;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        while next <= now && next < end {
            let slot = seq as usize % t.chats.len();
            let key = MsgKey {
                conn: t.conn_base + slot as u32,
                stage: 0,
                seq,
            };
            let id = msg_id(&t.run, key, micros_at(next));
            if sink
                .feed(send_frame(t.chats[slot], &t.content, &id))
                .await
                .is_err()
            {
                return sink;
            }
            counters.sent.inc();
            counters.expected_deliveries.add(t.recipients[slot]);
            seq += 1;
            next += t.period;
        }
        if sink.flush().await.is_err() {
            return sink;
        }
    }
    sink
}

/// The handshakes of users coming online during the run.
#[derive(Default)]
struct Handshakes {
    upgrade: Mutex<Option<Histogram<u64>>>,
    first_frame: Mutex<Option<Histogram<u64>>>,
    done: Count,
    failed: Count,
    first_failure: Mutex<Option<String>>,
}

impl Handshakes {
    /// Records `took` into a histogram made on first use.
    fn record(into: &Mutex<Option<Histogram<u64>>>, took: Duration) {
        into.lock()
            .expect("histogram lock")
            .get_or_insert_with(latency_histogram)
            .saturating_record(took.as_micros().max(1) as u64);
    }

    fn fail(&self, why: String) {
        self.failed.inc();
        self.first_failure.lock().expect("lock").get_or_insert(why);
    }
}

/// Starts a handshake every 1/`per_sec` seconds from `start` to `end`, each by the next
/// offline user; returns the handshakes still holding their socket.
async fn handshake_schedule(
    target: Arc<Target>,
    offline: Vec<i64>,
    per_sec: f64,
    hold: Duration,
    stats: Arc<Handshakes>,
    (start, end): (Instant, Instant),
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    if per_sec <= 0.0 || offline.is_empty() {
        return tasks;
    }
    let period = Duration::from_secs_f64(1.0 / per_sec);
    let mut next = start;
    let mut k = 0usize;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let user = offline[k % offline.len()];
        tasks.spawn(handshake(target.clone(), user, hold, stats.clone()));
        k += 1;
        next += period;
    }
    tasks
}

/// One user coming online: connect, time the upgrade and the first frame (`unread`), stay
/// `hold`, reading whatever comes, then leave.
async fn handshake(target: Arc<Target>, user: i64, hold: Duration, stats: Arc<Handshakes>) {
    let began = Instant::now();
    let socket = match client::connect(&target, user, None).await {
        Ok(socket) => socket,
        Err(error) => return stats.fail(format!("{error:#}")),
    };
    Handshakes::record(&stats.upgrade, began.elapsed());
    let (_sink, mut stream) = socket.split();
    let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    match first {
        Ok(Some(text)) if client::Frame::parse(&text).is_some_and(|f| f.action == "unread") => {
            Handshakes::record(&stats.first_frame, began.elapsed());
        }
        Ok(Some(text)) => {
            return stats.fail(format!(
                "the first frame was not unread: {:.80}",
                text.as_str()
            ));
        }
        Ok(None) => return stats.fail("closed before its first frame".into()),
        Err(_) => return stats.fail("no first frame within 30 s".into()),
    }
    stats.done.inc();
    let _ = tokio::time::timeout(hold, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// What the membership changes need.
struct ChangeCtx {
    target: Arc<Target>,
    http: reqwest::Client,
    track: Arc<Track>,
    run: Arc<str>,
    online_n: usize,
    users: usize,
    group_size: usize,
    /// The setup's groups: id and members (user indices).
    groups: Vec<(i64, Vec<usize>)>,
    /// JetStream and the subject prefix, for `add_members`.
    js: Option<(jetstream::Context, String)>,
    creates_per_sec: f64,
    adds_per_sec: f64,
    seed: u64,
}

/// The membership changes' own figures (the frames are in [`Track`]).
#[derive(Default)]
struct Changes {
    created: Count,
    added: Count,
    frames_expected: Count,
    failed: Count,
    first_failure: Mutex<Option<String>>,
    /// `POST /chats/` → its answer, during the run.
    rest: Mutex<Option<Histogram<u64>>>,
}

impl Changes {
    fn fail(&self, why: String) {
        self.failed.inc();
        self.first_failure.lock().expect("lock").get_or_insert(why);
    }
}

/// Creates groups and adds members on schedule from `start` to `end`; returns the changes
/// still in flight.
async fn change_schedule(
    ctx: ChangeCtx,
    stats: Arc<Changes>,
    (start, end): (Instant, Instant),
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let ctx = Arc::new(ctx);
    let mut rng = SplitMix64(ctx.seed ^ 0x6d61_6e79);
    let every = |per_sec: f64| (per_sec > 0.0).then(|| Duration::from_secs_f64(1.0 / per_sec));
    let (create_every, add_every) = (every(ctx.creates_per_sec), every(ctx.adds_per_sec));
    // Half a period in, so that the two kinds interleave.
    let mut next_create = create_every.map(|p| start + p / 2);
    let mut next_add = add_every.map(|p| start + p);
    let mut used_groups: HashSet<usize> = HashSet::new();
    let mut k = 0u64;
    while let Some(next) = [next_create, next_add]
        .into_iter()
        .flatten()
        .min()
        .filter(|&next| next < end)
    {
        tokio::time::sleep_until(next.into()).await;
        if next_create == Some(next) {
            let creator = rng.below(ctx.online_n);
            let mut members = vec![creator];
            while members.len() < ctx.group_size.min(ctx.users) {
                let m = rng.below(ctx.users);
                if !members.contains(&m) {
                    members.push(m);
                }
            }
            tasks.spawn(create_group(ctx.clone(), stats.clone(), k, members));
            k += 1;
            next_create = create_every.map(|p| next + p);
        }
        if next_add == Some(next) {
            if let Some((group, user)) = pick_add(&ctx, &mut rng, &used_groups) {
                used_groups.insert(group);
                tasks.spawn(add_member(ctx.clone(), stats.clone(), group, user));
            }
            next_add = add_every.map(|p| next + p);
        }
    }
    tasks
}

/// A group not changed yet in this run and an online user not in it.
fn pick_add(
    ctx: &ChangeCtx,
    rng: &mut SplitMix64,
    used: &HashSet<usize>,
) -> Option<(usize, usize)> {
    if ctx.groups.is_empty() {
        return None;
    }
    for _ in 0..50 {
        let group = rng.below(ctx.groups.len());
        let user = rng.below(ctx.online_n);
        if !used.contains(&group) && !ctx.groups[group].1.contains(&user) {
            return Some((group, user));
        }
    }
    None
}

/// The `k`-th group of the run, created by `members[0]` (online) with `POST /chats/`.
async fn create_group(ctx: Arc<ChangeCtx>, stats: Arc<Changes>, k: u64, members: Vec<usize>) {
    let online = members.iter().filter(|&&m| m < ctx.online_n).count() as u64;
    stats.frames_expected.add(online);
    let chat = NewChat {
        creator: ctx.target.user(members[0]),
        others: members[1..].iter().map(|&m| ctx.target.user(m)).collect(),
        is_group: true,
    };
    let began = Instant::now();
    ctx.track.expect(Change::Created(k), now_us(), online);
    match rest::create_chat(
        &ctx.http,
        &ctx.target,
        &chat,
        Some(created_name(&ctx.run, k)),
    )
    .await
    {
        Ok(_) => {
            stats.created.inc();
            Handshakes::record(&stats.rest, began.elapsed());
        }
        Err(error) => stats.fail(format!("{error:#}")),
    }
}

/// Adds online user `user` to setup group `group` with an `add_members` command.
async fn add_member(ctx: Arc<ChangeCtx>, stats: Arc<Changes>, group: usize, user: usize) {
    let Some((js, prefix)) = &ctx.js else {
        return;
    };
    let (chat_id, members) = &ctx.groups[group];
    let online = members.iter().filter(|&&m| m < ctx.online_n).count() as u64 + 1;
    stats.frames_expected.add(online);
    let user_id = ctx.target.user(user);
    let command_id = format!("mc-{}-{chat_id}-{user_id}", ctx.run);
    let body = json!({
        "type": "add_members", "v": 1, "command_id": command_id, "chat_id": chat_id,
        "user_ids": [user_id],
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("add_members:{command_id}").as_str());
    ctx.track.expect(
        Change::Added {
            chat_id: *chat_id,
            user_id,
        },
        now_us(),
        online,
    );
    let published = async {
        js.publish_with_headers(
            format!("{prefix}.in.{chat_id}.add_members"),
            headers,
            body.to_string().into(),
        )
        .await?
        .await?;
        anyhow::Ok(())
    };
    match published.await {
        Ok(()) => stats.added.inc(),
        Err(error) => stats.fail(format!("add_members: {error:#}")),
    }
}

/// A JetStream context on jetchat's NATS server (loopback only).
async fn nats(url: &str) -> anyhow::Result<jetstream::Context> {
    let parsed = url::Url::parse(url).with_context(|| format!("--nats-url {url}"))?;
    let addr = loopback_addr(&parsed)?;
    let client = async_nats::connect(addr.to_string())
        .await
        .with_context(|| format!("connecting to NATS at {addr}"))?;
    Ok(jetstream::new(client))
}

/// The router's subscriptions from jetchat's `/metrics` (`None` when it cannot be read).
async fn router_subscriptions(http: &reqwest::Client, url: &url::Url) -> Option<u64> {
    let text = http.get(url.clone()).send().await.ok()?.text().await.ok()?;
    gauge(&text, "jetchat_router_subscriptions")
}

/// The value of an unlabelled gauge in a Prometheus/OpenMetrics text.
fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// User plus system CPU time of a process in seconds (`/proc/<pid>/stat`, at the kernel's
/// 100 ticks a second).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The fields after the command name (which may hold spaces and parentheses): state is
    // the first, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_router_gauge() {
        let text = "# TYPE jetchat_router_subscriptions gauge\njetchat_router_subscriptions 17712\n\
                    jetchat_router_subscriptions_total 3\n# EOF\n";
        assert_eq!(gauge(text, "jetchat_router_subscriptions"), Some(17712));
        assert_eq!(
            gauge("jetchat_sockets 4\n", "jetchat_router_subscriptions"),
            None
        );
    }

    #[test]
    fn reads_cpu_ticks_past_an_odd_command_name() {
        let stat = "4242 (jet chat) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 9 0 \
                    100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
