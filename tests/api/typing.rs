//! Typing: told to the chat's other members on every instance, never stored, rate limited per
//! socket, and `stopped` by the server when it is not refreshed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, pipeline_drained, spawn_app_with};

/// Presence off: its frames would interleave with the typing ones (typing does not need it).
const QUIET: &[(&str, &str)] = &[("PRESENCE", "off")];

async fn expect_typing(socket: &mut WsClient, chat: i64, user_id: i64, state: &str) -> Value {
    let frame = socket.expect("typing").await;
    assert_eq!(frame["chat_id"], chat, "{frame}");
    assert_eq!(frame["user_id"], user_id, "{frame}");
    assert_eq!(frame["state"], state, "{frame}");
    frame
}

/// How many messages each stream holds.
async fn stream_counts(app: &TestApp) -> Vec<(String, u64)> {
    let js = async_nats::jetstream::new(app.nats().await);
    let mut counts = Vec::new();
    for name in ["CHAT_IN", "CHAT_EVENTS", "CHAT_DLQ"] {
        let mut stream = js.get_stream(name).await.unwrap();
        counts.push((name.to_owned(), stream.info().await.unwrap().state.messages));
    }
    counts
}

#[tokio::test]
async fn typing_reaches_the_members_other_sockets_on_every_instance() {
    let a = spawn_app_with(QUIET).await;
    let b = a.sibling().await;
    let group = a.create_chat(1, true, &[2]).await;
    a.create_chat(3, true, &[4]).await;
    let mut alice = a.connect(1).await;
    let mut alice_phone = b.connect(1).await;
    let mut bob = b.connect(2).await;
    let mut bob_laptop = a.connect(2).await;
    let mut carol = a.connect(3).await;

    alice
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    for socket in [&mut bob, &mut bob_laptop] {
        let frame = expect_typing(socket, group, 1, "started").await;
        assert!(frame["expires_in_ms"].as_u64().unwrap() > 0, "{frame}");
    }
    alice
        .send(json!({"action": "typing", "chat_id": group, "state": "stopped"}))
        .await;
    for socket in [&mut bob, &mut bob_laptop] {
        let frame = expect_typing(socket, group, 1, "stopped").await;
        assert!(frame.get("expires_in_ms").is_none(), "{frame}");
    }
    for socket in [&mut alice, &mut alice_phone, &mut carol] {
        socket.expect_silence(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn typing_is_refused_to_non_members_and_bad_chats() {
    let a = spawn_app_with(QUIET).await;
    let group = a.create_chat(1, true, &[2]).await;
    let mut bob = a.connect(2).await;
    let mut carol = a.connect(3).await;
    carol
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    carol.expect_error("forbidden").await;
    carol
        .send(json!({"action": "typing", "chat_id": 987654321}))
        .await;
    carol.expect_error("forbidden").await;
    for bad in [json!(0), json!(-3), json!("x"), json!(1.5), json!(u64::MAX)] {
        carol
            .send(json!({"action": "typing", "chat_id": bad}))
            .await;
        carol.expect_error("invalid_field").await;
    }
    carol.send(json!({"action": "typing"})).await;
    carol.expect_error("missing_field").await;
    carol
        .send(json!({"action": "typing", "chat_id": group, "state": "maybe"}))
        .await;
    carol.expect_error("invalid_field").await;
    bob.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn typing_expires_by_itself_and_with_the_socket() {
    let a = spawn_app_with(&[("PRESENCE", "off"), ("TYPING_TIMEOUT", "500ms")]).await;
    let group = a.create_chat(1, true, &[2]).await;
    let mut alice = a.connect(1).await;
    let mut bob = a.connect(2).await;

    alice
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    let started = expect_typing(&mut bob, group, 1, "started").await;
    assert_eq!(started["expires_in_ms"], 500);
    // No refresh: the server says stopped on alice's behalf.
    expect_typing(&mut bob, group, 1, "stopped").await;

    alice
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    expect_typing(&mut bob, group, 1, "started").await;
    drop(alice);
    expect_typing(&mut bob, group, 1, "stopped").await;
    bob.expect_silence(Duration::from_millis(800)).await;
}

#[tokio::test]
async fn a_flood_of_typing_is_rate_limited_per_socket() {
    let a = spawn_app_with(&[
        ("PRESENCE", "off"),
        ("RATE_TYPING_PER_SEC", "1"),
        ("RATE_TYPING_BURST", "3"),
    ])
    .await;
    let group = a.create_chat(1, true, &[2]).await;
    let mut alice = a.connect(1).await;
    let mut alice_phone = a.connect(1).await;
    let mut bob = a.connect(2).await;
    for _ in 0..3 {
        alice
            .send(json!({"action": "typing", "chat_id": group}))
            .await;
    }
    alice
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    let refused = alice.expect_error("rate_limited").await;
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0, "{refused}");
    // Another socket of the same user has a bucket of its own.
    alice_phone
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    for _ in 0..4 {
        expect_typing(&mut bob, group, 1, "started").await;
    }
    bob.expect_silence(Duration::from_millis(300)).await;
    alice_phone.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn typing_is_never_stored() {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let a = spawn_app_with(QUIET).await;
    let group = a.create_chat(1, true, &[2]).await;
    pipeline_drained(&a).await;
    let before = stream_counts(&a).await;
    let db = a.database().await;
    let messages = jetchat::store::message::Entity::find()
        .count(&db)
        .await
        .unwrap();

    let mut alice = a.connect(1).await;
    let mut bob = a.connect(2).await;
    for state in ["started", "stopped", "started"] {
        alice
            .send(json!({"action": "typing", "chat_id": group, "state": state}))
            .await;
        expect_typing(&mut bob, group, 1, state).await;
    }
    pipeline_drained(&a).await;
    assert_eq!(
        stream_counts(&a).await,
        before,
        "no stream holds a typing frame"
    );
    assert_eq!(
        jetchat::store::message::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        messages
    );
}
