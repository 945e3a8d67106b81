//! What each frame does, one file per command or family (mini-redis's `cmd/`): each is an
//! `impl Socket` block the session's loop hands a parsed [`super::protocol::Request`] to.

mod block;
mod change;
mod group;
mod mark;
mod mute;
mod presence;
mod send;
mod token;
mod typing;
