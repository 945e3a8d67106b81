//! `presence`: who of a chat's members is online, answered with `presence_state`.

use axum::extract::ws::Utf8Bytes;

use super::super::{
    protocol::{FrameError, ServerFrame},
    socket_state::Socket,
};
use crate::domain::{ChatId, ErrorCode};

impl Socket {
    /// The `presence_state` of a chat the user belongs to.
    pub(in crate::gateway) async fn presence(
        &mut self,
        chat_id: ChatId,
    ) -> Result<Utf8Bytes, FrameError> {
        self.check_member(chat_id).await?;
        let presence = &self.state.presence;
        let members = Box::pin(presence.of_chat_seen_by(&self.state.db, chat_id, self.user_id))
            .await
            .map_err(|_| {
                FrameError::new(ErrorCode::Unavailable, "database unavailable, retry later")
            })?;
        Ok(ServerFrame::PresenceState {
            chat_id,
            enabled: presence.enabled(),
            members: &members,
        }
        .render())
    }
}
