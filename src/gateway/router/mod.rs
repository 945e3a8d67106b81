//! Interest-based routing of events to this instance's sockets.
//!
//! One task (`task`) owns the routing. It subscribes to a chat's event subject while at least
//! one local socket belongs to that chat, so NATS sends each instance only what it needs and a
//! group message is one publish however many members it has. Each event is decoded and
//! rendered once, then shared by every socket.
//!
//! Which sockets an item goes to is the `table`'s answer: sockets, their users and chats,
//! with no NATS and no tasks. The subscriptions live in `keyed_streams`, which polls only
//! the chats that have something and removes one without looking at the others, so the cost of
//! an event does not grow with the number of routed chats.
//!
//! Membership events (`chat_created`, `member_added`) are watched for every chat, so a socket
//! starts receiving a chat the moment its user joins it. A subscription that starts because of
//! such an event is caught up from the database: events published before NATS had the new
//! subscription would otherwise be missed.
//!
//! Beside its events, each routed chat has an ephemeral subject (`chat.live.<chat_id>.*`,
//! core NATS, in no stream) for typing and presence: same interest, nothing to catch up.

mod handle;
mod keyed_streams;
mod outbound;
mod table;
mod task;

pub use handle::RouterHandle;
pub use outbound::{Inbox, LiveMessage, Outbound, Outbox, queue};
pub use table::TooManySockets;
pub use task::spawn;

/// A socket's id, unique within this instance.
pub type ConnId = u64;
