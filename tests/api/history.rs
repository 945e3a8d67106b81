//! History: `GET /chats/{id}/messages` and `GET /messages/{user_id}`, newest first, with cursor
//! pagination and each message's status for the caller.

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, eventually, spawn_app};

/// Sends `count` messages `m1..` into `chat_id`; returns their ids, oldest first.
async fn send_many(socket: &mut WsClient, chat_id: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 1..=count {
        let ack = socket
            .send_message(json!({"chat_id": chat_id, "content": format!("m{i}"), "client_msg_id": format!("h-{i}")}))
            .await;
        ids.push(ack["message_id"].as_i64().expect("message id"));
    }
    ids
}

/// The message ids of a history page, in the order given.
fn ids(page: &Value) -> Vec<i64> {
    page.as_array()
        .expect("history is an array")
        .iter()
        .map(|m| m["message_id"].as_i64().expect("message_id"))
        .collect()
}

async fn page(app: &TestApp, user: i64, path: &str) -> Vec<i64> {
    ids(&app.get_json(user, path).await)
}

#[tokio::test]
async fn chat_history_is_newest_first_with_every_field() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = send_many(&mut alice, chat_id, 3).await;

    let history = app.get_json(2, &format!("/chats/{chat_id}/messages")).await;
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(ids(&history), newest_first);
    for (item, i) in history.as_array().unwrap().iter().zip([3, 2, 1]) {
        assert_eq!(
            item["id"], item["message_id"],
            "id repeats message_id: {item}"
        );
        assert_eq!(item["chat_id"], chat_id);
        assert_eq!(item["sender_id"], 1);
        assert!(item["receiver_id"].is_null(), "a group message: {item}");
        assert_eq!(item["content"], format!("m{i}"));
        assert_eq!(item["content_type"], "text");
        assert!(item["file_url"].is_null());
        assert_eq!(item["client_msg_id"], format!("h-{i}"));
        assert!(
            item["timestamp"]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "RFC 3339 timestamp: {item}"
        );
        assert_eq!(item["status"], "sent", "bob has marked nothing: {item}");
    }
}

#[tokio::test]
async fn before_pages_cover_every_message_once_in_order() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = send_many(&mut alice, chat_id, 7).await;
    let mut newest_first = sent.clone();
    newest_first.reverse();

    let path = format!("/chats/{chat_id}/messages");
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let query = match cursor {
            Some(before) => format!("{path}?limit=3&before={before}"),
            None => format!("{path}?limit=3"),
        };
        let items = page(&app, 2, &query).await;
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 3, "page over the limit: {items:?}");
        cursor = items.last().copied();
        pages.push(items.len());
        seen.extend(items);
        assert!(pages.len() <= 7, "pagination does not end");
    }
    assert_eq!(pages, vec![3, 3, 1]);
    assert_eq!(
        seen, newest_first,
        "every message exactly once, newest first"
    );
}

#[tokio::test]
async fn after_returns_the_oldest_messages_after_the_cursor_newest_first() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let m = send_many(&mut alice, chat_id, 7).await;
    let path = format!("/chats/{chat_id}/messages");

    assert_eq!(
        page(&app, 2, &format!("{path}?after={}&limit=3", m[1])).await,
        vec![m[4], m[3], m[2]]
    );
    assert_eq!(
        page(&app, 2, &format!("{path}?after={}&limit=3", m[4])).await,
        vec![m[6], m[5]]
    );
    assert_eq!(
        page(&app, 2, &format!("{path}?after={}", m[6])).await,
        Vec::<i64>::new()
    );
    // Without a limit, everything after the cursor.
    assert_eq!(
        page(&app, 2, &format!("{path}?after={}", m[3])).await,
        vec![m[6], m[5], m[4]]
    );
    // Plain limit: the newest ones.
    assert_eq!(
        page(&app, 2, &format!("{path}?limit=2")).await,
        vec![m[6], m[5]]
    );
}

#[tokio::test]
async fn limit_out_of_range_is_422() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    for limit in [0, 101] {
        let response = app
            .get(1, &format!("/chats/{chat_id}/messages?limit={limit}"))
            .await;
        assert_eq!(response.status(), 422, "limit={limit}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "limit={limit}: {body}");
    }
    for limit in [1, 100] {
        let response = app
            .get(1, &format!("/chats/{chat_id}/messages?limit={limit}"))
            .await;
        assert_eq!(response.status(), 200, "limit={limit}");
    }
}

#[tokio::test]
async fn malformed_cursor_or_limit_is_422_with_detail() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    for query in ["limit=-1", "limit=ten", "before=abc", "after=1.5"] {
        let response = app
            .get(1, &format!("/chats/{chat_id}/messages?{query}"))
            .await;
        assert_eq!(response.status(), 422, "?{query}");
        let body: Value = response.json().await.expect("a JSON error body");
        assert!(body["detail"].is_string(), "?{query}: {body}");
    }
}

#[tokio::test]
async fn direct_history_limit_out_of_range_is_422() {
    let app = spawn_app().await;
    // Whether or not we ever talked, the page size is checked.
    for limit in [0, 101] {
        let response = app.get(1, &format!("/messages/2?limit={limit}")).await;
        assert_eq!(response.status(), 422, "limit={limit}, no chat yet");
    }
    app.create_chat(1, false, &[2]).await;
    for limit in [0, 101] {
        let response = app.get(1, &format!("/messages/2?limit={limit}")).await;
        assert_eq!(response.status(), 422, "limit={limit}, chat exists");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn non_member_gets_403() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    send_many(&mut alice, chat_id, 1).await;
    let response = app.get(3, &format!("/chats/{chat_id}/messages")).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn unknown_chat_gets_404() {
    let app = spawn_app().await;
    let response = app.get(1, "/chats/424242/messages").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn direct_history_is_my_private_chat_with_that_user() {
    let app = spawn_app().await;
    assert_eq!(
        app.get_json(1, "/messages/2").await,
        json!([]),
        "we never talked"
    );
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let first = alice
        .send_message(json!({"receiver_id": 2, "content": "hi bob"}))
        .await;
    let chat_id = first["chat_id"].as_i64().unwrap();
    bob.expect("new_message").await;
    let second = bob
        .send_message(json!({"receiver_id": 1, "content": "hi alice"}))
        .await;
    assert_eq!(second["chat_id"], chat_id);

    let direct = app.get_json(1, "/messages/2").await;
    assert_eq!(
        ids(&direct),
        vec![
            second["message_id"].as_i64().unwrap(),
            first["message_id"].as_i64().unwrap()
        ]
    );
    // The same shape as the chat's history.
    assert_eq!(
        direct,
        app.get_json(1, &format!("/chats/{chat_id}/messages")).await
    );
    for item in direct.as_array().unwrap() {
        assert_eq!(item["id"], item["message_id"]);
        assert!(item["status"].is_string(), "{item}");
        assert_eq!(item["chat_id"], chat_id);
    }
    assert_eq!(direct[0]["sender_id"], 2);
    assert_eq!(direct[0]["receiver_id"], 1);
    assert_eq!(direct[1]["sender_id"], 1);
    assert_eq!(direct[1]["receiver_id"], 2);

    // Bob sees the same messages from his side.
    assert_eq!(ids(&app.get_json(2, "/messages/1").await), ids(&direct));
    // Pagination works here too.
    assert_eq!(
        ids(&app.get_json(1, "/messages/2?limit=1").await),
        vec![second["message_id"].as_i64().unwrap()]
    );
    // Alice never talked to carol; carol is not in alice and bob's chat.
    assert_eq!(app.get_json(1, "/messages/3").await, json!([]));
    assert_eq!(app.get_json(3, "/messages/1").await, json!([]));
}

/// The status of `message_id` in `user`'s view of the chat.
async fn status_of(app: &TestApp, user: i64, chat_id: i64, message_id: i64) -> String {
    let history = app
        .get_json(user, &format!("/chats/{chat_id}/messages"))
        .await;
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("message {message_id} in {history}"))["status"]
        .as_str()
        .expect("status is a string")
        .to_owned()
}

/// Polls until `user` sees `message_id` with `status` (receipts are persisted asynchronously).
async fn wait_for_status(app: &TestApp, user: i64, chat_id: i64, message_id: i64, status: &str) {
    eventually(
        &format!("user {user} sees message {message_id} {status}"),
        || async {
            let seen = status_of(app, user, chat_id, message_id).await;
            if seen == status { Ok(()) } else { Err(seen) }
        },
    )
    .await;
}

#[tokio::test]
async fn statuses_go_from_sent_to_delivered_to_read() {
    let app = spawn_app().await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let ack = alice
        .send_message(json!({"receiver_id": 2, "content": "did you get this?"}))
        .await;
    let message_id = ack["message_id"].as_i64().unwrap();
    let chat_id = ack["chat_id"].as_i64().unwrap();
    bob.expect("new_message").await;
    assert_eq!(status_of(&app, 1, chat_id, message_id).await, "sent");
    assert_eq!(status_of(&app, 2, chat_id, message_id).await, "sent");

    bob.send(json!({"action": "delivered", "message_id": message_id}))
        .await;
    wait_for_status(&app, 1, chat_id, message_id, "delivered").await;
    wait_for_status(&app, 2, chat_id, message_id, "delivered").await;

    bob.send(json!({"action": "acknowledge", "message_id": message_id}))
        .await;
    wait_for_status(&app, 1, chat_id, message_id, "read").await;
    wait_for_status(&app, 2, chat_id, message_id, "read").await;

    // The same through the direct history.
    let direct = app.get_json(1, "/messages/2").await;
    assert_eq!(direct[0]["message_id"], message_id);
    assert_eq!(direct[0]["status"], "read");
}

#[tokio::test]
async fn read_marks_every_earlier_message_read() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let m = send_many(&mut alice, chat_id, 3).await;
    bob.send(json!({"action": "acknowledge", "message_id": m[1]}))
        .await;
    wait_for_status(&app, 1, chat_id, m[1], "read").await;
    assert_eq!(status_of(&app, 1, chat_id, m[0]).await, "read");
    assert_eq!(status_of(&app, 1, chat_id, m[2]).await, "sent");

    // Marks are watermarks: a later "delivered" of an older message does not undo "read".
    bob.send(json!({"action": "delivered", "message_id": m[0]}))
        .await;
    bob.send(json!({"action": "delivered", "message_id": m[2]}))
        .await;
    wait_for_status(&app, 1, chat_id, m[2], "delivered").await;
    assert_eq!(status_of(&app, 1, chat_id, m[0]).await, "read");
    assert_eq!(status_of(&app, 1, chat_id, m[1]).await, "read");
}
