//! The client side of jetchat's WebSocket protocol (`docs/protocol.md`): connecting, the frames
//! a client sends, reading the frames it gets, and the message ids that carry their own send
//! time so that no shared state is needed to time a message.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures_util::{
    StreamExt, TryStreamExt,
    stream::{self, SplitSink, SplitStream},
};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::Semaphore,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

pub use crate::msg_id::{MsgKey, msg_id, parse_msg_id};
use crate::{counters::Counters, stats::latency_histogram, target::Target};

/// A client socket to jetchat.
pub type Ws = WebSocketStream<TcpStream>;
/// The writing half of a socket.
pub type WsSink = SplitSink<Ws, Message>;
/// The reading half of a socket.
pub type WsStream = SplitStream<Ws>;

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 16 * 1024;

/// How long one WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant every timestamp of the run counts from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`].
pub fn now_us() -> u64 {
    micros_at(Instant::now())
}

/// Microseconds from [`epoch`] to `at`.
pub fn micros_at(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_micros() as u64
}

/// A short id for this run, the prefix of all its `client_msg_id`s.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:08x}", (mixed >> 32) as u32)
}

/// Opens an authenticated socket for `user_id`, optionally from a given loopback source
/// address (each one has its own ~28,000 ephemeral ports).
pub async fn connect(target: &Target, user_id: i64, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    connect_with(target, user_id, source, None).await
}

/// [`connect`], optionally with a fixed kernel receive buffer (`SO_RCVBUF`, set before the
/// handshake so that the advertised window follows it; the kernel doubles the value and no
/// longer auto-tunes it): a client that stops reading then stalls the server's writes
/// after that much instead of after the auto-tuned maximum (tens of MB on loopback).
pub async fn connect_with(
    target: &Target,
    user_id: i64,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> anyhow::Result<Ws> {
    let url = target.ws_url(&target.token(user_id));
    open(target, url, user_id, source, recv_buffer).await
}

/// [`connect`] for a client coming back: `?since=<cursor>&epoch=<epoch>`, so that the socket
/// first gets what it missed, then `synced` (docs/protocol.md, "Reconnect without gaps").
pub async fn connect_resuming(
    target: &Target,
    user_id: i64,
    since: i64,
    epoch: Option<&str>,
) -> anyhow::Result<Ws> {
    let mut url = format!("{}&since={since}", target.ws_url(&target.token(user_id)));
    if let Some(epoch) = epoch {
        url.push_str("&epoch=");
        url.extend(url::form_urlencoded::byte_serialize(epoch.as_bytes()));
    }
    open(target, url, user_id, None, None).await
}

async fn open(
    target: &Target,
    url: String,
    user_id: i64,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> anyhow::Result<Ws> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(bytes) = recv_buffer {
        socket
            .set_recv_buffer_size(bytes)
            .context("setting SO_RCVBUF")?;
    }
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding a socket to {ip}"))?;
    }
    let handshake = async {
        let tcp = socket
            .connect(target.addr)
            .await
            .with_context(|| format!("connecting to {}", target.addr))?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
            .await
            .with_context(|| format!("WebSocket handshake for user {user_id}"))?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .context("WebSocket handshake timed out")?
}

/// Smaller buffers than tungstenite's defaults: its read buffer (128 KiB) is zero-filled on
/// every read, which would cost the load generator memory (20,000 idle sockets) and CPU.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// Opens one socket per user, `concurrency` handshakes at a time, in the users' order.
pub async fn connect_all(
    target: &Target,
    users: &[i64],
    concurrency: usize,
) -> anyhow::Result<Vec<Ws>> {
    stream::iter(users.iter().copied())
        .map(|user| connect(target, user, None))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// Content of the given length, the same for every message (the server does not care).
pub fn content(bytes: usize) -> String {
    let pattern = "jetchat load test ";
    pattern.chars().cycle().take(bytes.max(1)).collect()
}

/// `send_message` into a chat. `content` must need no JSON escaping (see [`content`]).
pub fn send_frame(chat_id: i64, content: &str, client_msg_id: &str) -> Message {
    Message::Text(
        format!(
            r#"{{"action":"send_message","chat_id":{chat_id},"content":"{content}","content_type":"text","client_msg_id":"{client_msg_id}"}}"#
        )
        .into(),
    )
}

/// `acknowledge` (read) of a message.
pub fn acknowledge_frame(chat_id: i64, message_id: i64) -> Message {
    Message::Text(
        format!(r#"{{"action":"acknowledge","chat_id":{chat_id},"message_id":{message_id}}}"#)
            .into(),
    )
}

/// `typing` (started) in a chat: the refresh a client sends every few seconds while its user types.
pub fn typing_frame(chat_id: i64) -> Message {
    Message::Text(format!(r#"{{"action":"typing","chat_id":{chat_id}}}"#).into())
}

/// `edit_message` of one's own message. `content` must need no JSON escaping.
pub fn edit_frame(chat_id: i64, message_id: i64, content: &str) -> Message {
    Message::Text(
        format!(
            r#"{{"action":"edit_message","chat_id":{chat_id},"message_id":{message_id},"content":"{content}"}}"#
        )
        .into(),
    )
}

/// `react` to a message with one emoji.
pub fn react_frame(chat_id: i64, message_id: i64, emoji: &str) -> Message {
    Message::Text(
        format!(
            r#"{{"action":"react","chat_id":{chat_id},"message_id":{message_id},"emoji":"{emoji}"}}"#
        )
        .into(),
    )
}

/// The fields of a server frame the load generator looks at; the rest is skipped.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    #[serde(borrow, default)]
    pub client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub message_id: Option<i64>,
    #[serde(default)]
    pub chat_id: Option<i64>,
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    /// Where a stored change stands in the order of all changes (and `unread`/`synced`'s
    /// position).
    #[serde(default)]
    pub cursor: Option<i64>,
    /// The database the cursors belong to (`unread`, `synced`, `resync_required`).
    #[serde(borrow, default)]
    pub epoch: Option<Cow<'a, str>>,
    /// `synced`: how many changes the catch-up sent.
    #[serde(default)]
    pub changes: Option<u64>,
    /// `resync_required`: why the catch-up could not be exact.
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
    /// `presence`, `typing`: whom it is about.
    #[serde(default)]
    pub user_id: Option<i64>,
    /// `typing`: `started` or `stopped`.
    #[serde(borrow, default)]
    pub state: Option<Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    /// Parses a text frame; `None` for anything that is not a JSON object with an action.
    pub fn parse(text: &'a str) -> Option<Frame<'a>> {
        serde_json::from_str(text).ok()
    }
}

/// What one socket saw, by stage. Readers fill it; the scenario reads it (also mid-run,
/// between rate steps), so it sits behind an uncontended mutex.
#[derive(Default)]
pub struct ConnLog {
    pub stages: Vec<StageLog>,
    /// `error` frames by code.
    pub errors: BTreeMap<String, u64>,
    pub status_updates: u64,
    /// `new_message` frames whose sequence did not follow the sender's previous one.
    pub reordered: u64,
    /// The close code, when the server closed the socket.
    pub closed_with: Option<u16>,
    /// The newest of this socket's own messages that was acked, and the newest message of
    /// another member that reached it: what an edit and a reaction are aimed at.
    pub last_own_message: Option<i64>,
    pub last_received_message: Option<i64>,
    last_seq: HashMap<(u32, u16), u32>,
}

/// One stage's figures for one socket.
#[derive(Default)]
pub struct StageLog {
    /// Send → `message_accepted` (µs), this socket's sends.
    pub accepted: Option<Histogram<u64>>,
    /// Send → `message_ack` (µs), this socket's sends.
    pub acked: Option<Histogram<u64>>,
    /// Send → `new_message` here (µs), other sockets' sends.
    pub delivered: Option<Histogram<u64>>,
    /// Sequence numbers of this socket's sends that were accepted.
    pub accepted_seqs: Vec<u32>,
    pub acked_count: u64,
    pub delivered_count: u64,
    /// When the last `message_ack` / `new_message` of the stage arrived (µs since the epoch).
    pub last_ack_us: u64,
    pub last_delivery_us: u64,
}

impl ConnLog {
    /// The log of `stage`, created on first use.
    pub fn stage(&mut self, stage: u16) -> &mut StageLog {
        let i = usize::from(stage);
        if self.stages.len() <= i {
            self.stages.resize_with(i + 1, StageLog::default);
        }
        &mut self.stages[i]
    }
}

fn record(histogram: &mut Option<Histogram<u64>>, micros: u64) {
    histogram
        .get_or_insert_with(latency_histogram)
        .saturating_record(micros.max(1));
}

/// Per stage, the send time (µs since the epoch) from which messages are timed: those sent
/// during a stage's warm-up are counted but left out of the histograms.
#[derive(Clone)]
pub struct Warmups(Arc<Vec<AtomicU64>>);

impl Warmups {
    /// Room for `stages` stages, every message timed until [`Warmups::set`] says otherwise.
    pub fn new(stages: usize) -> Warmups {
        Warmups(Arc::new(
            (0..stages.max(1)).map(|_| AtomicU64::new(0)).collect(),
        ))
    }

    /// Messages of `stage` sent before `from_us` are not timed.
    pub fn set(&self, stage: u16, from_us: u64) {
        if let Some(w) = self.0.get(usize::from(stage)) {
            w.store(from_us, Ordering::Relaxed);
        }
    }

    /// Whether a message of `stage` sent at `sent_us` is timed.
    pub fn timed(&self, stage: u16, sent_us: u64) -> bool {
        self.0
            .get(usize::from(stage))
            .is_none_or(|w| sent_us >= w.load(Ordering::Relaxed))
    }
}

/// Called for every `new_message` of the run a socket receives: key, sent µs, received µs.
pub type DeliveryHook = Arc<dyn Fn(MsgKey, u64, u64) + Send + Sync>;

/// What a reader needs to know and where it reports.
#[derive(Clone)]
pub struct ReaderCtx {
    pub run: Arc<str>,
    /// This socket's index: frames about its own sends are `message_accepted`/`message_ack`.
    pub conn: u32,
    pub counters: Arc<Counters>,
    /// Which messages are timed (those sent after their stage's warm-up).
    pub warmups: Warmups,
    pub log: Arc<Mutex<ConnLog>>,
    pub on_delivery: Option<DeliveryHook>,
    /// Released once per own send that was acked or refused (a send window).
    pub on_settled: Option<Arc<Semaphore>>,
}

/// Reads a socket until it closes (or the task is aborted), logging every frame.
pub async fn read_frames(stream: WsStream, ctx: ReaderCtx) {
    read_frames_until(stream, ctx, std::future::pending()).await;
}

/// Reads a socket, logging every frame, until it closes (`None`) or `stop` completes: then
/// the socket is handed back unread from there on (a reader that stops reading).
pub async fn read_frames_until(
    mut stream: WsStream,
    ctx: ReaderCtx,
    stop: impl Future<Output = ()>,
) -> Option<WsStream> {
    let mut stop = std::pin::pin!(stop);
    loop {
        let message = tokio::select! {
            biased;
            () = &mut stop => return Some(stream),
            message = stream.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => ctx.frame(&text),
            Some(Ok(Message::Close(frame))) => {
                ctx.log.lock().expect("log lock").closed_with =
                    Some(frame.map_or(1005, |f| u16::from(f.code)));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    ctx.counters.closed.inc();
    None
}

impl ReaderCtx {
    fn frame(&self, text: &str) {
        let now = now_us();
        let Some(frame) = Frame::parse(text) else {
            return;
        };
        let id = frame
            .client_msg_id
            .as_deref()
            .and_then(|id| parse_msg_id(&self.run, id));
        let mut log = self.log.lock().expect("log lock");
        match (frame.action.as_ref(), id) {
            ("message_accepted", Some((key, sent))) if key.conn == self.conn => {
                self.counters.accepted.inc();
                let stage = log.stage(key.stage);
                stage.accepted_seqs.push(key.seq);
                if self.warmups.timed(key.stage, sent) {
                    record(&mut stage.accepted, now.saturating_sub(sent));
                }
            }
            ("message_ack", Some((key, sent))) if key.conn == self.conn => {
                self.counters.acked.inc();
                if frame.message_id.is_some() {
                    log.last_own_message = frame.message_id;
                }
                let stage = log.stage(key.stage);
                stage.acked_count += 1;
                stage.last_ack_us = stage.last_ack_us.max(now);
                if self.warmups.timed(key.stage, sent) {
                    record(&mut stage.acked, now.saturating_sub(sent));
                }
                if let Some(window) = &self.on_settled {
                    window.add_permits(1);
                }
            }
            ("new_message", Some((key, sent))) if key.conn != self.conn => {
                self.counters.delivered.inc();
                if frame.message_id.is_some() {
                    log.last_received_message = frame.message_id;
                }
                let last = log.last_seq.entry((key.conn, key.stage)).or_insert(0);
                let in_order = key.seq >= *last;
                *last = key.seq.saturating_add(1);
                if !in_order {
                    log.reordered += 1;
                }
                let stage = log.stage(key.stage);
                stage.delivered_count += 1;
                stage.last_delivery_us = stage.last_delivery_us.max(now);
                if self.warmups.timed(key.stage, sent) {
                    record(&mut stage.delivered, now.saturating_sub(sent));
                }
                if let Some(hook) = &self.on_delivery {
                    hook(key, sent, now);
                }
            }
            ("status_update", _) => log.status_updates += 1,
            ("message_edited", _) => self.counters.edits_received.inc(),
            ("reaction_added", _) => self.counters.reactions_received.inc(),
            ("typing", _) if frame.state.as_deref() == Some("started") => {
                self.counters.typing_received.inc();
            }
            ("presence", _)
                if frame.user_id.unwrap_or(0) as u64 >= self.counters.presence_from_user.get() =>
            {
                self.counters.presence_received.inc();
            }
            ("error", id) => {
                self.counters.errors.inc();
                let code = frame.code.as_deref().unwrap_or("unknown");
                *log.errors.entry(code.to_owned()).or_default() += 1;
                if let (Some(window), Some((key, _))) = (&self.on_settled, id)
                    && key.conn == self.conn
                {
                    window.add_permits(1);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_without_their_content() {
        let text = r#"{"action":"new_message","message_id":42,"chat_id":7,"sender_id":1,"receiver_id":null,"content":"a \"quoted\" word","content_type":"text","file_url":null,"client_msg_id":"r-1-0-2-3","timestamp":"2026-11-24T10:00:00.000000+00:00","status":"sent"}"#;
        let frame = Frame::parse(text).unwrap();
        assert_eq!(frame.action, "new_message");
        assert_eq!(frame.message_id, Some(42));
        assert_eq!(frame.chat_id, Some(7));
        assert_eq!(frame.client_msg_id.as_deref(), Some("r-1-0-2-3"));
        let error =
            Frame::parse(r#"{"action":"error","code":"forbidden","detail":"no","error":"no"}"#)
                .unwrap();
        assert_eq!(error.code.as_deref(), Some("forbidden"));
    }

    #[test]
    fn outgoing_frames_are_valid_json() {
        let content = content(40);
        let Message::Text(text) = send_frame(3, &content, "id-1") else {
            unreachable!()
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["action"], "send_message");
        assert_eq!(value["content"].as_str().unwrap().len(), 40);
        let Message::Text(text) = acknowledge_frame(3, 9) else {
            unreachable!()
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["message_id"], 9);
        let Message::Text(text) = typing_frame(3) else {
            unreachable!()
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (value["action"].as_str(), value["chat_id"].as_i64()),
            (Some("typing"), Some(3))
        );
        let Message::Text(text) = edit_frame(3, 9, &content) else {
            unreachable!()
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (value["action"].as_str(), value["message_id"].as_i64()),
            (Some("edit_message"), Some(9))
        );
        for emoji in crate::scenario::live::EMOJI {
            let Message::Text(text) = react_frame(3, 9, emoji) else {
                unreachable!()
            };
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["emoji"].as_str(), Some(*emoji));
        }
    }

    #[test]
    fn edits_and_reactions_are_counted_and_aimed_at_the_newest_messages() {
        let counters = Arc::new(Counters::default());
        let log = Arc::new(Mutex::new(ConnLog::default()));
        let ctx = ReaderCtx {
            run: "deadbeef".into(),
            conn: 0,
            counters: counters.clone(),
            warmups: Warmups::new(1),
            log: log.clone(),
            on_delivery: None,
            on_settled: None,
        };
        let mine = msg_id(
            "deadbeef",
            MsgKey {
                conn: 0,
                stage: 0,
                seq: 0,
            },
            1,
        );
        let theirs = msg_id(
            "deadbeef",
            MsgKey {
                conn: 1,
                stage: 0,
                seq: 0,
            },
            1,
        );
        ctx.frame(&format!(
            r#"{{"action":"message_ack","chat_id":7,"client_msg_id":"{mine}","message_id":41}}"#
        ));
        ctx.frame(&format!(
            r#"{{"action":"new_message","chat_id":7,"client_msg_id":"{theirs}","message_id":42}}"#
        ));
        ctx.frame(r#"{"action":"message_edited","chat_id":7,"message_id":41,"content":"x"}"#);
        ctx.frame(r#"{"action":"reaction_added","chat_id":7,"message_id":42,"emoji":"👍"}"#);
        ctx.frame(r#"{"action":"reaction_removed","chat_id":7,"message_id":42,"emoji":"👍"}"#);
        let log = log.lock().unwrap();
        assert_eq!(
            (log.last_own_message, log.last_received_message),
            (Some(41), Some(42))
        );
        assert_eq!(counters.edits_received.get(), 1);
        assert_eq!(counters.reactions_received.get(), 1, "only additions count");
    }

    #[test]
    fn typing_and_presence_frames_are_counted() {
        let counters = Arc::new(Counters::default());
        let ctx = ReaderCtx {
            run: "deadbeef".into(),
            conn: 0,
            counters: counters.clone(),
            warmups: Warmups::new(1),
            log: Arc::new(Mutex::new(ConnLog::default())),
            on_delivery: None,
            on_settled: None,
        };
        ctx.frame(
            r#"{"action":"typing","chat_id":7,"user_id":1,"state":"started","expires_in_ms":6000}"#,
        );
        ctx.frame(r#"{"action":"typing","chat_id":7,"user_id":1,"state":"stopped"}"#);
        ctx.frame(r#"{"action":"presence","user_id":2,"status":"online","last_seen":null}"#);
        assert_eq!(counters.typing_received.get(), 1, "only started counts");
        assert_eq!(counters.presence_received.get(), 1);
        counters.presence_from_user.add(3);
        ctx.frame(r#"{"action":"presence","user_id":2,"status":"offline","last_seen":null}"#);
        ctx.frame(r#"{"action":"presence","user_id":3,"status":"online","last_seen":null}"#);
        assert_eq!(
            counters.presence_received.get(),
            2,
            "only about users from 3 on"
        );
    }
}
