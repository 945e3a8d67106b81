//! `block_user` and `unblock_user`: the user's block of another, published to `CHAT_IN` like
//! every change and answered like one (`command_applied` for a named request, an `error`
//! naming the `command_id` for a refusal). The `block_changed` frame reaches every socket of
//! the user.

use super::{
    super::{protocol::FrameError, socket_state::Socket},
    change::{MAX_AWAITED, command_id},
};
use crate::{
    bus::messages::{Command, SetBlock, VERSION},
    domain::{ErrorCode, UserId},
};

impl Socket {
    /// Publishes this user's block of `user_id` (or its lifting).
    pub(in crate::gateway) async fn block(
        &mut self,
        user_id: UserId,
        blocked: bool,
        command_id: Option<String>,
    ) -> Result<(), FrameError> {
        let (command_id, named) = self::command_id(command_id);
        if user_id == self.user_id {
            return Err(
                FrameError::new(ErrorCode::InvalidField, "you cannot block yourself")
                    .naming(&command_id),
            );
        }
        let command = Command::SetBlock(SetBlock {
            v: VERSION,
            command_id: command_id.clone(),
            user_id: self.user_id,
            blocked_id: user_id,
            blocked,
            reply_to: Some(self.reply_to()),
        });
        let subject = self.state.bus.subjects.set_block_command();
        // No `Nats-Msg-Id`: a repeat reaches the persister and is answered again.
        self.publish(subject, &command, None, None, None, None)
            .await
            .map_err(|error| error.naming(&command_id))?;
        if self.awaiting_outcome.len() >= MAX_AWAITED {
            self.awaiting_outcome.clear();
        }
        self.awaiting_outcome.insert(command_id, named);
        Ok(())
    }
}
