//! `send_message`: a message into a chat, or to a user (the private chat is made on first
//! use), published to `CHAT_IN` under its dedupe id; JetStream's ack becomes
//! `message_accepted`, the persister's commit `message_ack`.

use tracing::Instrument as _;

use super::super::{
    protocol::{FrameError, SendRequest},
    socket_state::Socket,
};
use crate::{
    bus::{
        Subjects,
        messages::{Command, SendMessage, VERSION},
    },
    domain::ErrorCode,
};

impl Socket {
    pub(in crate::gateway) async fn send(&mut self, send: SendRequest) -> Result<(), FrameError> {
        let id = send.client_msg_id.clone();
        // The chat first (membership may need the database), the subject from it after.
        let (chat_id, receiver_id) = match (send.chat_id, send.receiver_id) {
            (Some(chat_id), _) => {
                self.check_member(chat_id)
                    .await
                    .map_err(|e| e.about(Some(&id)))?;
                // A private chat this socket writes to by its peer: the same way again.
                match self.direct_peer(chat_id) {
                    Some(peer) => (None, Some(peer)),
                    None => (Some(chat_id), None),
                }
            }
            (None, Some(receiver)) if receiver == self.user_id => {
                return Err(FrameError::new(
                    ErrorCode::InvalidField,
                    "you cannot send a private message to yourself",
                )
                .about(Some(&id)));
            }
            (None, Some(receiver)) if self.direct.contains(&receiver) => (None, Some(receiver)),
            (None, Some(receiver)) => match self.peers.get(&receiver) {
                Some(&chat_id) => (Some(chat_id), None),
                None => {
                    // The chat may not exist yet: this send makes it, and until the socket
                    // hears of it the next ones would take another way; they all go this one.
                    self.direct.insert(receiver);
                    (None, Some(receiver))
                }
            },
            (None, None) => unreachable!("protocol::parse requires a chat or a receiver"),
        };
        let subjects = &self.state.bus.subjects;
        let subject = match chat_id {
            Some(chat_id) => subjects.message_command(chat_id),
            None => subjects.direct_message_command(),
        };
        let command = Command::SendMessage(SendMessage {
            v: VERSION,
            sender_id: self.user_id,
            chat_id,
            receiver_id,
            content: send.content,
            content_type: send.content_type,
            file_url: send.file_url,
            file_id: send.file_id,
            client_msg_id: send.client_msg_id,
            reply_to_message_id: send.reply_to_message_id,
            forwarded_from: send.forwarded_from,
            mentions: send.mentions,
            reply_to: Some(self.reply_to()),
        });
        let dedupe = Subjects::message_dedupe_id(self.user_id, &id);
        // The root of the message's trace (not a child of the socket's long-lived span); no
        // span at all without traces.
        let span = if crate::telemetry::enabled() {
            tracing::info_span!(parent: None, "send_message", user_id = self.user_id, chat_id)
        } else {
            tracing::Span::none()
        };
        let trace = crate::telemetry::context_headers(&span);
        self.publish(
            subject,
            &command,
            Some(dedupe),
            Some(id.clone()),
            chat_id,
            trace,
        )
        .instrument(span)
        .await?;
        self.awaiting_ack.insert(id);
        Ok(())
    }

    /// The other user of private chat `chat_id`, if this socket sends to them by
    /// `receiver_id` ([`Socket::direct`]).
    fn direct_peer(&self, chat_id: crate::domain::ChatId) -> Option<crate::domain::UserId> {
        if self.direct.is_empty() {
            return None;
        }
        self.peers
            .iter()
            .find(|&(peer, &chat)| chat == chat_id && self.direct.contains(peer))
            .map(|(&peer, _)| peer)
    }
}
