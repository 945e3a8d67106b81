//! Lingering close for request bodies a handler refused without reading (`POST /upload`'s
//! early 413), as nginx's `lingering_close` does.
//!
//! Many clients (Python's `urllib` and `requests`, many mobile stacks) write the whole body
//! before they read a byte of the answer. Closing the connection with their bytes still
//! arriving makes the kernel answer with a reset, and they see a broken pipe instead of the
//! 413. So a body dropped unfinished is read and thrown away, bounded in bytes and time, while
//! the answer goes out; then the connection closes.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{HeaderValue, header},
};
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};

/// Most bytes read and discarded after a refusal.
const LINGER_BYTES: u64 = 1 << 30;
/// Longest a refused body is read (nginx's `lingering_time`).
const LINGER_TIME: Duration = Duration::from_secs(30);
/// Longest wait for the next bytes of a refused body (nginx's `lingering_timeout`).
const LINGER_IDLE: Duration = Duration::from_secs(5);

/// Wraps the request's body so that dropping it unfinished drains it (the middleware for
/// routes that may refuse a large body before reading it). A client that waits for
/// `100 Continue` sends no body unless asked, so its request is left as it is.
pub async fn linger_on_refusal(request: Request) -> Request {
    let expects_continue =
        request.headers().get(header::EXPECT) == Some(&HeaderValue::from_static("100-continue"));
    if expects_continue {
        return request;
    }
    request.map(|body| Body::new(LingeringBody { inner: Some(body) }))
}

/// A request body that, dropped before its end, is drained on a task of its own.
struct LingeringBody {
    /// `None` once the body ended (nothing left to drain).
    inner: Option<Body>,
}

impl HttpBody for LingeringBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = Pin::new(inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.inner = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for LingeringBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take().filter(|b| !b.is_end_stream()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads and discards `body` until it ends, fails, pauses for [`LINGER_IDLE`] or passes
/// [`LINGER_BYTES`] or [`LINGER_TIME`]. Dropping it then lets the server close.
async fn drain(body: Body) {
    let mut chunks = body.into_data_stream();
    let mut read = 0u64;
    let all = async {
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(LINGER_IDLE, chunks.next()).await {
            read += chunk.len() as u64;
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, all).await;
    tracing::debug!(read, "refused request body drained");
}
