//! `typing`: told to the chat's other members on core NATS, stored nowhere; expired and
//! stopped for the client when it goes silent or closes.

use super::super::{protocol::FrameError, socket_state::Socket};
use crate::{
    bus::{
        live::{LiveEvent, TypingState},
        messages::VERSION,
    },
    domain::{ChatId, ErrorCode},
};

impl Socket {
    /// Tells the chat's other members that this user types (or stopped); a `stopped` for a
    /// chat the socket was not typing in tells nothing.
    pub(in crate::gateway) async fn typing(
        &mut self,
        chat_id: ChatId,
        state: TypingState,
    ) -> Result<(), FrameError> {
        self.check_member(chat_id).await?;
        match state {
            TypingState::Started => {
                let until = tokio::time::Instant::now() + self.state.config.typing_timeout;
                self.typing.started(chat_id, until);
            }
            TypingState::Stopped => {
                if !self.typing.stopped(chat_id) {
                    return Ok(());
                }
            }
        }
        self.publish_typing(chat_id, state).await
    }

    /// Publishes a typing change on core NATS (`chat.live.<chat_id>.typing`): never stored.
    pub(in crate::gateway) async fn publish_typing(
        &mut self,
        chat_id: ChatId,
        state: TypingState,
    ) -> Result<(), FrameError> {
        let timeout = self.state.config.typing_timeout;
        let event = LiveEvent::Typing {
            v: VERSION,
            chat_id,
            user_id: self.user_id,
            state,
            expires_in_ms: (state == TypingState::Started).then_some(timeout.as_millis() as u64),
        };
        let payload = serde_json::to_vec(&event).expect("live events serialise");
        self.state
            .bus
            .client
            .publish(
                self.state.bus.subjects.chat_live(chat_id, "typing"),
                payload.into(),
            )
            .await
            .map_err(|e| FrameError::new(ErrorCode::Unavailable, format!("typing not sent ({e})")))
    }

    /// Tells `stopped` for each chat whose typing ran out without a refresh.
    pub(in crate::gateway) async fn typing_expired(&mut self) {
        for chat_id in self.typing.expired(tokio::time::Instant::now()) {
            let _ = self.publish_typing(chat_id, TypingState::Stopped).await;
        }
    }

    /// Tells `stopped` for every chat still typed in (the socket closes).
    pub(in crate::gateway) async fn stop_typing(&mut self) {
        for chat_id in self.typing.take_all() {
            let _ = self.publish_typing(chat_id, TypingState::Stopped).await;
        }
    }
}
