//! `mute` and `unmute`: no push notifications for a chat until a time (or for ever).

use super::super::{protocol::FrameError, socket_state::Socket};
use crate::{
    bus::messages::{Command, MuteChat, VERSION},
    domain::ChatId,
};

impl Socket {
    /// Publishes the user's mute (or unmute) of a chat; the `chat_muted` frame that follows
    /// reaches every socket of theirs, a refusal this one as an `error` frame.
    pub(in crate::gateway) async fn mute(
        &mut self,
        chat_id: ChatId,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), FrameError> {
        self.check_member(chat_id).await?;
        let command = Command::MuteChat(MuteChat {
            v: VERSION,
            command_id: uuid::Uuid::now_v7().to_string(),
            chat_id,
            user_id: self.user_id,
            muted_until: until,
            reply_to: Some(self.reply_to.clone()),
        });
        let subject = self.state.bus.subjects.mute_command(chat_id);
        self.publish(subject, &command, None, None, Some(chat_id), None)
            .await
    }
}
