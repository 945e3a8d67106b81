//! A `persist` span per traced command of a batch, a child of the span that sent it, covering
//! the batch's apply and commit; its context goes on in the headers of the message's event.

use std::collections::HashMap;

use async_nats::{HeaderMap, jetstream};

/// The open `persist` spans of a batch's traced commands, by `CHAT_IN` sequence.
pub struct PersistSpans(Vec<(u64, tracing::Span)>);

impl PersistSpans {
    /// Opens a span for each command that carries trace context (none when traces are off).
    pub fn open(commands: &[jetstream::Message]) -> Self {
        if !crate::telemetry::enabled() {
            return PersistSpans(Vec::new());
        }
        let spans = commands
            .iter()
            .filter(|m| crate::telemetry::has_context(m.headers.as_ref()))
            .filter_map(|message| {
                let seq = message.info().ok()?.stream_sequence;
                let span = tracing::info_span!(
                    parent: None,
                    "persist",
                    seq,
                    subject = %message.subject,
                    batch = commands.len()
                );
                crate::telemetry::set_parent(&span, message.headers.as_ref());
                Some((seq, span))
            })
            .collect();
        PersistSpans(spans)
    }

    /// Ends the spans (the batch is committed) and returns the headers that carry each one's
    /// context on to its event.
    pub fn close(self) -> HashMap<u64, HeaderMap> {
        self.0
            .into_iter()
            .filter_map(|(seq, span)| Some((seq, crate::telemetry::context_headers(&span)?)))
            .collect()
    }
}
