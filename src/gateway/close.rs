//! Why the server closes a socket, as close codes and reasons (docs/protocol.md).

/// Why the server closes a socket; each is a close code in `docs/protocol.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// The server shuts down: reconnect, to another instance.
    GoingAway,
    /// A frame over `MAX_FRAME_BYTES`.
    TooBig,
    /// The socket's token expired (plus `TOKEN_EXPIRY_GRACE`) and was not refreshed.
    TokenExpired,
    /// The socket fell `SOCKET_QUEUE` frames behind.
    SlowConsumer,
    /// The client kept sending over its rate limit, ignoring the refusals.
    RateLimited,
    /// The socket's user was erased (`erase_user`): nothing of theirs is left to serve.
    Erased,
}

impl Close {
    /// The close code.
    pub fn code(self) -> u16 {
        match self {
            Close::GoingAway => 1001,
            Close::TooBig => 1009,
            Close::TokenExpired => 4001,
            Close::SlowConsumer => 4008,
            Close::RateLimited => 4029,
            Close::Erased => 4010,
        }
    }

    /// The close frame's reason (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Close::GoingAway => "server shutting down",
            Close::TooBig => "frame exceeds the size limit",
            Close::TokenExpired => "token expired; reconnect with a new token",
            Close::SlowConsumer => "too many undelivered frames; reconnect and read history",
            Close::RateLimited => "too many frames over the rate limit",
            Close::Erased => "the user was erased; do not reconnect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_the_documented_ones() {
        let all = [
            Close::GoingAway,
            Close::TooBig,
            Close::TokenExpired,
            Close::SlowConsumer,
            Close::RateLimited,
            Close::Erased,
        ];
        let codes: Vec<u16> = all.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [1001, 1009, 4001, 4008, 4029, 4010]);
        let protocol = include_str!("../../docs/protocol.md");
        for close in all {
            assert!(
                close.reason().len() <= 123,
                "{close:?}: a close reason fits 123 bytes"
            );
            assert!(
                protocol.contains(&format!("| {} |", close.code())),
                "docs/protocol.md lists {}",
                close.code()
            );
        }
    }
}
