//! The WebSocket frames: what clients send (the Python service's frames plus jetchat's) and
//! what the server answers. See `docs/protocol.md`.
//!
//! - `client`: a client's text frame parsed into a [`Request`], or a [`FrameError`] naming
//!   what is wrong with it;
//! - `server`: the frames the server writes ([`ServerFrame`]);
//! - `schema`: the JSON Schemas of both, for client authors and the contract test.

mod client;
mod schema;
mod server;

pub use client::*;
pub use schema::*;
pub use server::*;
