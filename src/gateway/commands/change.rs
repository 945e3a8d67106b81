//! Changes to a message: `edit_message`, `delete_message`, `react` and `unreact`. Published
//! to `CHAT_IN` for a chat the user is in; whether the change is allowed is the persister's to
//! decide. A refusal comes back as an `error` frame naming the `command_id`; a request the
//! client named is answered with `command_applied` once applied (a no-op included).

use super::super::{
    protocol::{self, FrameError},
    socket_state::Socket,
};
use crate::{
    bus::messages::{Command, DeleteMessage, EditMessage, PinMessage, ReactToMessage, VERSION},
    domain::{ChatId, MessageId},
};

/// Most outcomes a socket awaits at once; past it the oldest ids are forgotten (their
/// outcome then comes without `command_applied`, a refusal without the id).
pub(super) const MAX_AWAITED: usize = 1024;

/// The client's `command_id`, or a new one it never hears of; and whether it was the client's.
pub(super) fn command_id(named: Option<String>) -> (String, bool) {
    match named {
        Some(id) => (id, true),
        None => (uuid::Uuid::now_v7().to_string(), false),
    }
}

impl Socket {
    /// Publishes an edit of a message in a chat the user is in; whether it is theirs, not
    /// deleted and within `EDIT_WINDOW` is the persister's to decide (success is
    /// `message_edited` to every member).
    pub(in crate::gateway) async fn edit(
        &mut self,
        edit: protocol::EditRequest,
    ) -> Result<(), FrameError> {
        let (command_id, named) = command_id(edit.command_id);
        let command = Command::EditMessage(EditMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id: edit.chat_id,
            message_id: edit.message_id,
            editor_id: self.user_id,
            content: edit.content,
            reply_to: Some(self.reply_to()),
        });
        self.change(edit.chat_id, &command, command_id, named).await
    }

    /// Publishes the deletion of one of the user's messages.
    pub(in crate::gateway) async fn delete(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        command_id: Option<String>,
    ) -> Result<(), FrameError> {
        let (command_id, named) = self::command_id(command_id);
        let command = Command::DeleteMessage(DeleteMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            message_id,
            deleter_id: Some(self.user_id),
            reply_to: Some(self.reply_to()),
        });
        self.change(chat_id, &command, command_id, named).await
    }

    /// Publishes a reaction (`add`) or its withdrawal.
    pub(in crate::gateway) async fn react(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        emoji: String,
        add: bool,
        command_id: Option<String>,
    ) -> Result<(), FrameError> {
        let (command_id, named) = self::command_id(command_id);
        let reaction = ReactToMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            message_id,
            user_id: self.user_id,
            emoji,
            reply_to: Some(self.reply_to()),
        };
        let command = if add {
            Command::React(reaction)
        } else {
            Command::Unreact(reaction)
        };
        self.change(chat_id, &command, command_id, named).await
    }

    /// Publishes a pin (`pinned`) or an unpin of a message of a chat the user is in; whether
    /// their role allows it is the persister's to decide.
    pub(in crate::gateway) async fn pin(
        &mut self,
        chat_id: ChatId,
        message_id: MessageId,
        pinned: bool,
        command_id: Option<String>,
    ) -> Result<(), FrameError> {
        let (command_id, named) = self::command_id(command_id);
        let command = Command::PinMessage(PinMessage {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            message_id,
            pinned,
            actor_id: Some(self.user_id),
            reply_to: Some(self.reply_to()),
        });
        self.change(chat_id, &command, command_id, named).await
    }

    /// Publishes a change (to a message, or the user's mute of a chat) of a chat the user is
    /// in, and awaits its outcome; the persister decides the rest.
    pub(in crate::gateway) async fn change(
        &mut self,
        chat_id: ChatId,
        command: &Command,
        command_id: String,
        named: bool,
    ) -> Result<(), FrameError> {
        let name = |error: FrameError| error.naming(&command_id);
        self.check_member(chat_id).await.map_err(name)?;
        let subject = match command {
            Command::MuteChat(_) => self.state.bus.subjects.mute_command(chat_id),
            _ => self
                .state
                .bus
                .subjects
                .admin_command(chat_id, command.kind()),
        };
        // No `Nats-Msg-Id`: a repeat must reach the persister to be answered again (applied
        // once; a refusal refused again).
        self.publish(subject, command, None, None, Some(chat_id), None)
            .await
            .map_err(name)?;
        if self.awaiting_outcome.len() >= MAX_AWAITED {
            self.awaiting_outcome.clear();
        }
        self.awaiting_outcome.insert(command_id, named);
        Ok(())
    }
}
