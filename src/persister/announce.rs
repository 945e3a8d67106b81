//! The second stage: a committed batch's events, replies and dead letters go out, and only
//! then are its commands acked.

use std::{collections::HashMap, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{self, AckKind},
};

use super::{
    batch::Applied,
    dead_letters::{self, DeadLetter},
};
use crate::bus::{Bus, subjects::header_safe};

/// A batch written to the database whose events are still to be published.
pub struct Committed {
    pub applied: Applied,
    /// The commands the batch applied or refused (acked after the events are out).
    pub valid: Vec<jetstream::Message>,
    /// Commands refused for good: payloads that are no command, commands the database cannot
    /// apply (terminated after their rejections and dead letters are out).
    pub refused: Vec<jetstream::Message>,
    pub dead_letters: Vec<DeadLetter>,
    /// The trace context of each traced command's `persist` span, by `CHAT_IN` sequence, for
    /// the headers of its events (empty when traces are off).
    pub trace_headers: HashMap<u64, HeaderMap>,
}

impl Committed {
    /// The commands the batch took (applied or refused): each is acked once announced.
    pub fn command_count(&self) -> usize {
        self.valid.len() + self.refused.len()
    }

    /// Publishes the events, dead letters and replies, then acks the commands.
    #[tracing::instrument(skip_all, fields(size = self.valid.len()))]
    pub async fn announce(self, bus: &Bus) {
        let published = async {
            dead_letters::publish(bus, &self.dead_letters).await?;
            announce(bus, &self.applied, &self.trace_headers).await
        };
        if let Err(error) = published.await {
            // Committed but not announced: leave the commands unacked so the redelivery
            // re-emits.
            tracing::error!(%error, "publishing events failed; the batch will be redelivered");
            for message in self.valid.iter().chain(&self.refused) {
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
        // Refused for good: redelivery would not help.
        for message in &self.refused {
            let _ = message.ack_with(AckKind::Term).await;
        }
    }
}

/// Publishes the events (all in flight at once, then every ack awaited) and the replies.
async fn announce(
    bus: &Bus,
    applied: &Applied,
    trace_headers: &HashMap<u64, HeaderMap>,
) -> Result<(), async_nats::Error> {
    let mut messages = Vec::with_capacity(applied.events.len());
    for (i, event) in applied.events.iter().enumerate() {
        let subject = bus.subjects.chat_event(event.chat_id(), event.kind());
        let mut publish =
            jetstream::message::PublishMessage::build().payload(serde_json::to_vec(event)?.into());
        // An event continues the trace of the command behind it.
        let origin = applied.origins.get(i).copied().flatten();
        if let Some(headers) = origin.and_then(|seq| trace_headers.get(&seq)) {
            publish = publish.headers(headers.clone());
        }
        messages.push((subject, publish.message_id(header_safe(&event.key()))));
    }
    crate::bus::publish_all(&bus.jetstream, messages).await?;
    for (reply_to, outcome) in &applied.replies {
        bus.client
            .publish(reply_to.clone(), serde_json::to_vec(outcome)?.into())
            .await?;
    }
    Ok(())
}
