//! HTTP connections: one that does not send a whole request head within
//! `HEADER_READ_TIMEOUT` is closed, so clients that open connections and stall cannot hold
//! jetchat's file descriptors for ever.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{POLL_TIMEOUT, spawn_app_with};

/// Reads `stream` until jetchat closes it (end of stream or a reset); fails the test if it is
/// still open after [`POLL_TIMEOUT`], far past the timeout under test. Returns what was read.
async fn closed_by_jetchat(what: &str, stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    match tokio::time::timeout(POLL_TIMEOUT, stream.read_to_end(&mut received)).await {
        Ok(Ok(_)) => received,
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => received,
        Ok(Err(error)) => panic!("{what}: reading failed: {error}"),
        Err(_) => panic!(
            "{what}: still open after {POLL_TIMEOUT:?}; received {:?}",
            String::from_utf8_lossy(&received)
        ),
    }
}

#[tokio::test]
async fn connections_that_stall_before_a_whole_request_head_are_closed() {
    let app = spawn_app_with(&[("HEADER_READ_TIMEOUT", "1s")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    // Upgraded before the stalled connections below open: it outlives them.
    let mut socket = app.connect(1).await;

    let mut half_line = TcpStream::connect(app.address).await.unwrap();
    half_line.write_all(b"GET /chats/ HT").await.unwrap();
    let mut half_head = TcpStream::connect(app.address).await.unwrap();
    half_head
        .write_all(b"GET /chats/ HTTP/1.1\r\nHost: jetchat\r\nAuthori")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(app.address).await.unwrap();
    // A kept-alive connection that got its answer and then sends nothing more.
    let mut idle = TcpStream::connect(app.address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: jetchat\r\n\r\n")
        .await
        .unwrap();

    closed_by_jetchat("half a request line", &mut half_line).await;
    closed_by_jetchat("half a request head", &mut half_head).await;
    closed_by_jetchat("nothing sent", &mut silent).await;
    let answered = closed_by_jetchat("idle after a request", &mut idle).await;
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "the whole request was answered: {:?}",
        String::from_utf8_lossy(&answered)
    );

    // The timeout is no limit on a WebSocket's life, and whole requests are still served.
    socket
        .send_message(serde_json::json!({"chat_id": chat_id, "content": "still here"}))
        .await;
    assert_eq!(app.get(1, "/chats/").await.status(), 200);
}
