//! Changes to a message: `edit_message`, `delete_message`, `react` and `unreact`. Published
//! to `CHAT_IN` for a chat the user is in; whether the change is allowed is the persister's to
//! decide (a refusal comes back as an `error` frame naming the `command_id`).

use super::super::{
    protocol::{self, FrameError},
    socket_state::Socket,
};
use crate::{
    bus::messages::{Command, DeleteMessage, EditMessage, ReactToMessage, VERSION},
    domain::{ChatId, MessageId},
};

impl Socket {
    /// Publishes an edit of a message in a chat the user is in; whether it is theirs, not
    /// deleted and within `EDIT_WINDOW` is the persister's to decide (a refusal comes back
    /// as an `error` frame with the `command_id`, success as `message_edited`).
    pub(in crate::gateway) async fn edit(
        &mut self,
        edit: protocol::EditRequest,
    ) -> Result<(), FrameError> {
        let command = Command::EditMessage(EditMessage {
            v: VERSION,
            command_id: edit.command_id.clone(),
            chat_id: edit.chat_id,
            message_id: edit.message_id,
            editor_id: self.user_id,
            content: edit.content,
            reply_to: Some(self.reply_to.clone()),
        });
        self.change_message(edit.chat_id, &command, edit.command_id)
            .await
    }

    /// Publishes the deletion of a message (the author's, or moderation's over NATS).
    pub(in crate::gateway) async fn delete(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        command_id: String,
    ) -> Result<(), FrameError> {
        let command = Command::DeleteMessage(DeleteMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            message_id,
            deleter_id: Some(self.user_id),
            reply_to: Some(self.reply_to.clone()),
        });
        self.change_message(chat_id, &command, command_id).await
    }

    /// Publishes a reaction (`add`) or its withdrawal.
    pub(in crate::gateway) async fn react(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        emoji: String,
        add: bool,
        command_id: String,
    ) -> Result<(), FrameError> {
        let reaction = ReactToMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            message_id,
            user_id: self.user_id,
            emoji,
            reply_to: Some(self.reply_to.clone()),
        };
        let command = if add {
            Command::React(reaction)
        } else {
            Command::Unreact(reaction)
        };
        self.change_message(chat_id, &command, command_id).await
    }

    /// Publishes a change to a message (an edit, a deletion) of a chat the user is in; the
    /// persister decides the rest (a refusal comes back as an `error` frame naming
    /// `command_id`).
    pub(in crate::gateway) async fn change_message(
        &mut self,
        chat_id: ChatId,
        command: &Command,
        command_id: String,
    ) -> Result<(), FrameError> {
        self.check_member(chat_id)
            .await
            .map_err(|error| error.naming(&command_id))?;
        let subject = self
            .state
            .bus
            .subjects
            .admin_command(chat_id, command.kind());
        // No `Nats-Msg-Id`: a repeat must reach the persister to be answered again (applied
        // once; a refusal refused again).
        self.publish(subject, command, None, None, Some(chat_id), None)
            .await?;
        // Bounded: a socket that changes a lot without refusals keeps only the latest ids.
        if self.awaiting_outcome.len() >= 1024 {
            self.awaiting_outcome.clear();
        }
        self.awaiting_outcome.insert(command_id);
        Ok(())
    }
}
