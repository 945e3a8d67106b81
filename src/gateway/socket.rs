//! One client's socket: a single task that reads frames, hands them to its session and writes
//! the frames the router hands it through a bounded queue.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use tracing::Instrument as _;

use super::{protocol::FrameError, session::Session};

/// Close code for a socket whose queue overflowed (it reads too slowly).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code when the server shuts down ("going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a frame over the size limit ("message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// How long pushed messages wait before they are reported delivered together.
const DELIVERED_REPORT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Frames written before a flush.
const WRITE_BATCH: usize = 64;

pub(super) type Sink = SplitSink<WebSocket, Message>;

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

async fn run(mut sink: Sink, mut stream: SplitStream<WebSocket>, session: Box<Session>) {
    let Session {
        mut socket,
        mut inbox,
        kick,
        _registration,
    } = *session;
    tracing::debug!(chats = socket.chats.len(), "socket open");
    let state = socket.state.clone();
    let close_grace = state.config.socket_close_grace;
    // A client that stops reading can leave a write waiting for ever, with the kick or the
    // shutdown never seen: after a grace period the connection is dropped instead.
    let session = async {
        let mut report_at: Option<tokio::time::Instant> = None;
        loop {
            let written = tokio::select! {
                biased;
                _ = kick.cancelled() => {
                    if state.shutdown.is_cancelled() {
                        close(&mut sink, CLOSE_GOING_AWAY, "server shutting down").await;
                    } else {
                        close(&mut sink, CLOSE_SLOW_CONSUMER, "too many undelivered frames; reconnect and read history").await;
                    }
                    break;
                }
                _ = tokio::time::sleep_until(report_at.unwrap_or_else(tokio::time::Instant::now)), if report_at.is_some() => {
                    report_at = None;
                    Box::pin(socket.report_delivered()).await;
                    Ok(())
                }
                Some(published) = socket.publishes.next() => {
                    match Box::pin(socket.published(published)).await {
                        Some(frame) => sink.feed(Message::Text(frame)).await,
                        None => Ok(()),
                    }
                }
                Some(item) = inbox.recv() => {
                    let mut result = socket.outbound(item, &mut sink).await;
                    for _ in 0..WRITE_BATCH {
                        let Ok(item) = inbox.try_recv() else { break };
                        result = result.and(socket.outbound(item, &mut sink).await);
                    }
                    result
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => match Box::pin(socket.inbound(&text)).await {
                        Some(reply) => sink.feed(Message::Text(reply)).await,
                        None => Ok(()),
                    },
                    Some(Ok(Message::Binary(_))) => {
                        let error = FrameError::new("bad_json", "binary frames are not supported; send JSON text");
                        sink.feed(Message::Text(error.render())).await
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => Ok(()), // ping and pong are answered by the library
                    Some(Err(error)) => {
                        if is_too_big(&error) {
                            close(&mut sink, CLOSE_TOO_BIG, "frame exceeds the size limit").await;
                        } else {
                            tracing::debug!(%error, "socket read failed");
                        }
                        break;
                    }
                },
            };
            if written.is_err() || sink.flush().await.is_err() {
                break;
            }
            if report_at.is_none() && !socket.delivered.is_empty() {
                report_at = Some(tokio::time::Instant::now() + DELIVERED_REPORT_DELAY);
            }
        }
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

async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
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
