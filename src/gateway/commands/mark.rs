//! `delivered`, `acknowledge` (`read`): the user's marks of messages, and the server's own
//! delivered marks (`AUTO_DELIVERED`) handed to the instance's gatherer.

use super::super::{protocol::FrameError, socket_state::Socket};
use crate::{
    bus::messages::{Command, MarkReceipt, VERSION},
    domain::{ChatId, ErrorCode, MessageId, ReceiptStatus},
    store::queries,
};

impl Socket {
    pub(in crate::gateway) async fn mark(
        &mut self,
        message_id: MessageId,
        chat_id: Option<ChatId>,
        status: ReceiptStatus,
    ) -> Result<(), FrameError> {
        let not_found = || {
            FrameError::new(
                ErrorCode::NotFound,
                format!("message {message_id} does not exist"),
            )
        };
        // Messages this socket was just handed need no database read.
        let (message_chat, sender_id) = match self.recent.get(message_id) {
            Some(known) => known,
            None => Box::pin(queries::message(&self.state.db, message_id))
                .await
                .map_err(|_| {
                    FrameError::new(ErrorCode::Unavailable, "database unavailable, retry later")
                })?
                .map(|m| (m.chat_id, m.sender_id))
                .ok_or_else(not_found)?,
        };
        if chat_id.is_some_and(|c| c != message_chat) {
            return Err(not_found());
        }
        // A stranger learns nothing about the message: same answer as for a missing one.
        self.check_member(message_chat)
            .await
            .map_err(|_| not_found())?;
        if sender_id == self.user_id {
            return Err(FrameError::new(
                ErrorCode::Forbidden,
                "you cannot mark your own message",
            ));
        }
        self.publish_receipt(message_chat, message_id, status).await
    }

    pub(in crate::gateway) async fn publish_receipt(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        status: ReceiptStatus,
    ) -> Result<(), FrameError> {
        let command = Command::Receipt(MarkReceipt {
            v: VERSION,
            user_id: self.user_id,
            chat_id,
            message_id,
            status,
            reply_to: Some(self.reply_to()),
        });
        let subject = self.state.bus.subjects.receipt_command(chat_id);
        self.publish(subject, &command, None, None, Some(chat_id), None)
            .await
    }

    /// Hands what this socket has pushed to the instance's gatherer of delivered marks
    /// (`gateway::delivered`), which publishes them for every socket at once. These marks are
    /// the server's own doing: they do not count against the user's mark limit.
    pub(in crate::gateway) fn report_delivered(&mut self) {
        if !self.delivered.is_empty() {
            self.state
                .delivered_marks
                .add(self.user_id, std::mem::take(&mut self.delivered));
        }
    }
}
