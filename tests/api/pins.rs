//! Pins: a group's admins and owner pin and unpin messages (in a private chat, either
//! member; Django as the system); `GET /chats/{id}` shows the pinned messages; every member
//! gets `message_pinned` / `message_unpinned`, journaled and replayed exactly once by the
//! catch-up; refusals carry their codes; repeats are applied once.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WsClient, next_events, pipeline_drained, publish_command, spawn_app, token,
};

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

/// A request with `method` as `user_id`: its status and error code.
async fn call(app: &TestApp, method: reqwest::Method, user_id: i64, path: &str) -> (u16, String) {
    let response = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token(user_id))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// The ids of `user_id`'s view of `chat_id`'s pinned messages, newest pin first.
async fn pinned(app: &TestApp, user_id: i64, chat_id: i64) -> Vec<i64> {
    let detail = app.get_json(user_id, &format!("/chats/{chat_id}")).await;
    assert_eq!(detail["chat_id"], chat_id, "{detail}");
    detail["pinned"]
        .as_array()
        .expect("pinned")
        .iter()
        .map(|p| {
            assert!(
                p["pinned_at"].is_string() && p["content"].is_string(),
                "{p}"
            );
            p["message_id"].as_i64().unwrap()
        })
        .collect()
}

/// Sends a frame named `command_id`; the frames up to its `command_applied`, or its `error`.
async fn act(
    client: &mut WsClient,
    mut frame: Value,
    command_id: &str,
) -> Result<Vec<Value>, Value> {
    frame["command_id"] = json!(command_id);
    client.send(frame).await;
    let mut seen = Vec::new();
    loop {
        let frame = client.next().await;
        if frame["command_id"] == command_id {
            match frame["action"].as_str() {
                Some("command_applied") => return Ok(seen),
                Some("error") => return Err(frame),
                _ => {}
            }
        }
        seen.push(frame);
    }
}

#[tokio::test]
async fn admins_pin_members_see_it_and_a_member_is_refused() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB, CAROL]).await;
    let mut alice = app.connect(ALICE).await;
    let mut bob = app.connect(BOB).await;
    let first = alice
        .send_message(json!({"chat_id": group, "content": "rules"}))
        .await;
    let second = alice
        .send_message(json!({"chat_id": group, "content": "faq"}))
        .await;
    bob.expect("new_message").await;
    bob.expect("new_message").await;
    let (first, second) = (
        first["message_id"].as_i64().unwrap(),
        second["message_id"].as_i64().unwrap(),
    );

    // The owner pins over REST; everyone is told.
    let path = |m: i64| format!("/chats/{group}/messages/{m}/pin");
    assert_eq!(
        call(&app, reqwest::Method::PUT, ALICE, &path(first))
            .await
            .0,
        204
    );
    let told = bob.expect("message_pinned").await;
    assert_eq!(
        (told["message_id"].as_i64(), told["by"].as_i64()),
        (Some(first), Some(ALICE))
    );
    assert!(told["cursor"].as_u64().is_some(), "{told}");
    // A plain member is refused, over REST and the socket.
    assert_eq!(
        call(&app, reqwest::Method::PUT, BOB, &path(second)).await,
        (403, "forbidden".to_owned())
    );
    let refused = act(
        &mut bob,
        json!({"action": "pin_message", "chat_id": group, "message_id": second}),
        "b-pin",
    )
    .await
    .unwrap_err();
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("admin"),
        "{refused}"
    );
    // Made an admin, Bob pins over the socket.
    act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "admin"}),
        "a-role",
    )
    .await
    .unwrap();
    act(
        &mut bob,
        json!({"action": "pin_message", "chat_id": group, "message_id": second}),
        "b-pin-2",
    )
    .await
    .unwrap();
    assert_eq!(pinned(&app, CAROL, group).await, [second, first]);
    // Pinning again changes nothing (and tells nobody); unpinning one not pinned neither.
    assert_eq!(
        call(&app, reqwest::Method::PUT, ALICE, &path(second))
            .await
            .0,
        204
    );
    assert_eq!(pinned(&app, CAROL, group).await, [second, first]);
    // Unpinned over REST.
    assert_eq!(
        call(&app, reqwest::Method::DELETE, ALICE, &path(first))
            .await
            .0,
        204
    );
    let frames: Vec<Value> = {
        let mut frames = Vec::new();
        loop {
            let frame = alice.next().await;
            let done = frame["action"] == "message_unpinned";
            frames.push(frame);
            if done {
                break;
            }
        }
        frames
    };
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["action"] == "message_pinned")
            .count(),
        1,
        "the repeat told nobody: {frames:?}"
    );
    assert_eq!(
        call(&app, reqwest::Method::DELETE, ALICE, &path(first))
            .await
            .0,
        204
    );
    assert_eq!(pinned(&app, CAROL, group).await, [second]);
    // A deleted pinned message leaves the list.
    act(
        &mut alice,
        json!({"action": "delete_message", "chat_id": group, "message_id": second}),
        "a-del",
    )
    .await
    .unwrap();
    assert!(pinned(&app, CAROL, group).await.is_empty());
    // Outsiders see nothing.
    assert_eq!(
        call(&app, reqwest::Method::GET, 9, &format!("/chats/{group}")).await,
        (403, "forbidden".to_owned())
    );
}

#[tokio::test]
async fn either_member_pins_in_a_private_chat_and_garbage_is_refused() {
    let app = spawn_app().await;
    let private = app.create_chat(ALICE, false, &[BOB]).await;
    let mut bob = app.connect(BOB).await;
    let mut alice = app.connect(ALICE).await;
    let sent = alice
        .send_message(json!({"chat_id": private, "content": "address"}))
        .await;
    bob.expect("new_message").await;
    let id = sent["message_id"].as_i64().unwrap();
    act(
        &mut bob,
        json!({"action": "pin_message", "chat_id": private, "message_id": id}),
        "b1",
    )
    .await
    .unwrap();
    assert_eq!(pinned(&app, ALICE, private).await, [id]);

    let other = app.create_chat(CAROL, true, &[]).await;
    for (path, expected) in [
        (
            format!("/chats/{private}/messages/999999/pin"),
            (404, "not_found"),
        ),
        (
            format!("/chats/{other}/messages/{id}/pin"),
            (403, "forbidden"),
        ),
        (
            format!("/chats/{private}/messages/0/pin"),
            (422, "invalid_field"),
        ),
        (
            format!("/chats/{private}/messages/abc/pin"),
            (422, "invalid_field"),
        ),
        (
            format!("/chats/{private}/messages/9223372036854775808/pin"),
            (422, "invalid_field"),
        ),
        (
            "/chats/999999/messages/1/pin".to_owned(),
            (403, "forbidden"),
        ),
    ] {
        let (status, code) = call(&app, reqwest::Method::PUT, ALICE, &path).await;
        assert_eq!((status, code.as_str()), expected, "{path}");
    }
    for (frame, code) in [
        (
            json!({"action": "pin_message", "chat_id": private}),
            "missing_field",
        ),
        (
            json!({"action": "pin_message", "chat_id": private, "message_id": -4}),
            "invalid_field",
        ),
        (
            json!({"action": "unpin_message", "message_id": id}),
            "missing_field",
        ),
        (
            json!({"action": "pin_message", "chat_id": other, "message_id": id}),
            "forbidden",
        ),
    ] {
        let error = act(&mut alice, frame.clone(), "bad").await.unwrap_err();
        assert_eq!(error["code"], code, "{frame}: {error}");
    }
    // A deleted message cannot be pinned.
    let gone = alice
        .send_message(json!({"chat_id": private, "content": "oops"}))
        .await;
    act(
        &mut alice,
        json!({"action": "delete_message", "chat_id": private, "message_id": gone["message_id"]}),
        "d",
    )
    .await
    .unwrap();
    let error = act(
        &mut alice,
        json!({"action": "pin_message", "chat_id": private, "message_id": gone["message_id"]}),
        "p",
    )
    .await
    .unwrap_err();
    assert_eq!(error["code"], "message_deleted");
}

#[tokio::test]
async fn django_pins_as_the_system_and_the_catch_up_replays_each_change_once() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let sent = alice
        .send_message(json!({"chat_id": group, "content": "pin me"}))
        .await;
    let id = sent["message_id"].as_i64().unwrap();
    pipeline_drained(&app).await;
    let since = {
        let url = app.ws_url(&token(BOB));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = WsClient { stream };
        client.expect("unread").await["cursor"].as_u64().unwrap()
    };
    let client = app.nats().await;
    let mut events = client.subscribe("chat.events.>").await.unwrap();
    client.flush().await.unwrap();
    // Django pins (twice: one change), with a member as actor is refused, then unpins.
    for _ in 0..2 {
        publish_command(
            &app,
            &format!("chat.in.{group}.pin_message"),
            json!({"command_id": "dj-pin", "message_id": id, "pinned": true}),
        )
        .await;
    }
    publish_command(
        &app,
        &format!("chat.in.{group}.pin_message"),
        json!({"command_id": "dj-as-bob", "message_id": id, "pinned": false, "actor_id": BOB}),
    )
    .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.pin_message"),
        json!({"command_id": "dj-garbage", "message_id": 0, "pinned": true}),
    )
    .await;
    let (mut pins, mut refusals) = (0, Vec::new());
    while refusals.len() < 2 {
        let (_, event) = next_events(&mut events, 1).await.remove(0);
        match event["type"].as_str().unwrap() {
            "message_pinned" => {
                assert!(event.get("by").is_none(), "Django pins as nobody: {event}");
                pins += 1;
            }
            "command_rejected" => refusals.push(format!(
                "{} {}",
                event["command_id"].as_str().unwrap(),
                event["code"].as_str().unwrap()
            )),
            _ => {}
        }
    }
    assert!(pins >= 1);
    assert_eq!(
        refusals,
        ["dj-as-bob forbidden", "dj-garbage invalid_field"]
    );
    publish_command(
        &app,
        &format!("chat.in.{group}.pin_message"),
        json!({"command_id": "dj-unpin", "message_id": id, "pinned": false}),
    )
    .await;
    pipeline_drained(&app).await;
    assert!(pinned(&app, BOB, group).await.is_empty());

    let url = format!("{}&since={since}", app.ws_url(&token(BOB)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = WsClient { stream };
    bob.expect("unread").await;
    let mut actions = Vec::new();
    loop {
        let frame = bob.next().await;
        match frame["action"].as_str() {
            Some("synced") => break,
            Some("resync_required") => panic!("no exact catch-up: {frame}"),
            Some(action) if frame["cursor"].as_u64().unwrap_or(0) > since => {
                actions.push(action.to_owned());
            }
            _ => {}
        }
    }
    assert_eq!(actions, ["message_pinned", "message_unpinned"]);
}
