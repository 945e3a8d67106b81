//! `reconnect`: clients in group chats under steady load, a share of them on a flaky network:
//! they drop their socket abruptly (no close frame), stay away a moment, and come back with
//! `?since=<highest cursor>&epoch=…` (docs/protocol.md, "Reconnect without gaps"). Measures
//! the catch-up (reconnect start → `synced`) and the frames it replays; then checks against
//! the database that every stored message reached every other member at least once over live
//! and catch-up frames, and no more than once beyond the documented overlap.
//!
//! `soak` runs the same clients (with typing, edits and reactions beside their messages:
//! [`Extras`]) and the same accounting after the load ([`account`]).

mod ledger;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use self::ledger::{Ledger, Received, owed};
use super::{
    DRAIN,
    live::{EMOJI, Periodic},
    per_second,
    rate::partition,
    seconds,
};
use crate::{
    client::{
        self, DeliveryHook, Frame, MsgKey, Ws, edit_frame, micros_at, msg_id, parse_msg_id,
        react_frame, send_frame, typing_frame,
    },
    integrity::{self, CheckArgs, Expected},
    progress::{Monitor, note},
    rest::{self, NewChat},
    stats::{Counters, latency_histogram},
    target::{Target, TargetArgs},
};

/// Missing or doubled messages named in the report, at most.
const EXAMPLES: usize = 5;

#[derive(clap::Args, Debug)]
pub struct ReconnectArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Clients, one user and one socket each.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Members per group chat.
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Share of the clients (0–1) that keep dropping and resuming their socket.
    #[arg(long, default_value_t = 0.25)]
    flaky: f64,
    /// Messages per second over all clients (a client that is away skips its sends).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Mean seconds a flaky client stays connected (uniform over ½–1½ times it).
    #[arg(long, default_value_t = 1.0)]
    online: f64,
    /// Mean seconds a flaky client stays away before it resumes (uniform over ½–1½ times it).
    #[arg(long, default_value_t = 0.3)]
    offline: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    content_bytes: usize,
    /// Another instance of the same service (same NATS, same database), repeatable: client
    /// `i` first connects to instance `i mod n` (`--url` being the first), and each resume
    /// goes to the next instance in turn, so every catch-up crosses instances.
    #[arg(long = "instance-url")]
    instance_urls: Vec<String>,
    #[command(flatten)]
    check: CheckArgs,
}

/// A client's place in the run.
#[derive(Clone, Copy)]
pub(super) struct Member {
    pub conn: u32,
    pub user: i64,
    pub chat_id: i64,
    /// Members of its chat besides itself.
    pub recipients: u64,
    /// Whether it keeps dropping and resuming its socket.
    pub flaky: bool,
}

/// The clients of `chats` (each chat's members by client index, with the chat's id), sorted by
/// connection, and each chat's members; a share `flaky` of them flaky, spread over the chats
/// so that every chat has flaky and steady members.
pub(super) fn members_of<'a>(
    target: &Target,
    chats: impl IntoIterator<Item = (&'a [usize], i64)>,
    flaky: f64,
) -> (Vec<Member>, HashMap<i64, Vec<u32>>) {
    let flaky_every = if flaky > 0.0 {
        (1.0 / flaky).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    let mut members = Vec::new();
    let mut chat_members: HashMap<i64, Vec<u32>> = HashMap::new();
    for (chat, chat_id) in chats {
        for &m in chat {
            members.push(Member {
                conn: m as u32,
                user: target.user(m),
                chat_id,
                recipients: (chat.len() - 1) as u64,
                flaky: flaky > 0.0 && m % flaky_every == flaky_every - 1,
            });
            chat_members.entry(chat_id).or_default().push(m as u32);
        }
    }
    members.sort_by_key(|m| m.conn);
    (members, chat_members)
}

/// What one client logged over all its sockets.
#[derive(Default)]
pub(super) struct ClientLog {
    ledger: Ledger,
    accepted_seqs: Vec<u32>,
    /// Reconnect start → `synced` (µs).
    catchup: Option<Histogram<u64>>,
    /// `changes` of each `synced`.
    replayed: Vec<u64>,
    reconnects: u64,
    /// Sockets dropped before their catch-up ended.
    interrupted: u64,
    failed_connects: u64,
    /// Sockets the server closed or that broke (not dropped by the client).
    lost: u64,
    resyncs: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    closed_by_server: BTreeMap<u16, u64>,
    /// The newest of its own messages that was acked, and the newest message of another member
    /// it received: what an edit and a reaction are aimed at.
    last_own_message: Option<i64>,
    last_received_message: Option<i64>,
}

/// The run's timing, shared by every client.
#[derive(Clone, Copy)]
pub(super) struct Plan {
    pub start: Instant,
    pub end: Instant,
    /// Between two sends of one client.
    pub period: Duration,
    pub online: Duration,
    pub offline: Duration,
    /// What each client does beside its messages (nothing in `reconnect`).
    pub extras: Extras,
}

/// Typing refreshes, edits of one's newest message and reactions to the newest message of
/// another member, each per second per client (0: none); a client that is away skips them.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Extras {
    pub typing_per_sec: f64,
    pub edits_per_sec: f64,
    pub reactions_per_sec: f64,
}

/// A run's clients, started.
pub(super) struct Clients {
    /// Each client's log, by connection.
    pub logs: Vec<(u32, Arc<Mutex<ClientLog>>)>,
    pub tasks: JoinSet<()>,
}

pub async fn run(args: ReconnectArgs) -> anyhow::Result<crate::stats::Report> {
    client::epoch();
    let target = Arc::new(Target::resolve(&args.target)?);
    let mut instances = vec![target.clone()];
    for url in &args.instance_urls {
        instances.push(Arc::new(Target::resolve(&TargetArgs {
            url: url.clone(),
            first_user: Some(target.first_user),
            ..args.target.clone()
        })?));
    }
    let instances: Arc<[Arc<Target>]> = instances.into();
    let duration = seconds("duration", args.duration)?;
    let online = seconds("online", args.online)?;
    let offline = seconds("offline", args.offline)?;
    anyhow::ensure!(
        args.group_size >= 2 && args.clients >= args.group_size,
        "--clients must be at least --group-size, and --group-size at least 2"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.flaky),
        "--flaky is a share between 0 and 1"
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be positive"
    );
    anyhow::ensure!(!online.is_zero(), "--online must be more than 0 seconds");
    let Some(database_url) = args.check.database_url.clone() else {
        anyhow::bail!("reconnect needs --database-url: what each member is owed comes from it");
    };
    let run: Arc<str> = client::run_id().into();
    let mut report = crate::stats::Report::new(
        "reconnect",
        &run,
        json!({
            "clients": args.clients, "group_size": args.group_size, "flaky": args.flaky,
            "rate": args.rate, "duration_s": args.duration, "online_s": args.online,
            "offline_s": args.offline, "content_bytes": args.content_bytes,
            "instances": instances.len(), "first_user": target.first_user,
        }),
    );

    let groups = partition(args.clients, args.group_size);
    note(format!("creating {} group chats", groups.len()));
    let chats = rest::create_chats(
        &target,
        groups
            .iter()
            .map(|members| NewChat {
                creator: target.user(members[0]),
                others: members[1..].iter().map(|&m| target.user(m)).collect(),
                is_group: true,
            })
            .collect(),
        &run,
    )
    .await?;
    let (members, chat_members) = members_of(
        &target,
        groups.iter().map(Vec::as_slice).zip(chats.iter().copied()),
        args.flaky,
    );
    let flaky_count = members.iter().filter(|m| m.flaky).count();

    note(format!(
        "connecting {} sockets ({flaky_count} flaky)",
        args.clients
    ));
    let started = connect_clients(&instances, &members).await?;

    let counters = Arc::new(Counters::default());
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Plan {
        start,
        end: start + duration,
        period: Duration::from_secs_f64(args.clients as f64 / args.rate),
        online,
        offline,
        extras: Extras::default(),
    };
    let monitor = Monitor::start(
        "reconnect",
        duration.as_millis() as u64,
        "ms",
        counters.clone(),
        move |_| Instant::now().saturating_duration_since(start).as_millis() as u64,
    );
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
        |_| None,
    );
    tokio::time::sleep_until(plan.end.into()).await;
    monitor.finish();
    let load_end = Instant::now();

    report.figure("clients", args.clients as u64);
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
    report.figure("sent", counters.sent.get());
    report.figure("accepted", counters.accepted.get());
    report.figure("stored", accounted.stored);
    report.figure("messages_per_s", per_second(accounted.stored, duration));
    report.figure(
        "deliveries_per_s",
        per_second(counters.delivered.get(), load_end - plan.start),
    );
    accounted.figures(&mut report);
    Ok(report)
}

/// Opens every member's first socket (member `i` on instance `i mod n`) and reads its
/// `unread`: where its client starts from.
pub(super) async fn connect_clients(
    instances: &[Arc<Target>],
    members: &[Member],
) -> anyhow::Result<Vec<(Ws, Ledger)>> {
    let sockets: Vec<Ws> = stream::iter(members)
        .map(|m| client::connect(&instances[m.conn as usize % instances.len()], m.user, None))
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // Each socket's first frame is `unread`: where its client starts from.
    stream::iter(sockets)
        .map(|mut ws| async move {
            let mut ledger = Ledger::default();
            let first = tokio::time::timeout(DRAIN, first_text(&mut ws))
                .await
                .context("no unread frame on a new socket")??;
            let frame = Frame::parse(&first).context("the first frame is not JSON")?;
            anyhow::ensure!(
                frame.action == "unread",
                "the first frame is {}, not unread",
                frame.action
            );
            ledger.start(frame.cursor, frame.epoch.as_deref());
            anyhow::Ok((ws, ledger))
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// What every client of a run shares.
pub(super) struct Shared {
    pub instances: Arc<[Arc<Target>]>,
    pub run: Arc<str>,
    pub content: Arc<str>,
    pub counters: Arc<Counters>,
    pub plan: Plan,
}

/// Starts a client per member on its connected socket; `on_delivery` gives each member the
/// hook its first receipt of each message is told to (e.g. to time it).
pub(super) fn spawn_clients(
    started: Vec<(Ws, Ledger)>,
    members: &[Member],
    shared: &Shared,
    on_delivery: impl Fn(&Member) -> Option<DeliveryHook>,
) -> Clients {
    let mut logs = Vec::with_capacity(members.len());
    let mut tasks = JoinSet::new();
    for (member, (ws, ledger)) in members.iter().zip(started) {
        let log = Arc::new(Mutex::new(ClientLog {
            ledger,
            ..ClientLog::default()
        }));
        logs.push((member.conn, log.clone()));
        tasks.spawn(
            Client {
                member: *member,
                clients: members.len(),
                instances: shared.instances.clone(),
                run: shared.run.clone(),
                content: shared.content.clone(),
                counters: shared.counters.clone(),
                log,
                plan: shared.plan,
                on_delivery: on_delivery(member),
            }
            .run(ws),
        );
    }
    Clients { logs, tasks }
}

/// What [`account`] found.
pub(super) struct Accounted {
    /// The run's messages in the database.
    pub stored: u64,
    /// Missing, doubled, out of order and resyncs all zero.
    pub delivery_ok: bool,
    totals: Totals,
    catchup: Option<Histogram<u64>>,
    replayed: Vec<u64>,
}

/// After the load: checks the database (every accepted message stored once), waits (at most
/// [`DRAIN`]) until every member has every stored message of its chats sent by someone else,
/// stops the clients, and judges what each received: nothing missing, nothing again beyond
/// the overlap of a catch-up, each sender's messages in order, no `resync_required`. What
/// fails goes into `report.failures`, the database check into `report.integrity`.
pub(super) async fn account(
    check: &CheckArgs,
    database_url: &str,
    run: &str,
    members: &[Member],
    chat_members: &HashMap<i64, Vec<u32>>,
    clients: Clients,
    report: &mut crate::stats::Report,
) -> anyhow::Result<Accounted> {
    let Clients { logs, mut tasks } = clients;
    // The persister first: every accepted message stored once (and what each member is owed).
    let integrity = check
        .run(|| Expected {
            run: run.to_string(),
            senders: members
                .iter()
                .map(|m| (m.conn, (m.user, m.chat_id)))
                .collect(),
            accepted: logs
                .iter()
                .flat_map(|(conn, log)| {
                    let log = log.lock().expect("log lock");
                    log.accepted_seqs
                        .iter()
                        .map(|&seq| MsgKey {
                            conn: *conn,
                            stage: 0,
                            seq,
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        })
        .await?;
    let stored = integrity::stored_messages(database_url, run).await?;
    let owed = owed(&stored, chat_members);
    note("waiting for every member to have every message");
    let drain_deadline = Instant::now() + DRAIN;
    let missing_now = || {
        logs.iter()
            .map(|(conn, log)| {
                let log = log.lock().expect("log lock");
                owed.get(conn)
                    .map_or(0, |keys| log.ledger.missing(keys).count())
            })
            .sum::<usize>()
    };
    while missing_now() > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tasks.abort_all();

    // The verdict and the figures.
    let mut catchup = None;
    let mut replayed = Vec::new();
    let mut totals = Totals::default();
    let mut examples = Vec::new();
    for (conn, log) in &logs {
        let log = log.lock().expect("log lock");
        crate::stats::merge(&mut catchup, &log.catchup);
        replayed.extend_from_slice(&log.replayed);
        let keys = owed.get(conn).map_or(&[][..], Vec::as_slice);
        let flaky = members[*conn as usize].flaky;
        for key in log.ledger.missing(keys) {
            totals.missing += 1;
            if flaky {
                totals.missing_flaky += 1;
            }
            if examples.len() < EXAMPLES {
                examples.push(format!("client {conn} never got {key:?}"));
            }
        }
        totals.owed += keys.len() as u64;
        totals.duplicates += log.ledger.duplicates;
        totals.overlap_repeats += log.ledger.overlap_repeats;
        totals.out_of_order += log.ledger.out_of_order;
        totals.uncursored += log.ledger.uncursored;
        totals.reconnects += log.reconnects;
        totals.interrupted += log.interrupted;
        totals.failed_connects += log.failed_connects;
        totals.lost += log.lost;
        for (k, v) in &log.resyncs {
            *totals.resyncs.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &log.errors {
            *totals.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &log.closed_by_server {
            *totals.closed.entry(k.to_string()).or_default() += v;
        }
    }
    let resyncs: u64 = totals.resyncs.values().sum();
    let delivery_ok =
        totals.missing == 0 && totals.duplicates == 0 && totals.out_of_order == 0 && resyncs == 0;
    if totals.missing > 0 {
        report.failures.push(format!(
            "{} of {} owed deliveries never arrived ({} to flaky clients): {}",
            totals.missing,
            totals.owed,
            totals.missing_flaky,
            examples.join(", ")
        ));
    }
    if totals.duplicates > 0 {
        report.failures.push(format!(
            "{} messages came again with a cursor past the one their socket resumed from",
            totals.duplicates
        ));
    }
    if totals.out_of_order > 0 {
        report.failures.push(format!(
            "{} messages first arrived after a later one of their sender (one writer per chat)",
            totals.out_of_order
        ));
    }
    if resyncs > 0 {
        report.failures.push(format!(
            "resync_required at default settings: {:?}",
            totals.resyncs
        ));
    }

    report.integrity = integrity;
    Ok(Accounted {
        stored: stored.len() as u64,
        delivery_ok,
        totals,
        catchup,
        replayed,
    })
}

impl Accounted {
    /// The catch-ups and the deliveries as figures.
    pub fn figures(mut self, report: &mut crate::stats::Report) {
        let totals = &self.totals;
        let resyncs: u64 = totals.resyncs.values().sum();
        report.figure("reconnects", totals.reconnects);
        report.figure(
            "catchups",
            self.catchup.as_ref().map_or(0, Histogram::<u64>::len),
        );
        report.figure("catchups_interrupted", totals.interrupted);
        report.figure("failed_connects", totals.failed_connects);
        report.figure("sockets_lost", totals.lost);
        self.replayed.sort_unstable();
        let replayed = &self.replayed;
        report.figure("replayed_frames_p50", quantile(replayed, 0.50));
        report.figure("replayed_frames_p90", quantile(replayed, 0.90));
        report.figure("replayed_frames_p99", quantile(replayed, 0.99));
        report.figure("replayed_frames_max", quantile(replayed, 1.0));
        report.figure("owed_deliveries", totals.owed);
        report.figure("missing_deliveries", totals.missing);
        report.figure("duplicates_beyond_overlap", totals.duplicates);
        report.figure("overlap_repeats", totals.overlap_repeats);
        report.figure("out_of_order", totals.out_of_order);
        report.figure("new_message_without_cursor", totals.uncursored);
        report.figure("resync_required", resyncs);
        report.figure("delivery_ok", self.delivery_ok);
        report.figure(
        "problems",
            json!({"errors": totals.errors, "closed_by_server": totals.closed, "resyncs": totals.resyncs}),
        );
        report.latency("reconnect_to_synced", self.catchup.as_ref());
    }
}

/// Everything added up over the clients.
#[derive(Default)]
struct Totals {
    owed: u64,
    missing: u64,
    missing_flaky: u64,
    duplicates: u64,
    overlap_repeats: u64,
    out_of_order: u64,
    uncursored: u64,
    reconnects: u64,
    interrupted: u64,
    failed_connects: u64,
    lost: u64,
    resyncs: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    closed: BTreeMap<String, u64>,
}

/// The value at quantile `q` of sorted `values` (0 when empty).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn first_text(ws: &mut Ws) -> anyhow::Result<String> {
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            return Ok(text.to_string());
        }
    }
    anyhow::bail!("the socket closed before its first frame")
}

/// One client: its sends on schedule, its frames, and (when flaky) its drops and resumes.
struct Client {
    member: Member,
    /// The instances; the client's `k`th socket goes to `(conn + k) mod n`.
    instances: Arc<[Arc<Target>]>,
    run: Arc<str>,
    content: Arc<str>,
    counters: Arc<Counters>,
    log: Arc<Mutex<ClientLog>>,
    plan: Plan,
    /// How many clients the run has: each does its extras at its own point of their period.
    clients: usize,
    /// Told of each message the client gets for the first time: key, sent µs, received µs.
    on_delivery: Option<DeliveryHook>,
}

/// Where a client stands in its schedule, kept over all its sockets.
struct Schedule {
    next_send: Instant,
    seq: u32,
    typing: Option<Periodic>,
    edits: Option<Periodic>,
    reactions: Option<Periodic>,
    /// The message last reacted to: each reaction goes to a newer one.
    last_reacted: Option<i64>,
    /// Edits and reactions sent: what varies their text and emoji.
    extras: u64,
}

impl Schedule {
    /// When the next extra is due, if any.
    fn next_extra(&self) -> Option<Instant> {
        [&self.typing, &self.edits, &self.reactions]
            .into_iter()
            .flatten()
            .map(|p| p.next)
            .min()
    }
}

/// Why a socket's life ended.
enum SocketEnd {
    /// The client dropped it (the flaky network).
    Dropped,
    /// The server closed it or it broke.
    Lost,
}

/// What a socket is in the middle of.
struct SocketState {
    /// When the client began to (re)connect.
    began: Instant,
    /// The socket resumed with `since` and its `synced` has not come yet.
    catching_up: bool,
    /// The socket resumed (its `unread` stands ahead of the catch-up).
    resumed: bool,
}

impl Client {
    async fn run(self, first: Ws) {
        let member = self.member;
        let mut rng = SplitMix(u64::from(member.conn).wrapping_mul(0x9E37_79B9) ^ 0x5EED);
        // Sends interleave: each client starts at its own point of the period.
        let extras = self.plan.extras;
        let (start, index, clients) = (
            self.plan.start,
            member.conn as usize,
            self.clients.max(1) as f64,
        );
        let mut schedule = Schedule {
            next_send: start + self.plan.period.mul_f64(rng.unit()),
            seq: 0,
            typing: Periodic::new(extras.typing_per_sec, start, index, clients, 0.5),
            edits: Periodic::new(extras.edits_per_sec, start, index, clients, 0.25),
            reactions: Periodic::new(extras.reactions_per_sec, start, index, clients, 0.75),
            last_reacted: None,
            extras: 0,
        };
        let mut ws = Some(first);
        let mut sockets = 0usize;
        let mut state = SocketState {
            began: Instant::now(),
            catching_up: false,
            resumed: false,
        };
        loop {
            let socket = match ws.take() {
                Some(socket) => socket,
                None => {
                    if Instant::now() < self.plan.end {
                        tokio::time::sleep(self.plan.offline.mul_f64(0.5 + rng.unit())).await;
                    }
                    let began = Instant::now();
                    let resume = self.log.lock().expect("log lock").ledger.resume();
                    sockets += 1;
                    let target =
                        &self.instances[(member.conn as usize + sockets) % self.instances.len()];
                    let connected = match &resume {
                        Some((since, epoch)) => {
                            client::connect_resuming(target, member.user, *since, epoch.as_deref())
                                .await
                        }
                        None => client::connect(target, member.user, None).await,
                    };
                    let ok = connected.is_ok();
                    {
                        let mut log = self.log.lock().expect("log lock");
                        log.reconnects += 1;
                        log.failed_connects += u64::from(!ok);
                    }
                    let Ok(socket) = connected else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    state = SocketState {
                        began,
                        catching_up: resume.is_some(),
                        resumed: resume.is_some(),
                    };
                    socket
                }
            };
            let online = self.plan.online.mul_f64(0.5 + rng.unit());
            let drop_at = (member.flaky && Instant::now() < self.plan.end)
                .then(|| Instant::now() + online)
                .filter(|at| *at < self.plan.end);
            // Dropped, the socket is gone without a close frame, as when a network goes.
            let end = self.drive(socket, drop_at, &mut schedule, &mut state).await;
            {
                let mut log = self.log.lock().expect("log lock");
                log.interrupted += u64::from(state.catching_up);
                log.lost += u64::from(matches!(end, SocketEnd::Lost));
            }
            if !member.flaky && Instant::now() >= self.plan.end {
                // A steady client whose socket the server closed after the load: stay away.
                return;
            }
        }
    }

    /// Reads, sends on schedule, and drops the socket at `drop_at`.
    async fn drive(
        &self,
        mut ws: Ws,
        drop_at: Option<Instant>,
        schedule: &mut Schedule,
        state: &mut SocketState,
    ) -> SocketEnd {
        // Sends missed while away are skipped (this client has no outbox).
        let period = self.plan.period;
        while schedule.next_send < Instant::now() && schedule.next_send < self.plan.end {
            schedule.next_send += period;
        }
        loop {
            let send_at = (schedule.next_send < self.plan.end).then_some(schedule.next_send);
            let extra_at = schedule.next_extra().filter(|at| *at < self.plan.end);
            tokio::select! {
                biased;
                () = maybe_sleep(drop_at) => return SocketEnd::Dropped,
                () = maybe_sleep(send_at) => {
                    let now = Instant::now();
                    while schedule.next_send <= now && schedule.next_send < self.plan.end {
                        let key = MsgKey { conn: self.member.conn, stage: 0, seq: schedule.seq };
                        let id = msg_id(&self.run, key, micros_at(schedule.next_send));
                        if ws.feed(send_frame(self.member.chat_id, &self.content, &id)).await.is_err() {
                            return SocketEnd::Lost;
                        }
                        self.counters.sent.inc();
                        self.counters.expected_deliveries.add(self.member.recipients);
                        schedule.seq += 1;
                        schedule.next_send += period;
                    }
                    if ws.flush().await.is_err() {
                        return SocketEnd::Lost;
                    }
                }
                () = maybe_sleep(extra_at) => {
                    if self.extras(&mut ws, schedule).await.is_err() {
                        return SocketEnd::Lost;
                    }
                }
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => self.frame(&text, state),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        *self.log.lock().expect("log lock").closed_by_server.entry(code).or_default() += 1;
                        return SocketEnd::Lost;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return SocketEnd::Lost,
                },
            }
        }
    }

    /// Sends the typing refresh, edit and reaction that are due (an edit needs an acked message
    /// of its own, a reaction a newer message of another member).
    async fn extras(&self, ws: &mut Ws, schedule: &mut Schedule) -> Result<(), WsError> {
        let now = Instant::now();
        let chat_id = self.member.chat_id;
        if schedule.typing.as_mut().is_some_and(|p| p.due(now)) {
            ws.feed(typing_frame(chat_id)).await?;
            self.counters.typing_sent.inc();
        }
        let (own, received) = {
            let log = self.log.lock().expect("log lock");
            (log.last_own_message, log.last_received_message)
        };
        if schedule.edits.as_mut().is_some_and(|p| p.due(now))
            && let Some(message_id) = own
        {
            schedule.extras += 1;
            let text = format!("edited {}", schedule.extras);
            ws.feed(edit_frame(chat_id, message_id, &text)).await?;
            self.counters.edits_sent.inc();
        }
        if schedule.reactions.as_mut().is_some_and(|p| p.due(now))
            && let Some(message_id) = received
            && schedule.last_reacted != Some(message_id)
        {
            schedule.last_reacted = Some(message_id);
            schedule.extras += 1;
            let emoji = EMOJI[schedule.extras as usize % EMOJI.len()];
            ws.feed(react_frame(chat_id, message_id, emoji)).await?;
            self.counters.reactions_sent.inc();
        }
        ws.flush().await
    }

    fn frame(&self, text: &str, state: &mut SocketState) {
        let Some(frame) = Frame::parse(text) else {
            return;
        };
        let own = |key: &MsgKey| key.conn == self.member.conn;
        let id = frame
            .client_msg_id
            .as_deref()
            .and_then(|id| parse_msg_id(&self.run, id));
        let mut log = self.log.lock().expect("log lock");
        match (frame.action.as_ref(), id) {
            ("unread", _) => {
                if !state.resumed {
                    log.ledger.start(frame.cursor, frame.epoch.as_deref());
                }
            }
            ("new_message", Some((key, sent))) if !own(&key) => {
                if frame.message_id.is_some() {
                    log.last_received_message = frame.message_id;
                }
                if log.ledger.new_message(key, frame.cursor) == Received::First {
                    self.counters.delivered.inc();
                    if let Some(hook) = &self.on_delivery {
                        hook(key, sent, client::now_us());
                    }
                }
            }
            ("message_accepted", Some((key, _))) if own(&key) => {
                self.counters.accepted.inc();
                log.accepted_seqs.push(key.seq);
            }
            ("message_ack", Some((key, _))) if own(&key) => {
                self.counters.acked.inc();
                if frame.message_id.is_some() {
                    log.last_own_message = frame.message_id;
                }
            }
            ("synced", _) => {
                log.ledger.see(frame.cursor, frame.epoch.as_deref());
                if state.catching_up {
                    state.catching_up = false;
                    let micros = Instant::now().saturating_duration_since(state.began);
                    log.catchup
                        .get_or_insert_with(latency_histogram)
                        .saturating_record((micros.as_micros() as u64).max(1));
                    log.replayed.push(frame.changes.unwrap_or(0));
                }
            }
            ("resync_required", _) => {
                let reason = frame.reason.as_deref().unwrap_or("unknown").to_owned();
                *log.resyncs.entry(reason).or_default() += 1;
                log.ledger.resync(frame.cursor, frame.epoch.as_deref());
                state.catching_up = false;
            }
            ("error", _) => {
                self.counters.errors.inc();
                let code = frame.code.as_deref().unwrap_or("unknown").to_owned();
                *log.errors.entry(code).or_default() += 1;
            }
            // Own messages echoed in a catch-up, receipts, membership, edits, reactions: only
            // their cursor (and the counts of what the live traffic told).
            (action, _) => {
                match action {
                    "message_edited" => self.counters.edits_received.inc(),
                    "reaction_added" => self.counters.reactions_received.inc(),
                    "typing" if frame.state.as_deref() == Some("started") => {
                        self.counters.typing_received.inc();
                    }
                    "presence"
                        if frame.user_id.unwrap_or(0) as u64
                            >= self.counters.presence_from_user.get() =>
                    {
                        self.counters.presence_received.inc();
                    }
                    _ => {}
                }
                log.ledger.see(frame.cursor, None);
            }
        }
    }
}

async fn maybe_sleep(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A small deterministic generator (SplitMix64) for the drop and resume jitter: runs repeat.
struct SplitMix(u64);

impl SplitMix {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_counts() {
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[3], 0.99), 3);
        let v: Vec<u64> = (0..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        let mut rng = SplitMix(7);
        assert!(
            (0..1000)
                .map(|_| rng.unit())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }
}
