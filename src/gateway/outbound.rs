//! What the socket writes besides the answers to its frames: JetStream's acks of its publishes
//! (`message_accepted`) and the router's items (`message_ack`, `new_message`, the frames of
//! changes, the persister's refusals), each turned into a frame once.

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::SinkExt;

use super::{
    protocol::{FrameError, ServerFrame},
    router::{LiveMessage, Outbound},
    socket_state::{Published, Sink, Socket},
};
use crate::{bus::messages::Outcome, domain::ErrorCode, metrics::FrameOut, store::queries};

impl Socket {
    /// Turns a JetStream acknowledgement into `message_accepted` (or an error).
    pub(in crate::gateway) async fn published(
        &mut self,
        published: Published,
    ) -> Option<Utf8Bytes> {
        let Published {
            client_msg_id,
            chat_id,
            result,
            resend,
        } = published;
        match (result, client_msg_id) {
            (Ok(ack), Some(id)) => {
                if ack.duplicate {
                    // A retry of a send JetStream already has: if it is stored, ack it now.
                    let stored = Box::pin(queries::message_by_client_id(
                        &self.state.db,
                        self.user_id,
                        &id,
                    ))
                    .await;
                    match stored {
                        Ok(Some(m)) => {
                            self.awaiting_ack.remove(&id);
                            let ack = ServerFrame::MessageAck {
                                client_msg_id: &id,
                                message_id: m.id,
                                chat_id: m.chat_id,
                                timestamp: m.created_at,
                            };
                            return Some(self.frame(ack));
                        }
                        // Not stored: the first send was refused (or is still on its way).
                        // Published again without its dedupe id, the persister answers this
                        // one: the refusal again, or the message (stored once whatever came
                        // first), acked.
                        Ok(None) => {
                            if let Some((subject, payload)) = resend {
                                let again = self
                                    .publish_payload(
                                        subject,
                                        payload,
                                        None,
                                        Some(id.clone()),
                                        chat_id,
                                        None,
                                        None,
                                    )
                                    .await;
                                return match again {
                                    Ok(()) => None,
                                    Err(error) => {
                                        self.awaiting_ack.remove(&id);
                                        Some(self.refuse(&error))
                                    }
                                };
                            }
                        }
                        Err(_) => {}
                    }
                }
                self.state.metrics.messages_accepted.inc();
                Some(self.frame(ServerFrame::MessageAccepted {
                    client_msg_id: &id,
                    chat_id,
                }))
            }
            (Ok(_), None) => None,
            (Err(e), id) => {
                if let Some(id) = &id {
                    self.awaiting_ack.remove(id);
                }
                let error = FrameError::new(
                    ErrorCode::Unavailable,
                    format!("not accepted ({e}); retry with the same client_msg_id"),
                );
                Some(self.refuse(&error.about(id.as_deref())))
            }
        }
    }

    /// Writes what the router handed over.
    pub(in crate::gateway) async fn outbound(
        &mut self,
        item: Outbound,
        sink: &mut Sink,
    ) -> Result<(), axum::Error> {
        let frame = match item {
            Outbound::Message(message) => match self.message_frame(&message) {
                Some(frame) => frame,
                None => return Ok(()),
            },
            Outbound::Frame(kind, frame, cursor) => {
                if cursor != 0 && cursor <= self.sync_floor {
                    return Ok(()); // the catch-up sent it
                }
                self.state.metrics.frame_out(kind);
                Utf8Bytes::clone(&frame)
            }
            Outbound::Left(chat_id) => {
                self.chats.remove(&chat_id);
                self.peers.retain(|_, c| *c != chat_id);
                return Ok(());
            }
            Outbound::Joined(m) => {
                self.joined(*m);
                return Ok(());
            }
            Outbound::Close(close) => {
                self.closing = Some(close);
                return Ok(());
            }
            Outbound::Reply(outcome) => {
                let applied = match &*outcome {
                    Outcome::Applied { command_id, .. } | Outcome::Muted { command_id, .. } => {
                        Some(command_id)
                    }
                    _ => None,
                };
                if let Some(command_id) = applied {
                    // A request the client named is answered, a no-op too.
                    if self.awaiting_outcome.remove(command_id) != Some(true) {
                        return Ok(());
                    }
                    let frame = self.frame(ServerFrame::CommandApplied { command_id });
                    return sink.feed(Message::Text(frame)).await;
                }
                let Outcome::Rejected {
                    command_id,
                    code,
                    detail,
                    ..
                } = *outcome
                else {
                    return Ok(());
                };
                let id = self.awaiting_ack.take(&command_id);
                let change = self
                    .awaiting_outcome
                    .remove(&command_id)
                    .map(|_| command_id);
                self.frame(ServerFrame::Error {
                    code,
                    detail: &detail,
                    error: &detail,
                    client_msg_id: id.as_deref(),
                    command_id: change.as_deref(),
                    retry_after_ms: None,
                })
            }
        };
        sink.feed(Message::Text(frame)).await
    }

    /// `message_ack` for this socket's own send, `new_message` otherwise, nothing for a repeat.
    pub(in crate::gateway) fn message_frame(&mut self, message: &LiveMessage) -> Option<Utf8Bytes> {
        let view = &message.view;
        let first_time = self
            .recent
            .insert(view.message_id, view.chat_id, view.sender_id);
        // A send this socket waits on is acked even when the message was seen before (a retry).
        if view.sender_id == self.user_id && self.awaiting_ack.remove(&view.client_msg_id) {
            return Some(self.frame(ServerFrame::MessageAck {
                client_msg_id: &view.client_msg_id,
                message_id: view.message_id,
                chat_id: view.chat_id,
                timestamp: view.timestamp,
            }));
        }
        if !first_time || message.cursor.is_some_and(|c| c <= self.sync_floor) {
            return None; // a redelivered or caught-up message this socket already has
        }
        if self.state.config.auto_delivered && view.sender_id != self.user_id {
            self.delivered.insert(view.chat_id, view.message_id);
        }
        let metrics = &self.state.metrics;
        metrics.frame_out(FrameOut::NewMessage);
        metrics.messages_delivered.inc();
        Some(message.frame.clone())
    }
}
