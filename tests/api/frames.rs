//! Bad frames: each is answered with an `error` frame and the socket keeps working; a frame
//! over the size limit closes the socket with 1009; `ping` answers `pong`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, WsClient, spawn_app};

/// An app, a group chat of users 1 and 2, and user 1's socket.
struct Fixture {
    app: TestApp,
    chat_id: i64,
    socket: WsClient,
    sent: usize,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = spawn_app().await;
        let chat_id = app.create_chat(1, true, &[2]).await;
        let socket = app.connect(1).await;
        Fixture {
            app,
            chat_id,
            socket,
            sent: 0,
        }
    }

    /// Sends a text frame that must be refused with `code`; then checks the socket still
    /// works. Returns the error frame.
    async fn refused_text(&mut self, frame: &str, code: &str) -> Value {
        self.socket.send_raw(Message::Text(frame.into())).await;
        self.refused(code).await
    }

    /// Sends a JSON frame that must be refused with `code`; see [`Fixture::refused_text`].
    async fn refused_json(&mut self, frame: Value, code: &str) -> Value {
        self.refused_text(&frame.to_string(), code).await
    }

    async fn refused(&mut self, code: &str) -> Value {
        let error = self.socket.expect_error(code).await;
        self.still_works().await;
        error
    }

    /// A valid send still gets `message_accepted` and `message_ack`.
    async fn still_works(&mut self) {
        self.sent += 1;
        let client_msg_id = format!("still-works-{}", self.sent);
        self.socket
            .send(json!({
                "action": "send_message",
                "chat_id": self.chat_id,
                "content": "still here",
                "content_type": "text",
                "client_msg_id": client_msg_id,
            }))
            .await;
        let accepted = self.socket.expect("message_accepted").await;
        assert_eq!(accepted["client_msg_id"], client_msg_id);
        let ack = self.socket.expect("message_ack").await;
        assert_eq!(ack["client_msg_id"], client_msg_id);
        assert_eq!(ack["chat_id"], self.chat_id);
        assert!(ack["message_id"].as_i64().is_some_and(|id| id > 0));
    }
}

#[tokio::test]
async fn invalid_json_is_answered_with_bad_json() {
    let mut f = Fixture::new().await;
    f.refused_text("{not json", "bad_json").await;
    f.refused_text("", "bad_json").await;
}

#[tokio::test]
async fn unknown_action_is_answered_with_unknown_action() {
    let mut f = Fixture::new().await;
    f.refused_json(
        json!({"action": "dance", "chat_id": f.chat_id}),
        "unknown_action",
    )
    .await;
}

#[tokio::test]
async fn missing_action_is_answered_with_missing_field() {
    let mut f = Fixture::new().await;
    let frame = json!({"chat_id": f.chat_id, "content": "no action"});
    f.refused_json(frame, "missing_field").await;
}

#[tokio::test]
async fn send_without_chat_or_receiver_is_answered_with_missing_field() {
    let mut f = Fixture::new().await;
    let error = f
        .refused_json(
            json!({"action": "send_message", "content": "to whom?", "content_type": "text"}),
            "missing_field",
        )
        .await;
    // The Python service's clients read the `error` key.
    let text = error["error"].as_str().expect("error is a string");
    assert!(!text.is_empty());
    assert_eq!(error["error"], error["detail"]);
}

#[tokio::test]
async fn empty_content_is_answered_with_empty_content() {
    let mut f = Fixture::new().await;
    let chat_id = f.chat_id;
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content": "", "content_type": "text"}),
        "empty_content",
    )
    .await;
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content": "  \n ", "content_type": "text"}),
        "empty_content",
    )
    .await;
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content_type": "text"}),
        "empty_content",
    )
    .await;
}

#[tokio::test]
async fn content_over_the_limit_is_answered_with_content_too_long() {
    let mut f = Fixture::new().await;
    let chat_id = f.chat_id;
    // The default limit is 10000 characters: exactly that many is fine.
    f.socket
        .send_message(json!({"chat_id": chat_id, "content": "x".repeat(10_000)}))
        .await;
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content": "x".repeat(10_001), "content_type": "text"}),
        "content_too_long",
    )
    .await;
}

#[tokio::test]
async fn field_of_the_wrong_type_is_answered_with_an_error() {
    let mut f = Fixture::new().await;
    let chat_id = f.chat_id;
    f.refused_json(
        json!({"action": "send_message", "chat_id": "seven", "content": "hi"}),
        "invalid_field",
    )
    .await;
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content": 42}),
        "invalid_field",
    )
    .await;
    f.refused_json(
        json!({"action": "acknowledge", "message_id": "forty-two"}),
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn unknown_content_type_is_answered_with_an_error() {
    let mut f = Fixture::new().await;
    let frame = json!({"action": "send_message", "chat_id": f.chat_id, "content": "hi", "content_type": "gif"});
    f.refused_json(frame, "invalid_field").await;
}

#[tokio::test]
async fn client_msg_id_over_64_chars_is_answered_with_an_error() {
    let mut f = Fixture::new().await;
    let chat_id = f.chat_id;
    // 64 characters is the longest allowed.
    let longest = "c".repeat(64);
    let ack = f
        .socket
        .send_message(json!({"chat_id": chat_id, "content": "hi", "client_msg_id": longest}))
        .await;
    assert_eq!(ack["client_msg_id"], longest);
    f.refused_json(
        json!({"action": "send_message", "chat_id": chat_id, "content": "hi", "client_msg_id": "c".repeat(65)}),
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn binary_frame_is_answered_with_an_error() {
    let mut f = Fixture::new().await;
    let frame = json!({"action": "send_message", "chat_id": f.chat_id, "content": "hi"});
    f.socket
        .send_raw(Message::Binary(frame.to_string().into_bytes().into()))
        .await;
    f.refused("bad_json").await;
}

#[tokio::test]
async fn sending_to_a_group_i_am_not_in_is_forbidden() {
    let mut f = Fixture::new().await;
    let others = f.app.create_chat(3, true, &[4]).await;
    let error = f
        .refused_json(
            json!({"action": "send_message", "chat_id": others, "content": "let me in", "content_type": "text", "client_msg_id": "intruder-1"}),
            "forbidden",
        )
        .await;
    assert_eq!(error["client_msg_id"], "intruder-1");
    // Nothing was stored in the group.
    let history = f
        .app
        .get_json(3, &format!("/chats/{others}/messages"))
        .await;
    assert_eq!(history, json!([]));
}

#[tokio::test]
async fn acknowledging_an_unknown_message_is_not_found() {
    let mut f = Fixture::new().await;
    f.refused_json(
        json!({"action": "acknowledge", "message_id": 999_999}),
        "not_found",
    )
    .await;
    f.refused_json(
        json!({"action": "delivered", "message_id": 999_999}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn marking_a_message_of_a_chat_i_am_not_in_is_refused() {
    let mut f = Fixture::new().await;
    let others = f.app.create_chat(3, true, &[4]).await;
    let mut carol = f.app.connect(3).await;
    let ack = carol
        .send_message(json!({"chat_id": others, "content": "private to 3 and 4"}))
        .await;
    let message_id = ack["message_id"].as_i64().unwrap();
    // A stranger learns nothing about the message: the same answer as for a missing one.
    f.refused_json(
        json!({"action": "acknowledge", "message_id": message_id}),
        "not_found",
    )
    .await;
    f.refused_json(
        json!({"action": "delivered", "message_id": message_id}),
        "not_found",
    )
    .await;
    carol.expect_silence(Duration::from_millis(300)).await;
    let history = f
        .app
        .get_json(3, &format!("/chats/{others}/messages"))
        .await;
    assert_eq!(history[0]["status"], "sent", "{history}");
}

#[tokio::test]
async fn acknowledging_my_own_message_is_forbidden() {
    let mut f = Fixture::new().await;
    let ack = f
        .socket
        .send_message(json!({"chat_id": f.chat_id, "content": "mine"}))
        .await;
    let message_id = ack["message_id"].as_i64().unwrap();
    f.refused_json(
        json!({"action": "acknowledge", "message_id": message_id}),
        "forbidden",
    )
    .await;
    f.refused_json(
        json!({"action": "delivered", "message_id": message_id}),
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn sending_to_myself_by_receiver_id_is_refused() {
    let mut f = Fixture::new().await;
    let error = f
        .refused_json(
            json!({"action": "send_message", "receiver_id": 1, "content": "note to self", "client_msg_id": "self-1"}),
            "invalid_field",
        )
        .await;
    assert_eq!(error["client_msg_id"], "self-1");
    // No private chat with myself was created.
    assert_eq!(f.app.get_json(1, "/messages/1").await, json!([]));
}

#[tokio::test]
async fn the_socket_survives_many_bad_frames_in_a_row() {
    let mut f = Fixture::new().await;
    let chat_id = f.chat_id;
    let bad = [
        ("[1, 2", "bad_json"),
        (r#"{"action": 5}"#, "invalid_field"),
        (r#"{"action": "fly"}"#, "unknown_action"),
        (
            r#"{"action": "send_message", "content": "x"}"#,
            "missing_field",
        ),
        (r#"{"action": "acknowledge"}"#, "missing_field"),
    ];
    for (frame, code) in bad {
        f.socket.send_raw(Message::Text(frame.into())).await;
        f.socket.expect_error(code).await;
    }
    let empty = json!({"action": "send_message", "chat_id": chat_id, "content": " "});
    f.socket.send(empty).await;
    f.socket.expect_error("empty_content").await;
    f.still_works().await;
}

#[tokio::test]
async fn frame_over_the_size_limit_closes_with_1009() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut socket = app.connect(1).await;
    let content = "x".repeat(70 * 1024);
    let frame = json!({"action": "send_message", "chat_id": chat_id, "content": content});
    assert!(frame.to_string().len() > 64 * 1024);
    socket.send(frame).await;
    assert_eq!(socket.close_code().await, 1009);
}

#[tokio::test]
async fn ping_answers_pong() {
    let mut f = Fixture::new().await;
    f.socket.send(json!({"action": "ping"})).await;
    assert_eq!(f.socket.next().await, json!({"action": "pong"}));
    f.still_works().await;
}
