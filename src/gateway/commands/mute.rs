//! `mute` and `unmute`: no push notifications for a chat until a time (or for ever).

use super::{super::protocol::FrameError, change::command_id};
use crate::{
    bus::messages::{Command, MuteChat, VERSION},
    domain::ChatId,
};

impl super::super::socket_state::Socket {
    /// Publishes the user's mute (or unmute) of a chat; the `chat_muted` frame that follows
    /// reaches every socket of theirs, a refusal this one as an `error` frame, and a request
    /// the client named is answered with `command_applied`.
    pub(in crate::gateway) async fn mute(
        &mut self,
        chat_id: ChatId,
        until: Option<chrono::DateTime<chrono::Utc>>,
        mute_mentions: bool,
        command_id: Option<String>,
    ) -> Result<(), FrameError> {
        let (command_id, named) = self::command_id(command_id);
        let command = Command::MuteChat(MuteChat {
            v: VERSION,
            command_id: command_id.clone(),
            chat_id,
            user_id: self.user_id,
            muted_until: until,
            mute_mentions,
            reply_to: Some(self.reply_to()),
        });
        self.change(chat_id, &command, command_id, named).await
    }
}
