//! The dead-letter stream (`<PREFIX>_DLQ`): commands refused because no retry could apply
//! them — the database refused them, a handler failed on them, or they are no command at
//! all — kept as they came, with why, for operators to read and, once the cause is fixed,
//! to replay (`jetchat dlq`). Business refusals (not a member, no such chat) are answers,
//! not dead letters.
//!
//! A letter an operator removed (`jetchat dlq --remove`) leaves a removal record in the same
//! stream ([`removal_subject`]): its `CHAT_IN` sequence and code, no payload. `reproject`
//! reads it and does not apply the removed command, as the live persister did not.

use crate::domain::ErrorCode;
use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;

use crate::bus::{Bus, subjects::header_safe};

/// The subject the command was published on.
pub const HEADER_SUBJECT: &str = "Jetchat-Subject";
/// Its `CHAT_IN` sequence.
pub const HEADER_SEQUENCE: &str = "Jetchat-Stream-Sequence";
/// The error code of its refusal (`invalid_data`, `id_conflict`, `internal_error`,
/// `invalid_command`).
pub const HEADER_CODE: &str = "Jetchat-Error-Code";
/// The sentence of its refusal.
pub const HEADER_ERROR: &str = "Jetchat-Error";
/// On a command `jetchat dlq --replay` published to `CHAT_IN` again: the `CHAT_IN` sequence of
/// the dead-lettered command it replays (`reproject` skips that one, as the persister did).
pub const HEADER_REPLAY_OF: &str = "Jetchat-Replay-Of";

/// Where the removal records are kept: `chat.dlq.removed` (letters are under `chat.dlq.in.>`).
pub fn removal_subject(bus: &Bus) -> String {
    bus.subjects.dead_letter("removed")
}

/// The dead letters waiting for an operator: the stream's messages but the removal records.
pub async fn waiting(bus: &Bus) -> Result<u64, async_nats::Error> {
    use futures_util::TryStreamExt as _;
    let stream = bus
        .jetstream
        .get_stream(bus.subjects.dead_letter_stream())
        .await?;
    let messages = stream.cached_info().state.messages;
    let mut removals = stream.info_with_subjects(removal_subject(bus)).await?;
    let mut removed = 0;
    while let Some((_, count)) = removals.try_next().await? {
        removed += count as u64;
    }
    Ok(messages.saturating_sub(removed))
}

/// A refused command as it is kept.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The subject `CHAT_IN` stored it under.
    pub subject: String,
    pub sequence: u64,
    pub payload: Bytes,
    pub code: ErrorCode,
    pub error: String,
}

impl DeadLetter {
    /// The refused `message` of `CHAT_IN`.
    pub fn of(message: &jetstream::Message, code: ErrorCode, error: String) -> Self {
        DeadLetter {
            subject: message.subject.to_string(),
            sequence: message.info().map_or(0, |i| i.stream_sequence),
            payload: message.payload.clone(),
            code,
            error,
        }
    }
}

/// Publishes the dead letters and waits for JetStream to store each one (once: a redelivered
/// batch publishes the same `Nats-Msg-Id`).
pub async fn publish(bus: &Bus, letters: &[DeadLetter]) -> Result<(), async_nats::Error> {
    let messages = letters
        .iter()
        .map(|letter| {
            let mut headers = HeaderMap::new();
            // As published, not as a partitioned stream stored it: a replay is partitioned anew.
            let subject = bus.subjects.published_as(&letter.subject);
            headers.insert(HEADER_SUBJECT, header_safe(&subject).as_str());
            headers.insert(HEADER_SEQUENCE, letter.sequence.to_string().as_str());
            headers.insert(HEADER_CODE, letter.code.as_str());
            // Header values are one line.
            headers.insert(HEADER_ERROR, one_line(&letter.error).as_str());
            let publish = jetstream::message::PublishMessage::build()
                .payload(letter.payload.clone())
                .headers(headers)
                .message_id(format!("dlq:{}", letter.sequence));
            (bus.subjects.dead_letter(&letter.subject), publish)
        })
        .collect();
    crate::bus::publish_all(&bus.jetstream, messages).await
}

/// `text` without line breaks or other control characters, at most 1,000 characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_fit_a_header() {
        assert_eq!(super::one_line("a\r\nb\0c"), "a  b c");
        assert_eq!(super::one_line(&"x".repeat(5000)).len(), 1000);
    }
}
