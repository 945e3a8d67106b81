//! How sockets end: a clean closing handshake whoever closes, and no socket outliving its token
//! (unless a `refresh_token` extends it).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use crate::helpers::{FRAME_TIMEOUT, spawn_app, spawn_app_with, token, token_with};

/// An access token for `user_id` that expires `secs` from now.
fn token_expiring_in(user_id: i64, secs: i64) -> (String, i64) {
    let exp = chrono::Utc::now().timestamp() + secs;
    let token = token_with(json!({
        "token_type": "access",
        "exp": exp,
        "iat": chrono::Utc::now().timestamp(),
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "user_id": user_id,
    }));
    (token, exp)
}

/// Sleeps until the wall clock has passed `exp` (Unix seconds) by `margin`.
async fn sleep_past(exp: i64, margin: Duration) {
    let exp = std::time::UNIX_EPOCH + Duration::from_secs(exp as u64) + margin;
    if let Ok(left) = exp.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    let app = spawn_app().await;
    let mut socket = app.connect(1).await;
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    socket.stream.close(Some(bye)).await.expect("close sent");

    let answer = tokio::time::timeout(FRAME_TIMEOUT, socket.stream.next())
        .await
        .expect("an answer in time");
    match answer {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close frame (a clean close), got {other:?}"),
    }
    // And then the connection ends, without an error: the handshake is complete.
    let end = tokio::time::timeout(FRAME_TIMEOUT, socket.stream.next())
        .await
        .expect("the end in time");
    assert!(
        end.is_none(),
        "nothing after the closing handshake: {end:?}"
    );
}

#[tokio::test]
async fn a_server_close_waits_for_the_client_s_answer() {
    let mut app = spawn_app().await;
    let mut socket = app.connect(1).await;
    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    assert_eq!(socket.close_code().await, 1001);
    // Reading on lets tungstenite answer the close frame; the server saw the handshake
    // complete, so the connection ends cleanly rather than with a reset.
    let end = tokio::time::timeout(FRAME_TIMEOUT, socket.stream.next())
        .await
        .expect("the end in time");
    assert!(end.is_none(), "a clean end, no reset: {end:?}");
    stopping.await.expect("jetchat stops");
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires() {
    let app = spawn_app_with(&[("TOKEN_EXPIRY_GRACE", "0s")]).await;
    let (token, _) = token_expiring_in(1, 2);
    let mut socket = app.try_connect(Some(&token)).await.expect("handshake");
    socket.send(json!({"action": "ping"})).await;
    socket.expect("pong").await;
    assert_eq!(socket.close_code().await, 4001);
}

#[tokio::test]
async fn a_refreshed_token_keeps_the_socket_open_past_the_old_expiry() {
    let app = spawn_app_with(&[("TOKEN_EXPIRY_GRACE", "0s")]).await;
    let (short, old_exp) = token_expiring_in(1, 2);
    let mut socket = app.try_connect(Some(&short)).await.expect("handshake");
    let (long, new_exp) = token_expiring_in(1, 300);
    socket
        .send(json!({"action": "refresh_token", "token": long}))
        .await;
    let refreshed = socket.expect("token_refreshed").await;
    assert_eq!(refreshed["exp"], new_exp);

    sleep_past(old_exp, Duration::from_secs(1)).await;
    socket.send(json!({"action": "ping"})).await;
    socket.expect("pong").await;
}

#[tokio::test]
async fn a_refresh_with_another_users_or_a_bad_token_is_refused_and_changes_nothing() {
    let app = spawn_app_with(&[("TOKEN_EXPIRY_GRACE", "0s")]).await;
    let (short, _) = token_expiring_in(1, 3);
    let mut socket = app.try_connect(Some(&short)).await.expect("handshake");

    socket
        .send(json!({"action": "refresh_token", "token": token(2)}))
        .await;
    socket.expect_error("forbidden").await;
    let (expired, _) = token_expiring_in(1, -3600);
    socket
        .send(json!({"action": "refresh_token", "token": expired}))
        .await;
    socket.expect_error("invalid_token").await;
    socket
        .send(json!({"action": "refresh_token", "token": "not.a.jwt"}))
        .await;
    socket.expect_error("invalid_token").await;
    socket.send(json!({"action": "refresh_token"})).await;
    socket.expect_error("missing_field").await;

    // The socket kept its first token's deadline.
    assert_eq!(socket.close_code().await, 4001);
}
