//! The WebSocket side: the socket loop, the session that turns frames into commands, the frames
//! and the routing of events to sockets. The HTTP upgrade that opens a socket is
//! [`crate::http::ws`].

pub mod catch_up;
pub mod change_frames;
pub mod close;
mod commands;
pub mod delivered;
pub mod directory;
mod outbound;
pub mod protocol;
mod recent;
pub mod router;
pub mod session;
pub mod socket;
mod socket_state;
pub mod sync;
mod typing;
