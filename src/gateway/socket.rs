//! One client's socket: a single task that reads frames, hands them to its session, writes
//! the frames the router hands it through a bounded queue, and ends with a closing handshake
//! (RFC 6455 §5.5.1) whoever closes.

use crate::domain::ErrorCode;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt, stream::SplitStream};
use tracing::Instrument as _;

use super::{close::Close, protocol::FrameError, session::Session, socket_state::Sink};
use crate::metrics::{FrameIn, Metrics};

/// Frames written before a flush.
const WRITE_BATCH: usize = 64;

/// Publishes awaiting JetStream's ack, per socket, beyond which the socket reads no more
/// frames until acks come back: back-pressure on a client that sends faster than JetStream
/// stores, instead of a queue that grows with it (or refusals it would have to resend).
pub const MAX_IN_FLIGHT_PUBLISHES: usize = 256;

/// How long, after its close frame, the server waits for the client's before it drops the
/// connection (closing first with the client's frames unread could reset the connection and
/// lose the close frame on the way).
const CLOSE_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

type Stream = SplitStream<WebSocket>;

/// How the frame loop ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The client sent its close frame; tungstenite has queued the answer.
    ClientClosed,
    /// The connection is gone (reset, end of stream, a failed write): nothing more to send.
    Gone,
    /// The server closes it.
    Server(Close),
}

/// Serves one socket until it closes, the server shuts down, or it is kicked.
///
/// Every socket's task is this future, so its size is memory per socket: the WebSocket is split
/// (into halves on the heap) before the task starts, the session comes boxed and is unpacked
/// once, and the large, brief futures of the loop (a frame's handling, the delivered report)
/// are boxed while they run.
pub fn serve(ws: WebSocket, session: Box<Session>) -> impl Future<Output = ()> {
    let span = tracing::info_span!(
        "socket",
        user_id = session.socket.user_id,
        conn = session.socket.conn
    );
    let (sink, stream) = ws.split();
    run(sink, stream, session).instrument(span)
}

async fn run(mut sink: Sink, mut stream: Stream, session: Box<Session>) {
    let Session {
        mut socket,
        mut inbox,
        kick,
        _registration,
    } = Session::unboxed(session);
    tracing::debug!(chats = socket.chats.len(), "socket open");
    let state = socket.state.clone();
    let _open = OpenSocket::counted(&state.metrics);
    let close_grace = state.config.socket_close_grace;
    let lifetime = tokio::time::sleep_until(socket.expires_at);
    tokio::pin!(lifetime);
    // A client that stops reading can leave a write waiting for ever, with the kick or the
    // shutdown never seen: after a grace period the connection is dropped instead.
    let session = async {
        let mut report_at: Option<tokio::time::Instant> = None;
        // Boxed: the greeting's queries and catch-up make the largest future of the loop, and
        // it runs once (in the task, it was ~2 KB of every socket's memory).
        let greeted = Box::pin(socket.greet(&mut sink, &mut inbox)).await;
        let ending = loop {
            let typing_until = socket.typing.next_deadline();
            if greeted.is_err() {
                break Ending::Gone;
            }
            let written = tokio::select! {
                biased;
                _ = kick.cancelled() => {
                    break Ending::Server(if state.shutdown.is_cancelled() {
                        Close::GoingAway
                    } else {
                        Close::SlowConsumer
                    });
                }
                _ = &mut lifetime => break Ending::Server(Close::TokenExpired),
                _ = tokio::time::sleep_until(report_at.unwrap_or_else(tokio::time::Instant::now)), if report_at.is_some() => {
                    report_at = None;
                    socket.report_delivered();
                    Ok(())
                }
                _ = tokio::time::sleep_until(typing_until.unwrap_or_else(tokio::time::Instant::now)), if typing_until.is_some() => {
                    Box::pin(socket.typing_expired()).await;
                    Ok(())
                }
                Some(published) = socket.publishes.next() => {
                    match Box::pin(socket.published(published)).await {
                        Some(frame) => sink.feed(Message::Text(frame)).await,
                        None => Ok(()),
                    }
                }
                Ok(item) = inbox.recv_async() => {
                    let mut result = socket.outbound(item, &mut sink).await;
                    for _ in 0..WRITE_BATCH {
                        let Ok(item) = inbox.try_recv() else { break };
                        result = result.and(socket.outbound(item, &mut sink).await);
                    }
                    result
                }
                frame = stream.next(), if socket.publishes.len() < MAX_IN_FLIGHT_PUBLISHES => match frame {
                    Some(Ok(Message::Text(text))) => match Box::pin(socket.inbound(&text)).await {
                        Ok(Some(reply)) => sink.feed(Message::Text(reply)).await,
                        Ok(None) => Ok(()),
                        Err(close) => break Ending::Server(close),
                    },
                    Some(Ok(Message::Binary(_))) => {
                        let error = FrameError::new(ErrorCode::BadJson, "binary frames are not supported; send JSON text");
                        state.metrics.frame_in(FrameIn::Invalid);
                        sink.feed(Message::Text(socket.refuse(&error))).await
                    }
                    Some(Ok(Message::Close(_))) => break Ending::ClientClosed,
                    Some(Ok(_)) => Ok(()), // ping and pong are answered by the library
                    Some(Err(error)) if is_too_big(&error) => break Ending::Server(Close::TooBig),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "socket read failed");
                        break Ending::Gone;
                    }
                    None => break Ending::Gone,
                },
            };
            let synced = Box::pin(socket.run_pending_sync(&mut sink, &mut inbox)).await;
            if written.is_err() || synced.is_err() || sink.flush().await.is_err() {
                break Ending::Gone;
            }
            if let Some(close) = socket.closing.take() {
                break Ending::Server(close);
            }
            if report_at.is_none() && !socket.delivered.is_empty() {
                report_at = Some(tokio::time::Instant::now() + super::delivered::REPORT_EVERY);
            }
            if lifetime.deadline() != socket.expires_at {
                lifetime.as_mut().reset(socket.expires_at); // a refreshed token
            }
        };
        socket.report_delivered();
        Box::pin(socket.stop_typing()).await;
        // From here on the grace below bounds the closing handshake, whoever started it.
        kick.cancel();
        Box::pin(close(&mut sink, &mut stream, ending)).await; // once, too
    };
    let stuck = async {
        kick.cancelled().await;
        tokio::time::sleep(close_grace).await;
    };
    tokio::select! {
        _ = session => {}
        _ = stuck => tracing::debug!("the client takes no frames; dropping the connection"),
    }
    tracing::debug!("socket closed");
}

/// Counts the socket in `jetchat_open_sockets` while it lives.
struct OpenSocket<'a>(&'a Metrics);

impl<'a> OpenSocket<'a> {
    fn counted(metrics: &'a Metrics) -> Self {
        metrics.open_sockets.inc();
        OpenSocket(metrics)
    }
}

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.0.open_sockets.dec();
    }
}

/// The closing handshake: the client's close frame is answered (tungstenite queued the
/// answer; it only needs writing out), the server's own is sent and the client's reply awaited
/// for [`CLOSE_REPLY_WAIT`]. Dropping the halves afterwards closes the TCP connection.
async fn close(sink: &mut Sink, stream: &mut Stream, ending: Ending) {
    match ending {
        Ending::Gone => {}
        Ending::ClientClosed => {
            let _ = sink.close().await;
        }
        Ending::Server(reason) => {
            tracing::debug!(code = reason.code(), reason = reason.reason(), "closing");
            let frame = CloseFrame {
                code: reason.code(),
                reason: reason.reason().into(),
            };
            if sink.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            let reply = async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, reply).await;
        }
    }
}

/// Whether a read failed because a frame was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
