//! The persister: a durable pull consumer on `CHAT_IN` that writes each batch of commands in
//! one transaction, publishes the resulting events to `CHAT_EVENTS`, and acks the commands
//! only after both — so a crash at any point means redelivery, never loss.

pub mod batch;

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{PullConsumer, pull::MessagesError as PullError},
    context::PublishAckFuture,
};
use futures_util::StreamExt;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::bus::{
    Bus,
    messages::{Command, Event},
};
use batch::{Applied, Incoming, Rules};

/// How the persister groups commands into transactions.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most commands in one transaction.
    pub size: usize,
    /// How long to wait for more commands after the first of a batch, when fewer than `size`
    /// are at hand. Each commit writes every page it touched (the tables' and the indexes'
    /// leaves) to the WAL, so a few more commands per commit cost far less per command.
    pub linger: Duration,
}

/// Runs until `shutdown`; the batches in hand are finished first.
///
/// Two stages, so the database and NATS work at the same time: this task decodes and commits
/// batch N+1 while a second one publishes batch N's events and acks its commands. At most one
/// committed batch waits for the second stage, and events leave in commit order.
pub async fn run(
    bus: Bus,
    db: DatabaseConnection,
    consumer: PullConsumer,
    batching: Batching,
    rules: Rules,
    shutdown: CancellationToken,
) {
    let (committed, mut to_announce) = tokio::sync::mpsc::channel::<Committed>(1);
    let announcer = tokio::spawn({
        let bus = bus.clone();
        async move {
            while let Some(batch) = to_announce.recv().await {
                batch.announce(&bus).await;
            }
        }
    });
    write_batches(&db, &consumer, batching, &rules, &committed, &shutdown).await;
    drop(committed);
    let _ = announcer.await;
}

/// The first stage: pulls, decodes and commits batches until `shutdown`.
async fn write_batches(
    db: &DatabaseConnection,
    consumer: &PullConsumer,
    batching: Batching,
    rules: &Rules,
    committed: &tokio::sync::mpsc::Sender<Committed>,
    shutdown: &CancellationToken,
) {
    loop {
        let stream = consumer
            .stream()
            .max_messages_per_batch(batching.size)
            // Short pulls with frequent heartbeats: after a NATS node dies the pull is renewed
            // (and reaches the consumer's new leader) within seconds.
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages()
            .await;
        let mut pulled = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "persister cannot pull yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                first = pulled.next() => first,
            };
            let Some(first) = first else { break };
            let (messages, ended) = gather(first, &mut pulled, batching, shutdown).await;
            if !messages.is_empty() {
                let Some(batch) = commit(db, messages, rules, shutdown).await else {
                    return;
                };
                if committed.send(batch).await.is_err() {
                    return;
                }
            }
            if ended {
                break; // the pull is renewed
            }
        }
    }
}

/// A batch: `first`, what else is ready, and what arrives until the linger is over, up to
/// `size` commands; `true` when the pull ended meanwhile. (A timeout polls its future before
/// its deadline, so a zero linger still takes what is ready.)
async fn gather(
    first: Result<jetstream::Message, PullError>,
    pulled: &mut (impl futures_util::Stream<Item = Result<jetstream::Message, PullError>> + Unpin),
    batching: Batching,
    shutdown: &CancellationToken,
) -> (Vec<jetstream::Message>, bool) {
    let mut messages = Vec::with_capacity(batching.size);
    keep(&mut messages, first);
    let deadline = tokio::time::Instant::now() + batching.linger;
    while messages.len() < batching.size {
        let more = tokio::select! {
            biased;
            // Only a linger waits: shutting down ends it, and what is in hand is written.
            _ = shutdown.cancelled(), if !batching.linger.is_zero() => break,
            more = tokio::time::timeout_at(deadline, pulled.next()) => more,
        };
        match more {
            Ok(Some(item)) => keep(&mut messages, item),
            Ok(None) => return (messages, true),
            Err(_) => break,
        }
    }
    (messages, false)
}

/// Adds a pulled message to the batch (a failed pull is logged; the pull goes on).
fn keep(messages: &mut Vec<jetstream::Message>, item: Result<jetstream::Message, PullError>) {
    match item {
        Ok(message) => messages.push(message),
        Err(error) => tracing::warn!(%error, "pull failed"),
    }
}

/// A batch written to the database whose events are still to be published.
struct Committed {
    applied: Applied,
    /// The commands the batch applied (acked after the events are out).
    valid: Vec<jetstream::Message>,
    /// Payloads that are no command (terminated after their rejections are out).
    unreadable: Vec<jetstream::Message>,
}

/// Decodes and commits one batch, retrying while the database fails; `None` on shutdown.
#[tracing::instrument(skip_all, fields(size = messages.len()))]
async fn commit(
    db: &DatabaseConnection,
    messages: Vec<jetstream::Message>,
    rules: &Rules,
    shutdown: &CancellationToken,
) -> Option<Committed> {
    let mut incoming = Vec::with_capacity(messages.len());
    let mut valid = Vec::with_capacity(messages.len());
    let mut unreadable = Vec::new();
    let mut rejections = Vec::new();
    for message in messages {
        match read(&message) {
            Ok(command) => {
                incoming.push(command);
                valid.push(message);
            }
            Err(error) => {
                tracing::warn!(%error, subject = %message.subject, "undecodable command refused");
                rejections.push(unreadable_command(
                    &message.subject,
                    &message.payload,
                    &error,
                ));
                unreadable.push(message);
            }
        }
    }
    let mut backoff = Duration::from_millis(100);
    let mut applied = loop {
        match write(db, &incoming, rules).await {
            Ok(applied) => break applied,
            Err(error) => {
                tracing::error!(%error, "persisting a batch failed; retrying");
                for message in &valid {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
                tokio::select! {
                    // Not acked: JetStream redelivers these to whoever persists next.
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    applied.events.extend(rejections);
    Some(Committed {
        applied,
        valid,
        unreadable,
    })
}

impl Committed {
    /// The second stage: publishes the events and replies, then acks the commands.
    #[tracing::instrument(skip_all, fields(size = self.valid.len()))]
    async fn announce(self, bus: &Bus) {
        if let Err(error) = announce(bus, &self.applied).await {
            // Committed but not announced: leave the commands unacked so the redelivery
            // re-emits.
            tracing::error!(%error, "publishing events failed; the batch will be redelivered");
            for message in self.valid.iter().chain(&self.unreadable) {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
            return;
        }
        for message in &self.valid {
            if let Err(error) = message.ack().await {
                tracing::warn!(%error, "ack failed; the command will be redelivered and found stored");
            }
        }
        // Refused for good: no version of jetchat can read them, redelivery would not help.
        for message in &self.unreadable {
            let _ = message.ack_with(AckKind::Term).await;
        }
    }
}

/// The `command_rejected` event for a payload that is not a command: its id is the payload's
/// `command_id` or `client_msg_id` when it has one, so the sender can still correlate.
fn unreadable_command(subject: &str, payload: &[u8], error: &serde_json::Error) -> Event {
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| value.as_ref()?.get(name)?.as_str().map(str::to_owned);
    let mut tokens = subject.rsplit('.');
    let kind = tokens.next().unwrap_or_default().to_owned();
    let chat_id = tokens.next().and_then(|t| t.parse().ok());
    Event::CommandRejected(crate::bus::messages::CommandRejected {
        v: crate::bus::messages::VERSION,
        command_id: field("command_id")
            .or_else(|| field("client_msg_id"))
            .unwrap_or_default(),
        command: field("type").unwrap_or(kind),
        chat_id,
        code: "invalid_command".into(),
        detail: format!("not a valid command: {error}"),
    })
}

/// Decodes a `CHAT_IN` message with its sequence and stored time.
pub fn read(message: &jetstream::Message) -> Result<Incoming, serde_json::Error> {
    let (seq, published) = match message.info() {
        Ok(info) => (info.stream_sequence, stored_at(info.published)),
        Err(_) => (0, chrono::Utc::now()),
    };
    let command = decode(&message.subject, &message.payload)?;
    Ok(Incoming {
        seq,
        published,
        command,
    })
}

/// Applies a batch in one transaction (the persister's and `reproject`'s write path).
pub async fn write(
    db: &DatabaseConnection,
    incoming: &[Incoming],
    rules: &Rules,
) -> Result<Applied, DbErr> {
    let txn = db.begin().await?;
    let applied = batch::apply(&txn, incoming, rules).await?;
    txn.commit().await?;
    Ok(applied)
}

/// Publishes the events (all in flight at once, then every ack awaited) and the replies.
async fn announce(bus: &Bus, applied: &Applied) -> Result<(), async_nats::Error> {
    let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(applied.events.len());
    for event in &applied.events {
        let subject = bus.subjects.chat_event(event.chat_id(), event.kind());
        let publish = jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(event)?.into())
            .message_id(dedupe_id(event));
        acks.push(bus.jetstream.send_publish(subject, publish).await?);
    }
    for ack in acks {
        ack.await?;
    }
    for (reply_to, outcome) in &applied.replies {
        bus.client
            .publish(reply_to.clone(), serde_json::to_vec(outcome)?.into())
            .await?;
    }
    Ok(())
}

/// When JetStream stored a command, as the database records it.
fn stored_at(published: time::OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(published.unix_timestamp(), published.nanosecond())
        .unwrap_or_else(chrono::Utc::now)
}

/// `Nats-Msg-Id` of an event, so a re-emitted event is stored once in `CHAT_EVENTS`.
fn dedupe_id(event: &Event) -> String {
    let command = |id: &Option<String>| id.clone().unwrap_or_else(|| "-".into());
    match event {
        Event::MessageCreated(e) => format!("created:{}", e.message.message_id),
        Event::Receipt(e) => {
            let status = match e.status {
                crate::domain::ReceiptStatus::Delivered => "delivered",
                crate::domain::ReceiptStatus::Read => "read",
            };
            format!(
                "receipt:{}:{}:{status}:{}",
                e.chat_id, e.user_id, e.message_id
            )
        }
        Event::ChatCreated(e) => format!("chat:{}:{}", e.chat.chat_id, command(&e.command_id)),
        Event::MemberAdded(e) => format!(
            "member:{}:{}:{}",
            e.chat_id,
            e.user_id,
            command(&e.command_id)
        ),
        Event::MemberRemoved(e) => format!(
            "left:{}:{}:{}",
            e.chat_id,
            e.user_id,
            command(&e.command_id)
        ),
        Event::ChatRenamed(e) => format!("renamed:{}:{}", e.chat_id, command(&e.command_id)),
        Event::MessageDeleted(e) => format!("deleted:{}", e.message_id),
        Event::CommandRejected(e) => format!("rejected:{}:{}", e.command, e.command_id),
    }
}

/// Reads a command; `type` and `chat_id` may be left out when the subject implies them
/// (`chat.in.7.message` is a `send_message` into chat 7), which keeps hand-written
/// commands from Django short.
pub fn decode(subject: &str, payload: &[u8]) -> Result<Command, serde_json::Error> {
    if let Ok(command) = serde_json::from_slice(payload) {
        return Ok(command);
    }
    let mut value: serde_json::Value = serde_json::from_slice(payload)?;
    if let Some(object) = value.as_object_mut() {
        let mut tokens = subject.rsplit('.');
        let kind = tokens.next().unwrap_or_default();
        let chat = tokens.next().and_then(|t| t.parse::<i64>().ok());
        let implied = match kind {
            "message" => Some("send_message"),
            "receipt" => Some("receipt"),
            "create" => Some("create_chat"),
            "add_members" => Some("add_members"),
            "remove_members" => Some("remove_members"),
            "rename" => Some("rename_chat"),
            "delete_message" => Some("delete_message"),
            _ => None,
        };
        if let (false, Some(kind)) = (object.contains_key("type"), implied) {
            object.insert("type".into(), kind.into());
        }
        if let (false, Some(chat)) = (object.contains_key("chat_id"), chat) {
            object.insert("chat_id".into(), chat.into());
        }
        if !object.contains_key("client_msg_id") && kind == "message" {
            object.insert(
                "client_msg_id".into(),
                uuid::Uuid::now_v7().to_string().into(),
            );
        }
        if !object.contains_key("content_type") && kind == "message" {
            object.insert("content_type".into(), "text".into());
        }
    }
    serde_json::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_fills_in_what_the_payload_leaves_out() {
        let cmd = decode("chat.in.7.message", br#"{"sender_id":1,"content":"hi"}"#).unwrap();
        let Command::SendMessage(m) = cmd else {
            panic!("not a message")
        };
        assert_eq!(m.chat_id, Some(7));
        assert_eq!(m.sender_id, 1);
        assert!(!m.client_msg_id.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode("chat.in.7.message", b"nope").is_err());
        assert!(decode("chat.in.7.message", br#"{"content":"no sender"}"#).is_err());
    }
}
