//! The HTTP server: accepts connections and serves each over HTTP/1.1 (with upgrades, for the
//! WebSocket) until the shutdown token is cancelled, then lets the requests in flight finish.
//!
//! Not `axum::serve`: it gives hyper no timer, so a connection that sends half a request head
//! and then nothing (or nothing at all) was held, with its file descriptor, for ever. Here
//! hyper closes a connection whose request head does not arrive whole within
//! `HEADER_READ_TIMEOUT`, counted from when it starts waiting for one (an idle keep-alive
//! connection is closed after as long).

use std::{pin::pin, time::Duration};

use axum::{Router, serve::Listener as _, serve::ListenerExt as _};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Serves `router` on `listener` until `shutdown` is cancelled; then stops accepting, lets
/// every connection finish the request it is answering and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // No Nagle delay: a frame right after another (message_accepted, then message_ack)
    // would otherwise wait for the client's delayed ACK, about 40 ms.
    let mut listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let connections = TaskTracker::new();
    loop {
        // axum's `Listener` retries failed accepts (EMFILE and the like) after a pause.
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let connection = http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(router.clone()))
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}
