//! Start-up, graceful shutdown, and durability across restarts.

use serde_json::{Value, json};

use crate::helpers::{history_field, publish_command, spawn_app};

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let mut app = spawn_app().await;
    let mut socket = app.connect(1).await;
    app.stop().await;
    assert_eq!(socket.close_code().await, 1001);
}

#[tokio::test]
async fn commands_accepted_while_jetchat_is_down_are_persisted_when_it_returns() {
    let mut app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    app.stop().await;

    // With no jetchat running, JetStream still takes commands (here as Django would send them).
    for i in 0..20 {
        let command = json!({"type":"send_message","v":1,"sender_id":1,"chat_id":chat_id,
            "content":format!("while down {i}"),"content_type":"text","client_msg_id":format!("down-{i}")});
        publish_command(&app, &format!("chat.in.{chat_id}.message"), command).await;
    }

    app.start_again().await;
    let contents = history_field(&app, 2, chat_id, 20, "content").await;
    let expected: Vec<String> = (0..20).map(|i| format!("while down {i}")).collect();
    assert_eq!(contents, expected, "every command persisted once, in order");
}

#[tokio::test]
async fn healthz_reports_ok_when_everything_is_up() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status":"ok","database":true,"nats":true,"streams":true,"persister":true,"problems":[],"dead_letters":0})
    );
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_closed_and_slows_nobody_down() {
    // Queues longer than a persister batch: a healthy socket absorbs a batch's burst of events.
    let app = crate::helpers::spawn_app_with(&[
        ("SOCKET_QUEUE", "200"),
        ("PERSIST_BATCH", "50"),
        // The sender floods on purpose (2,000 sends as fast as the reader keeps up).
        ("RATE_MESSAGES_PER_SEC", "0"),
    ])
    .await;
    let mut slow = flood_past_a_reader_that_stopped(&app).await;
    // The slow one was dropped with the documented code instead of holding frames forever.
    assert_eq!(slow.close_code().await, 4008);
}

#[tokio::test]
async fn a_kicked_socket_that_never_reads_again_is_dropped_after_the_grace() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = crate::helpers::spawn_app_with(&[
        ("SOCKET_QUEUE", "200"),
        ("PERSIST_BATCH", "50"),
        ("SOCKET_CLOSE_GRACE", "1s"),
        // The sender floods on purpose (2,000 sends as fast as the reader keeps up).
        ("RATE_MESSAGES_PER_SEC", "0"),
    ])
    .await;
    let mut slow = flood_past_a_reader_that_stopped(&app).await;
    // Well past the grace, the client reads at last. Had the server still been waiting to
    // write its close frame, that write would now complete and bring 4008 (as in the test
    // above); dropped, the connection ends with what the kernel held and no close frame.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut new_messages = 0;
    loop {
        let frame = tokio::time::timeout(crate::helpers::FRAME_TIMEOUT, slow.stream.next())
            .await
            .expect("the connection ends in time");
        match frame {
            Some(Ok(Message::Text(text))) if text.contains("\"new_message\"") => new_messages += 1,
            Some(Ok(Message::Close(frame))) => panic!("the server was still there: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break, // ended without a closing handshake
        }
    }
    assert!(
        new_messages > 0,
        "frames the kernel held before the drop still arrive"
    );
}

/// Connects a sender, a member that reads everything and one that never reads, and sends
/// more than the silent member's queue and kernel buffers hold; returns the silent member's
/// socket once the reading member has every message.
///
/// The sender keeps at most [`IN_FLIGHT`] messages ahead of the reading member, fewer than its
/// queue holds, so a reader the test machine schedules late is never mistaken for a slow one:
/// what this proves is that the silent member is dropped while the other gets everything.
async fn flood_past_a_reader_that_stopped(
    app: &crate::helpers::TestApp,
) -> crate::helpers::WsClient {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const IN_FLIGHT: usize = 50;

    let chat_id = app.create_chat(1, true, &[2, 3]).await;
    let alice = app.connect(1).await;
    let fast = app.connect(2).await;
    let slow = app.connect(3).await; // never reads
    let total = 2000; // 9 KB each, 18 MB: more than the queue and the kernel buffers can hold

    // The sender and the fast member read all the time, as healthy clients do.
    let (mut alice_tx, mut alice_rx) = alice.stream.split();
    let drain_alice = tokio::spawn(async move { while let Some(Ok(_)) = alice_rx.next().await {} });
    let (_fast_tx, mut fast_rx) = fast.stream.split();
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0);
    let fast_reader = tokio::spawn(async move {
        let mut received = 0;
        while received < total {
            let frame = tokio::time::timeout(crate::helpers::FRAME_TIMEOUT, fast_rx.next()).await;
            match frame {
                Ok(Some(Ok(Message::Text(text)))) if text.contains("\"new_message\"") => {
                    received += 1;
                    progress_tx.send_replace(received);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    panic!("the fast member was closed after {received}: {frame:?}")
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("the fast member stopped receiving after {received}: {other:?}"),
            }
        }
        received
    });
    let content = "x".repeat(9_000);
    for i in 0..total {
        if i >= IN_FLIGHT {
            let caught_up = progress.wait_for(|received| received + IN_FLIGHT > i);
            tokio::time::timeout(crate::helpers::FRAME_TIMEOUT, caught_up)
                .await
                .expect("the fast member keeps receiving")
                .expect("the fast member's reader is running");
        }
        let frame = json!({"action":"send_message","chat_id":chat_id,"content":content,"client_msg_id":format!("m{i}")});
        alice_tx
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    assert_eq!(
        fast_reader.await.unwrap(),
        total,
        "the fast member got every message"
    );
    drain_alice.abort();
    slow
}
