//! Blocks: a user blocks another over REST, the socket or Django's NATS command; the blocked
//! user can no longer open a private chat with the blocker, write in theirs, or add the
//! blocker to a group (`blocked`), and sees the blocker offline and never seen; the blocker's
//! side and group messages are unchanged; repeats are applied once; garbage is refused with
//! its code; the blocker's other devices catch up on each change exactly once.

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WsClient, next_events, pipeline_drained, publish_command, spawn_app, spawn_app_with,
    token,
};

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

/// A request with `method` as `user_id`, with a JSON body when given.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    user_id: i64,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token(user_id));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

/// The status and code of an answer.
async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// `user_id`'s blocks as `GET /users/me/blocks` lists them.
async fn blocks_of(app: &TestApp, user_id: i64) -> Vec<i64> {
    app.get_json(user_id, "/users/me/blocks")
        .await
        .as_array()
        .expect("a list")
        .iter()
        .map(|b| {
            assert!(b["blocked_at"].is_string(), "{b}");
            b["user_id"].as_i64().unwrap()
        })
        .collect()
}

/// Sends a frame named `command_id` and returns the `error` that answers it.
async fn refused_frame(client: &mut WsClient, mut frame: Value, command_id: &str) -> Value {
    frame["command_id"] = json!(command_id);
    client.send(frame).await;
    loop {
        let frame = client.next().await;
        if frame["action"] == "error" {
            assert_eq!(frame["command_id"], command_id, "{frame}");
            return frame;
        }
        assert_ne!(frame["command_id"], command_id, "not refused: {frame}");
    }
}

/// A message `client` sends, refused: the error's code.
async fn refused_message(client: &mut WsClient, target: Value, id: &str) -> String {
    let mut frame = json!({"action": "send_message", "content": "let me in", "client_msg_id": id});
    frame
        .as_object_mut()
        .unwrap()
        .extend(target.as_object().unwrap().clone());
    client.send(frame).await;
    loop {
        let frame = client.next().await;
        if frame["action"] == "error" && frame["client_msg_id"] == id {
            return frame["code"].as_str().unwrap().to_owned();
        }
        assert_ne!(frame["action"], "message_ack", "not refused: {frame}");
    }
}

#[tokio::test]
async fn a_blocked_user_cannot_write_privately_to_the_blocker_whose_side_is_unchanged() {
    let app = spawn_app().await;
    let private = app.create_chat(ALICE, false, &[BOB]).await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let mut bob = app.connect(BOB).await;

    // Alice blocks Bob over REST; her socket is told.
    let put = call(
        &app,
        reqwest::Method::PUT,
        ALICE,
        &format!("/users/me/blocks/{BOB}"),
        None,
    )
    .await;
    assert_eq!(put.status(), 204);
    let told = alice.expect("block_changed").await;
    assert_eq!(
        (told["user_id"].as_i64(), told["blocked"].as_bool()),
        (Some(BOB), Some(true))
    );
    assert!(told["cursor"].as_u64().is_some(), "{told}");
    assert_eq!(blocks_of(&app, ALICE).await, [BOB]);
    assert!(blocks_of(&app, BOB).await.is_empty(), "one way only");

    // Bob is refused in their private chat, by id and by receiver, and cannot open one anew.
    assert_eq!(
        refused_message(&mut bob, json!({"chat_id": private}), "b1").await,
        "blocked"
    );
    assert_eq!(
        refused_message(&mut bob, json!({"receiver_id": ALICE}), "b2").await,
        "blocked"
    );
    let open = app
        .post(
            BOB,
            "/chats/",
            json!({"is_group": false, "member_ids": [ALICE]}),
        )
        .await;
    assert_eq!(status_and_code(open).await, (403, "blocked".to_owned()));
    // Alice still writes to Bob, and Bob still writes in the group they share.
    alice
        .send_message(json!({"chat_id": private, "content": "still mine"}))
        .await;
    assert_eq!(bob.expect("new_message").await["content"], "still mine");
    bob.send_message(json!({"chat_id": group, "content": "group ok"}))
        .await;
    assert_eq!(alice.expect("new_message").await["content"], "group ok");

    // Bob cannot add Alice to a group, nor start one with her.
    let bobs = app.create_chat(BOB, true, &[CAROL]).await;
    let add = call(
        &app,
        reqwest::Method::POST,
        BOB,
        &format!("/chats/{bobs}/members"),
        Some(json!({"user_ids": [CAROL, ALICE]})),
    )
    .await;
    assert_eq!(status_and_code(add).await, (403, "blocked".to_owned()));
    let start = app
        .post(
            BOB,
            "/chats/",
            json!({"is_group": true, "name": "g", "member_ids": [ALICE, CAROL]}),
        )
        .await;
    assert_eq!(status_and_code(start).await, (403, "blocked".to_owned()));
    // Alice may still add Bob to hers.
    let alices = app.create_chat(ALICE, true, &[]).await;
    let add = call(
        &app,
        reqwest::Method::POST,
        ALICE,
        &format!("/chats/{alices}/members"),
        Some(json!({"user_ids": [BOB]})),
    )
    .await;
    assert_eq!(add.status(), 200);
    bob.expect("member_added").await;

    // Lifted over the socket: Bob writes again.
    alice
        .send(json!({"action": "unblock_user", "user_id": BOB, "command_id": "a-unblock"}))
        .await;
    let (mut lifted, mut applied) = (None, false);
    while lifted.is_none() || !applied {
        let frame = alice.next().await;
        match frame["action"].as_str() {
            Some("block_changed") => lifted = Some(frame),
            Some("command_applied") => applied |= frame["command_id"] == "a-unblock",
            _ => {}
        }
    }
    assert_eq!(lifted.unwrap()["blocked"], false);
    assert!(blocks_of(&app, ALICE).await.is_empty());
    bob.send_message(json!({"chat_id": private, "content": "hi again"}))
        .await;
}

#[tokio::test]
async fn blocks_in_the_same_batch_as_messages_apply_in_order() {
    // One partition: a block (`chat.in.users.block`) and a chat's messages are then in one
    // stream order. With several, they are applied by different persisters, in no order
    // between them (docs/events.md, `set_block`).
    let app = spawn_app_with(&[("PERSIST_PARTITIONS", "1")]).await;
    let private = app.create_chat(ALICE, false, &[BOB]).await;
    let client = app.nats().await;
    let mut events = client.subscribe("chat.events.>").await.unwrap();
    client.flush().await.unwrap();
    // Published back to back, so the persister likely takes them in one batch: the message
    // before the block is stored, the one after refused, the one after the lifting stored.
    let message = |id: &str| json!({"sender_id": BOB, "content": id, "client_msg_id": id});
    let block = |id: &str, blocked: bool| json!({"type": "set_block", "command_id": id, "user_id": ALICE, "blocked_id": BOB, "blocked": blocked});
    let subject = format!("chat.in.{private}.message");
    publish_command(&app, &subject, message("before")).await;
    publish_command(&app, "chat.in.users.block", block("blk", true)).await;
    publish_command(&app, &subject, message("during")).await;
    publish_command(&app, "chat.in.users.block", block("unblk", false)).await;
    publish_command(&app, &subject, message("after")).await;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let (_, event) = next_events(&mut events, 1).await.remove(0);
        match event["type"].as_str().unwrap() {
            "message_created" => seen.push(format!(
                "stored {}",
                event["message"]["content"].as_str().unwrap()
            )),
            "command_rejected" => seen.push(format!(
                "{} {}",
                event["command_id"].as_str().unwrap(),
                event["code"].as_str().unwrap()
            )),
            "block_changed" => seen.push(format!("block {}", event["blocked"])),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "stored before",
            "block true",
            "during blocked",
            "block false",
            "stored after"
        ]
    );
}

#[tokio::test]
async fn repeats_and_garbage_and_strangers() {
    let app = spawn_app().await;
    let mut alice = app.connect(ALICE).await;
    // A user never met, and the largest id: blocked like anyone.
    for id in [77, i64::MAX] {
        for _ in 0..2 {
            let put = call(
                &app,
                reqwest::Method::PUT,
                ALICE,
                &format!("/users/me/blocks/{id}"),
                None,
            )
            .await;
            assert_eq!(put.status(), 204, "a repeat is applied");
        }
    }
    // Told once per change: the repeats change nothing.
    assert_eq!(alice.expect("block_changed").await["user_id"], 77);
    assert_eq!(alice.expect("block_changed").await["user_id"], i64::MAX);
    alice.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(blocks_of(&app, ALICE).await, [77, i64::MAX]);
    // Lifting a block that is not there changes nothing.
    let delete = call(
        &app,
        reqwest::Method::DELETE,
        ALICE,
        "/users/me/blocks/78",
        None,
    )
    .await;
    assert_eq!(delete.status(), 204);

    // Garbage over REST.
    for (path, expected) in [
        (format!("/users/me/blocks/{ALICE}"), (422, "invalid_field")),
        ("/users/me/blocks/0".to_owned(), (422, "invalid_field")),
        ("/users/me/blocks/-3".to_owned(), (422, "invalid_field")),
        ("/users/me/blocks/abc".to_owned(), (422, "invalid_field")),
        (
            "/users/me/blocks/9223372036854775808".to_owned(),
            (422, "invalid_field"),
        ),
    ] {
        let put = call(&app, reqwest::Method::PUT, ALICE, &path, None).await;
        let (status, code) = status_and_code(put).await;
        assert_eq!((status, code.as_str()), expected, "{path}");
    }
    let anonymous = app
        .http
        .get(app.url("/users/me/blocks"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Garbage over the socket.
    for (frame, code) in [
        (
            json!({"action": "block_user", "user_id": ALICE}),
            "invalid_field",
        ),
        (json!({"action": "block_user"}), "missing_field"),
        (
            json!({"action": "block_user", "user_id": -1}),
            "invalid_field",
        ),
    ] {
        let error = refused_frame(&mut alice, frame.clone(), "bad").await;
        assert_eq!(error["code"], code, "{frame}: {error}");
    }
    // A field of the wrong type is refused before the frame's `command_id` is read.
    alice
        .send(json!({"action": "unblock_user", "user_id": "two"}))
        .await;
    assert_eq!(alice.expect("error").await["code"], "invalid_field");
    // Garbage from Django.
    let client = app.nats().await;
    let mut events = client.subscribe("chat.events.>").await.unwrap();
    client.flush().await.unwrap();
    for (command, code) in [
        (
            json!({"type": "set_block", "command_id": "dj-self", "user_id": 5, "blocked_id": 5, "blocked": true}),
            "invalid_field",
        ),
        (
            json!({"type": "set_block", "command_id": "dj-zero", "user_id": 0, "blocked_id": 5, "blocked": true}),
            "invalid_field",
        ),
        (
            json!({"type": "set_block", "command_id": "dj-nobool", "user_id": 5, "blocked_id": 6}),
            "invalid_command",
        ),
    ] {
        let id = command["command_id"].as_str().unwrap().to_owned();
        publish_command(&app, "chat.in.users.block", command).await;
        loop {
            let (_, event) = next_events(&mut events, 1).await.remove(0);
            if event["type"] == "command_rejected" {
                assert_eq!(
                    (
                        event["command_id"].as_str().unwrap(),
                        event["code"].as_str().unwrap()
                    ),
                    (id.as_str(), code)
                );
                break;
            }
        }
    }
    assert_eq!(
        blocks_of(&app, ALICE).await,
        [77, i64::MAX],
        "garbage changed nothing"
    );
}

#[tokio::test]
async fn django_blocks_over_nats_and_the_catch_up_replays_each_change_once() {
    let app = spawn_app().await;
    app.create_chat(ALICE, false, &[BOB]).await;
    pipeline_drained(&app).await;
    let since = {
        let url = app.ws_url(&token(ALICE));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = WsClient { stream };
        client.expect("unread").await["cursor"].as_u64().unwrap()
    };

    // While Alice is away: Django blocks Bob for her (twice: one change), she lifts it over
    // REST, and blocks Carol.
    for _ in 0..2 {
        publish_command(
            &app,
            "chat.in.users.block",
            json!({"type": "set_block", "command_id": "dj-block", "user_id": ALICE, "blocked_id": BOB, "blocked": true}),
        )
        .await;
    }
    pipeline_drained(&app).await;
    assert_eq!(blocks_of(&app, ALICE).await, [BOB]);
    let delete = call(
        &app,
        reqwest::Method::DELETE,
        ALICE,
        &format!("/users/me/blocks/{BOB}"),
        None,
    )
    .await;
    assert_eq!(delete.status(), 204);
    let put = call(
        &app,
        reqwest::Method::PUT,
        ALICE,
        &format!("/users/me/blocks/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(put.status(), 204);
    pipeline_drained(&app).await;

    let url = format!("{}&since={since}", app.ws_url(&token(ALICE)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut client = WsClient { stream };
    client.expect("unread").await;
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        match frame["action"].as_str() {
            Some("synced") => break,
            Some("resync_required") => panic!("no exact catch-up: {frame}"),
            _ => frames.push(frame),
        }
    }
    let blocks: Vec<(i64, bool)> = frames
        .iter()
        .filter(|f| f["action"] == "block_changed" && f["cursor"].as_u64().unwrap() > since)
        .map(|f| {
            (
                f["user_id"].as_i64().unwrap(),
                f["blocked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        [(BOB, true), (BOB, false), (CAROL, true)],
        "{frames:#?}"
    );
    // Nobody else is told: Bob's catch-up has none of it.
    let url = format!("{}&since={since}", app.ws_url(&token(BOB)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = WsClient { stream };
    bob.expect("unread").await;
    loop {
        let frame = bob.next().await;
        assert_ne!(frame["action"], "block_changed", "{frame}");
        if frame["action"] == "synced" {
            break;
        }
    }
    // GET /sync pages the same changes.
    let page = app.get_json(ALICE, &format!("/sync?since={since}")).await;
    assert_eq!(
        page.to_string().matches("block_changed").count(),
        3,
        "{page}"
    );
}

#[tokio::test]
async fn the_blocked_user_sees_the_blocker_offline_and_never_seen() {
    let app = spawn_app_with(&[
        ("PRESENCE", "on"),
        ("PRESENCE_TTL", "2s"),
        ("PRESENCE_GRACE", "300ms"),
    ])
    .await;
    let chat = app.create_chat(ALICE, false, &[BOB]).await;
    let mut bob = app.connect(BOB).await;
    let alice = app.connect(ALICE).await;
    let online = bob.expect("presence").await;
    assert_eq!(
        (online["user_id"].as_i64(), online["status"].as_str()),
        (Some(ALICE), Some("online"))
    );

    let put = call(
        &app,
        reqwest::Method::PUT,
        ALICE,
        &format!("/users/me/blocks/{BOB}"),
        None,
    )
    .await;
    assert_eq!(put.status(), 204);
    // Bob's socket is told Alice is offline, never seen.
    let hidden = bob.expect("presence").await;
    assert_eq!(
        (
            hidden["user_id"].as_i64(),
            hidden["status"].as_str(),
            &hidden["last_seen"]
        ),
        (Some(ALICE), Some("offline"), &Value::Null)
    );
    // Asked, by frame and by REST, the same.
    let presence = |answer: &Value| -> HashMap<i64, (String, Value)> {
        answer["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user_id"].as_i64().unwrap(),
                    (
                        m["status"].as_str().unwrap().to_owned(),
                        m["last_seen"].clone(),
                    ),
                )
            })
            .collect()
    };
    bob.send(json!({"action": "presence", "chat_id": chat}))
        .await;
    let state = presence(&bob.expect("presence_state").await);
    assert_eq!(state[&ALICE], ("offline".to_owned(), Value::Null));
    let rest = app.get_json(BOB, &format!("/chats/{chat}/presence")).await;
    assert_eq!(presence(&rest)[&ALICE], ("offline".to_owned(), Value::Null));
    // Alice still sees Bob.
    let hers = app
        .get_json(ALICE, &format!("/chats/{chat}/presence"))
        .await;
    assert_eq!(presence(&hers)[&BOB].0, "online");
    // Alice's sockets coming and going are not told to Bob's socket; a new socket of Bob's
    // reads the block at its handshake.
    let alice_again = app.connect(ALICE).await;
    drop(alice);
    drop(alice_again);
    let mut bob_again = app.connect(BOB).await;
    bob_again
        .send(json!({"action": "presence", "chat_id": chat}))
        .await;
    let state = presence(&bob_again.expect("presence_state").await);
    assert_eq!(state[&ALICE], ("offline".to_owned(), Value::Null));
    bob.expect_silence(Duration::from_millis(800)).await;
}
