//! What the router hands a socket: shared, pre-rendered items, each about a pointer in size.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use crate::{
    bus::messages::Outcome,
    domain::ChatId,
    domain::{MessageStatus, MessageView},
    gateway::protocol::ServerFrame,
    media::UrlSigner,
    metrics::FrameOut,
    store::queries,
};

/// A persisted message, decoded once and rendered once as `new_message`.
pub struct LiveMessage {
    pub view: MessageView,
    pub frame: Utf8Bytes,
    /// Its place in the change journal (none for a message read back from history).
    pub cursor: Option<u64>,
}

impl LiveMessage {
    /// Renders the shared `new_message` frame (an upload's URL signed once for everyone).
    pub fn new(mut view: MessageView, signer: &UrlSigner, cursor: Option<u64>) -> Arc<Self> {
        signer.sign_view(&mut view, chrono::Utc::now());
        let frame = ServerFrame::NewMessage {
            message: &view,
            status: MessageStatus::Sent,
            cursor,
        }
        .render();
        Arc::new(LiveMessage {
            view,
            frame,
            cursor,
        })
    }
}

/// The router's end of a socket's queue: it only ever `try_send`s (a full queue kicks the
/// socket; the router never waits for one).
pub type Outbox = flume::Sender<Outbound>;

/// The socket's end of its queue.
pub type Inbox = flume::Receiver<Outbound>;

/// A socket's queue of `capacity` items. flume's, not tokio's: it allocates nothing until an
/// item waits in it, where tokio's takes a block of 32 slots (~800 B) at once, so an idle
/// socket (most of them, at any time) costs that much less.
pub fn queue(capacity: usize) -> (Outbox, Inbox) {
    flume::bounded(capacity)
}

/// What the router hands a socket.
pub enum Outbound {
    /// A message in one of the socket's chats.
    Message(Arc<LiveMessage>),
    /// A frame rendered once for every socket that gets it (behind an `Arc`: every variant is
    /// about a pointer, which keeps each socket's queue small), with its kind for the metrics
    /// and the change's cursor (0: the frame is no stored change).
    Frame(FrameOut, Arc<Utf8Bytes>, u64),
    /// The socket's user is now a member of this chat.
    Joined(Box<queries::Membership>),
    /// The socket's user is no longer a member of this chat.
    Left(ChatId),
    /// An outcome addressed to this socket (a refused command).
    /// Boxed: rare and large, it would otherwise size every slot of every socket's queue.
    Reply(Box<Outcome>),
    /// The socket is to close with this reason, after the frames queued before it.
    Close(crate::gateway::close::Close),
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    /// Every socket's queue allocates slots of this size in blocks: keep it a few words.
    #[test]
    fn outbound_items_stay_small() {
        assert!(
            std::mem::size_of::<Outbound>() <= 40,
            "{} bytes",
            std::mem::size_of::<Outbound>()
        );
    }
}
