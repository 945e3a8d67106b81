//! `jetchat dlq`: the dead-letter stream (`CHAT_DLQ`) for operators — what was refused and
//! why, and, once the cause is fixed, a replay that publishes a command to `CHAT_IN` again
//! (it gets a new sequence, so a replayed message is ordered after everything before the
//! replay) and removes it from the dead letters; or, for a letter that is no command to
//! replay, its removal alone, recorded in the stream so that a rebuild does not apply it
//! either.

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{Consumer, DeliverPolicy, pull::OrderedConfig};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use std::collections::HashSet;

use crate::{
    bus::{Bus, subjects::header_safe},
    domain::ErrorCode,
    persister::dead_letters::{
        HEADER_CODE, HEADER_ERROR, HEADER_REPLAY_OF, HEADER_SEQUENCE, HEADER_SUBJECT,
        removal_subject,
    },
};

/// One dead letter as `jetchat dlq` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Letter {
    /// Its sequence in the dead-letter stream (what `--replay` takes).
    pub seq: u64,
    /// When it was dead-lettered.
    pub time: DateTime<Utc>,
    /// The subject and `CHAT_IN` sequence the command first had.
    pub subject: String,
    pub original_seq: u64,
    pub code: String,
    pub error: String,
    /// The command as it was published (lossy UTF-8).
    pub payload: String,
}

/// Every dead letter, oldest first.
pub async fn list(bus: &Bus) -> anyhow::Result<Vec<Letter>> {
    let removal = removal_subject(bus);
    Ok(read_all(bus)
        .await?
        .into_iter()
        .filter(|letter| letter.subject_in_stream != removal)
        .map(|letter| letter.letter)
        .collect())
}

/// The `CHAT_IN` sequences of the commands the persister dead-lettered that were not
/// replayed: the dead letters waiting and those an operator removed (`--remove`).
pub async fn not_replayed(bus: &Bus) -> anyhow::Result<HashSet<u64>> {
    Ok(read_all(bus)
        .await?
        .into_iter()
        .map(|letter| letter.letter.original_seq)
        .filter(|&seq| seq > 0)
        .collect())
}

/// A message of the dead-letter stream: a letter, or the record of a removed one.
struct Stored {
    letter: Letter,
    /// Its subject in the dead-letter stream ([`removal_subject`] for a removal record).
    subject_in_stream: String,
}

async fn read_all(bus: &Bus) -> anyhow::Result<Vec<Stored>> {
    let config = OrderedConfig {
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    };
    let name = bus.subjects.dead_letter_stream();
    let consumer = super::ordered_consumer(bus, name, config).await?;
    let consumer_name = consumer.cached_info().name.clone();
    let letters = read_letters(consumer).await;
    super::delete_consumer(bus, name, &consumer_name).await;
    letters
}

async fn read_letters(consumer: Consumer<OrderedConfig>) -> anyhow::Result<Vec<Stored>> {
    let mut letters = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(letters);
    }
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (seq, last) = (info.stream_sequence, info.pending == 0);
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let time = DateTime::from_timestamp(info.published.unix_timestamp(), 0).unwrap_or_default()
            + chrono::Duration::nanoseconds(i64::from(info.published.nanosecond()));
        letters.push(Stored {
            letter: Letter {
                seq,
                time,
                subject: header(HEADER_SUBJECT),
                original_seq: header(HEADER_SEQUENCE).parse().unwrap_or(0),
                code: header(HEADER_CODE),
                error: header(HEADER_ERROR),
                payload: String::from_utf8_lossy(&message.payload).into_owned(),
            },
            subject_in_stream: message.subject.to_string(),
        });
        if last {
            break;
        }
    }
    Ok(letters)
}

/// Publishes the dead letters `seqs` (all of them when `None`) to `CHAT_IN` again and removes
/// each from the dead letters once JetStream has it; returns `(dead-letter seq, new CHAT_IN
/// seq)` for each. Letters of code `invalid_command` are no commands and would only be refused
/// again: unless `force`, nothing is published when one is among them.
pub async fn replay(
    bus: &Bus,
    seqs: Option<&[u64]>,
    force: bool,
) -> anyhow::Result<Vec<(u64, u64)>> {
    let letters = list(bus).await?;
    if let Some(seqs) = seqs {
        all_known(&letters, seqs)?;
    }
    let selected = |letter: &&Letter| seqs.is_none_or(|seqs| seqs.contains(&letter.seq));
    let no_commands: Vec<String> = letters
        .iter()
        .filter(selected)
        .filter(|l| l.code == ErrorCode::InvalidCommand.as_str())
        .map(|l| l.seq.to_string())
        .collect();
    if !no_commands.is_empty() && !force {
        let seqs = no_commands.join(" ");
        bail!(
            "dead letters {seqs} are {}: no commands, replayed they are refused again. Fix \
             their publisher and remove them (`jetchat dlq --remove {seqs}`); nothing was \
             replayed (--force replays them anyway)",
            ErrorCode::InvalidCommand.as_str()
        );
    }
    let stream = dead_letter_stream(bus).await?;
    let mut replayed = Vec::new();
    for letter in letters {
        if seqs.is_some_and(|seqs| !seqs.contains(&letter.seq)) {
            continue;
        }
        if !letter
            .subject
            .starts_with(&bus.subjects.all_commands().replace('>', ""))
        {
            bail!(
                "dead letter {} came from {:?}, which is not a command subject",
                letter.seq,
                letter.subject
            );
        }
        // Named as a replay, so that `reproject` skips the command it replays, as the
        // persister did: the rebuild applies it at this sequence, as the live one did.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_REPLAY_OF, letter.original_seq.to_string().as_str());
        let ack = bus
            .jetstream
            .publish_with_headers(
                letter.subject.clone(),
                headers,
                letter.payload.clone().into(),
            )
            .await?
            .await
            .with_context(|| format!("publishing dead letter {} again", letter.seq))?;
        stream
            .delete_message(letter.seq)
            .await
            .with_context(|| format!("removing dead letter {}", letter.seq))?;
        replayed.push((letter.seq, ack.sequence));
    }
    Ok(replayed)
}

/// Removes the dead letters `seqs` without publishing them (an operator has dealt with them:
/// a payload that is no command, a command that must not run). Each leaves a removal record
/// (its `CHAT_IN` sequence and code, without the payload) so that `reproject` does not apply
/// it either. Nothing is removed when one of them is not a dead letter; returns the
/// sequences removed.
pub async fn remove(bus: &Bus, seqs: &[u64]) -> anyhow::Result<Vec<u64>> {
    let letters = list(bus).await?;
    all_known(&letters, seqs)?;
    let stream = dead_letter_stream(bus).await?;
    let mut removed = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if removed.contains(&seq) {
            continue;
        }
        let letter = letters
            .iter()
            .find(|l| l.seq == seq)
            .expect("checked by all_known");
        // The record first: a removal that stops half-way leaves the letter listed, never
        // a command a rebuild would apply.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_SUBJECT, header_safe(&letter.subject).as_str());
        headers.insert(HEADER_SEQUENCE, letter.original_seq.to_string().as_str());
        headers.insert(HEADER_CODE, header_safe(&letter.code).as_str());
        headers.insert(
            HEADER_ERROR,
            "removed by an operator (jetchat dlq --remove)",
        );
        bus.jetstream
            .publish_with_headers(removal_subject(bus), headers, bytes::Bytes::new())
            .await?
            .await
            .with_context(|| format!("recording the removal of dead letter {seq}"))?;
        stream
            .delete_message(seq)
            .await
            .with_context(|| format!("removing dead letter {seq}"))?;
        removed.push(seq);
    }
    Ok(removed)
}

/// Fails, naming it, when one of `seqs` is not the sequence of a dead letter.
fn all_known(letters: &[Letter], seqs: &[u64]) -> anyhow::Result<()> {
    match seqs.iter().find(|s| !letters.iter().any(|l| l.seq == **s)) {
        Some(missing) => bail!("no dead letter has sequence {missing}"),
        None => Ok(()),
    }
}

async fn dead_letter_stream(bus: &Bus) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    bus.jetstream
        .get_stream(bus.subjects.dead_letter_stream())
        .await
        .context("the dead-letter stream")
}

/// The letters as a table for a terminal.
pub fn render(letters: &[Letter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    let mut out = String::new();
    for l in letters {
        out.push_str(&format!(
            "#{seq}  {time}  {subject} (was {original})  {code}: {error}\n    {payload}\n",
            seq = l.seq,
            time = l.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            subject = l.subject,
            original = l.original_seq,
            code = l.code,
            error = l.error,
            payload = l.payload,
        ));
    }
    out
}
