//! `refresh_token`: a new token of the same user moves the socket's deadline.

use axum::extract::ws::Utf8Bytes;

use super::super::{
    protocol::{FrameError, ServerFrame},
    socket_state::{Socket, deadline},
};
use crate::domain::ErrorCode;

impl Socket {
    /// Moves the socket's deadline to a new token's `exp`, if the token is good and the user's;
    /// otherwise the socket keeps the deadline it had.
    pub(in crate::gateway) fn refresh(&mut self, token: &str) -> Utf8Bytes {
        match self.state.keys.verify_access(token) {
            Err(error) => self.refuse(&FrameError::new(
                ErrorCode::InvalidToken,
                format!("{error}; the socket keeps its current token"),
            )),
            Ok(token) if token.user_id != self.user_id => self.refuse(&FrameError::new(
                ErrorCode::Forbidden,
                "the token is another user's; the socket keeps its current token",
            )),
            Ok(token) => {
                self.expires_at = deadline(&self.state, token.exp);
                crate::gateway::directory::record_claims(
                    &self.state,
                    self.user_id,
                    token.profile.as_ref(),
                );
                self.frame(ServerFrame::TokenRefreshed { exp: token.exp })
            }
        }
    }
}
