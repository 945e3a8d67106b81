//! Per-user limits: sends and marks over their rate are refused (and a client that ignores the
//! refusals is closed), sockets per user are capped at the handshake, chat creation and uploads
//! answer 429.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use crate::helpers::{TestApp, WsClient, history_field, spawn_app_with, token};

/// Reads frames until each of `ids` has its `message_ack` or an `error`; returns the last
/// frame seen for each (`message_accepted` frames are passed over).
async fn outcomes(socket: &mut WsClient, ids: &[&str]) -> HashMap<String, Value> {
    let mut seen: HashMap<String, Value> = HashMap::new();
    while ids.iter().any(|id| {
        !seen
            .get(*id)
            .is_some_and(|f| f["action"] == "message_ack" || f["action"] == "error")
    }) {
        let frame = socket.next().await;
        if let Some(id) = frame["client_msg_id"].as_str() {
            seen.insert(id.to_owned(), frame);
        }
    }
    seen
}

fn send(chat_id: i64, id: &str) -> Value {
    json!({"action":"send_message","chat_id":chat_id,"content":id,"client_msg_id":id})
}

#[tokio::test]
async fn sends_over_the_rate_are_refused_with_when_to_retry_and_never_published() {
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "1"), ("RATE_MESSAGES_BURST", "2")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    for id in ["c0", "c1", "c2"] {
        alice.send(send(chat_id, id)).await;
    }
    let seen = outcomes(&mut alice, &["c0", "c1", "c2"]).await;
    assert_eq!(seen["c0"]["action"], "message_ack", "{:?}", seen["c0"]);
    assert_eq!(seen["c1"]["action"], "message_ack", "{:?}", seen["c1"]);
    let refused = &seen["c2"];
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    let wait = refused["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait > 0 && wait <= 1000, "one token a second: {refused}");

    // Sent again when the server said, it goes through; the refused one was never published,
    // or it would be stored before this one (history is stream order).
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    alice.send(send(chat_id, "c3")).await;
    let seen = outcomes(&mut alice, &["c3"]).await;
    assert_eq!(seen["c3"]["action"], "message_ack", "{:?}", seen["c3"]);
    let stored = history_field(&app, 1, chat_id, 3, "client_msg_id").await;
    assert_eq!(stored, ["c0", "c1", "c3"]);
}

#[tokio::test]
async fn a_user_s_sockets_share_one_bucket() {
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "1"), ("RATE_MESSAGES_BURST", "1")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut phone = app.connect(1).await;
    let mut laptop = app.connect(1).await;
    let mut bob = app.connect(2).await;
    phone.send(send(chat_id, "from-phone")).await;
    assert_eq!(
        outcomes(&mut phone, &["from-phone"]).await["from-phone"]["action"],
        "message_ack"
    );
    laptop.send(send(chat_id, "from-laptop")).await;
    let seen = outcomes(&mut laptop, &["from-laptop"]).await;
    assert_eq!(seen["from-laptop"]["code"], "rate_limited", "{:?}", seen);
    // Another user has a bucket of their own.
    bob.send(send(chat_id, "from-bob")).await;
    let seen = outcomes(&mut bob, &["from-bob"]).await;
    assert_eq!(seen["from-bob"]["action"], "message_ack", "{:?}", seen);
}

#[tokio::test]
async fn a_client_that_ignores_the_refusals_is_closed_with_4029() {
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "1"), ("RATE_MESSAGES_BURST", "1")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let total = 1 + jetchat::limits::ABUSIVE_REFUSALS as usize;
    for i in 0..total {
        alice.send(send(chat_id, &format!("m{i}"))).await;
    }
    let mut refused = 0;
    let code = loop {
        use futures_util::StreamExt;
        let frame = tokio::time::timeout(crate::helpers::FRAME_TIMEOUT, alice.stream.next())
            .await
            .expect("frames in time");
        match frame {
            Some(Ok(tungstenite::Message::Text(text))) if text.contains("\"rate_limited\"") => {
                refused += 1
            }
            Some(Ok(tungstenite::Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, 4029);
    assert_eq!(
        refused,
        total - 2,
        "every refusal but the last was answered; the last one closed the socket"
    );
}

#[tokio::test]
async fn marks_have_their_own_limit_which_the_server_s_delivered_receipts_do_not_use() {
    let app = spawn_app_with(&[
        ("AUTO_DELIVERED", "true"),
        ("RATE_MARKS_PER_SEC", "1"),
        ("RATE_MARKS_BURST", "1"),
    ])
    .await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let ack = alice
        .send_message(json!({"chat_id": chat_id, "content": "hi"}))
        .await;
    let message_id = ack["message_id"].as_i64().unwrap();
    bob.expect("new_message").await;
    // Bob's socket reported the message delivered by itself.
    let delivered = alice.expect("status_update").await;
    assert_eq!(delivered["status"], "delivered");

    // Bob's own mark still has its token: the automatic receipt did not take it.
    bob.send(json!({"action": "acknowledge", "message_id": message_id}))
        .await;
    let read = alice.expect("status_update").await;
    assert_eq!(read["status"], "read", "{read}");
    bob.send(json!({"action": "acknowledge", "message_id": message_id}))
        .await;
    let refused = bob.expect_error("rate_limited").await;
    assert!(refused["retry_after_ms"].as_u64().is_some(), "{refused}");
    assert!(
        refused.get("client_msg_id").is_none(),
        "a mark has no client_msg_id"
    );
}

/// A handshake as `user_id`; the HTTP status of a refused one.
async fn handshake(app: &TestApp, user_id: i64) -> Result<WsClient, (u16, String)> {
    match app.try_connect(Some(&token(user_id))).await {
        Ok(socket) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        Err(other) => panic!("handshake failed otherwise: {other}"),
    }
}

#[tokio::test]
async fn sockets_beyond_the_user_s_limit_are_refused_at_the_handshake() {
    let app = spawn_app_with(&[("MAX_SOCKETS_PER_USER", "2")]).await;
    let first = handshake(&app, 1).await.expect("first socket");
    let _second = handshake(&app, 1).await.expect("second socket");
    let (status, body) = handshake(&app, 1)
        .await
        .err()
        .expect("the third is refused");
    assert_eq!(status, 429);
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("MAX_SOCKETS_PER_USER"), "{body}");
    handshake(&app, 2)
        .await
        .expect("another user is not affected");

    // A closed socket frees its place (the router hears of it a moment later).
    drop(first);
    crate::helpers::eventually("a place is free again", || async {
        handshake(&app, 1)
            .await
            .map(|_| ())
            .map_err(|(s, b)| format!("{s} {b}"))
    })
    .await;
}

#[tokio::test]
async fn handshakes_at_once_never_share_the_last_place() {
    let app = spawn_app_with(&[("MAX_SOCKETS_PER_USER", "3")]).await;
    let attempts = (0..10).map(|_| handshake(&app, 1));
    let results = futures_util::future::join_all(attempts).await;
    let opened = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<u16> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.0)
        .collect();
    assert_eq!(opened, 3, "exactly the limit opened; refused: {refused:?}");
    assert!(refused.iter().all(|s| *s == 429), "{refused:?}");
}

#[tokio::test]
async fn creating_chats_over_the_rate_answers_429_with_retry_after() {
    let app = spawn_app_with(&[("RATE_CHATS_PER_MIN", "2")]).await;
    app.create_chat(1, true, &[2]).await;
    app.create_chat(1, true, &[3]).await;
    let response = app
        .post(
            1,
            "/chats/",
            json!({"name":"x","is_group":true,"member_ids":[4]}),
        )
        .await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("chats"), "{body}");
    // Someone else may still create theirs.
    app.create_chat(2, true, &[3]).await;
}

#[tokio::test]
async fn uploading_over_the_rate_answers_429_before_reading_the_file() {
    let app = spawn_app_with(&[("RATE_UPLOADS_PER_MIN", "1")]).await;
    let upload = |bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("voice.ogg");
        app.http
            .post(app.url("/upload"))
            .bearer_auth(token(1))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    let first = upload(crate::media::ogg_opus()).await.unwrap();
    assert_eq!(first.status(), 201);
    let second = upload(crate::media::ogg_opus()).await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("uploads"),
        "{body}"
    );
}
