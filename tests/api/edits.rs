//! Edits by the author: over WebSocket, REST and NATS; members see `message_edited` and the
//! history shows the new text; the texts it replaced are for staff only; everything else is
//! refused with a code that says why.

use serde_json::{Value, json};

use crate::helpers::{TestApp, publish_command, spawn_app, spawn_app_with, token, token_with};

/// A PATCH of a message's text as `user_id`.
async fn patch(
    app: &TestApp,
    user_id: i64,
    chat_id: i64,
    message_id: &Value,
    body: Value,
) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/chats/{chat_id}/messages/{message_id}")))
        .bearer_auth(token(user_id))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

/// The revisions of a message as read with `token`.
async fn revisions(
    app: &TestApp,
    token: &str,
    chat_id: i64,
    message_id: &Value,
) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/chats/{chat_id}/messages/{message_id}/revisions")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

fn staff_token(user_id: i64) -> String {
    token_with(json!({
        "token_type": "access",
        "exp": chrono::Utc::now().timestamp() + 300,
        "user_id": user_id,
        "is_staff": true,
    }))
}

#[tokio::test]
async fn the_author_edits_and_every_member_sees_the_new_text() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let first = alice
        .send_message(json!({"chat_id": chat_id, "content": "helo"}))
        .await;
    let second = alice
        .send_message(json!({"chat_id": chat_id, "content": "after"}))
        .await;
    bob.expect("new_message").await;
    bob.expect("new_message").await;
    bob.send(json!({"action": "acknowledge", "message_id": first["message_id"]}))
        .await;
    alice.expect("status_update").await;

    alice
        .send(json!({"action": "edit_message", "chat_id": chat_id,
                     "message_id": first["message_id"], "content": "hello", "command_id": "e1"}))
        .await;
    for socket in [&mut alice, &mut bob] {
        let edited = socket.expect("message_edited").await;
        assert_eq!(edited["message_id"], first["message_id"]);
        assert_eq!(edited["chat_id"], chat_id);
        assert_eq!(edited["sender_id"], 1);
        assert_eq!(edited["content"], "hello");
        assert!(edited["cursor"].as_u64().is_some(), "journaled: {edited}");
        assert!(edited["edited_at"].as_str().is_some(), "{edited}");
    }

    // REST: the same, answered with the message as history shows it.
    let response = patch(
        &app,
        1,
        chat_id,
        &first["message_id"],
        json!({"content": "hello!"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["content"], "hello!");
    assert_eq!(view["message_id"], first["message_id"]);
    assert_eq!(bob.expect("message_edited").await["content"], "hello!");

    // History: the current text, edited_at, the same id, order and receipts.
    let history = app.get_json(2, &format!("/chats/{chat_id}/messages")).await;
    let ids: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["message_id"])
        .collect();
    assert_eq!(ids, vec![&second["message_id"], &first["message_id"]]);
    let edited = app.history_entry(1, chat_id, &first["message_id"]).await;
    assert_eq!(edited["content"], "hello!");
    assert!(edited["edited_at"].as_str().is_some(), "{edited}");
    assert_eq!(edited["status"], "read", "receipts unchanged");
    let untouched = app.history_entry(1, chat_id, &second["message_id"]).await;
    assert!(untouched.get("edited_at").is_none(), "{untouched}");

    // The texts replaced: staff only, oldest first.
    for member in [1, 2] {
        let status = revisions(&app, &token(member), chat_id, &first["message_id"])
            .await
            .status();
        assert_eq!(status, 403, "member {member}");
    }
    let response = revisions(&app, &staff_token(99), chat_id, &first["message_id"]).await;
    assert_eq!(response.status(), 200);
    let kept: Value = response.json().await.unwrap();
    let texts: Vec<&Value> = kept
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["content"])
        .collect();
    assert_eq!(texts, vec!["helo", "hello"]);
    assert_eq!(kept[0]["editor_id"], 1);
    assert_eq!(
        revisions(&app, &staff_token(99), chat_id + 1000, &first["message_id"])
            .await
            .status(),
        404
    );

    // A repeated edit (same command id) is applied once.
    alice
        .send(json!({"action": "edit_message", "chat_id": chat_id,
                     "message_id": first["message_id"], "content": "hello", "command_id": "e1"}))
        .await;
    crate::helpers::pipeline_drained(&app).await;
    let kept: Value = revisions(&app, &staff_token(99), chat_id, &first["message_id"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept.as_array().unwrap().len(), 2, "{kept}");
    assert_eq!(
        app.history_entry(1, chat_id, &first["message_id"]).await["content"],
        "hello!"
    );
}

#[tokio::test]
async fn only_the_author_in_the_chat_may_edit_text_that_is_still_there() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let other_chat = app.create_chat(2, true, &[3]).await;
    let mut bob = app.connect(2).await;
    let elsewhere = bob
        .send_message(json!({"chat_id": other_chat, "content": "elsewhere"}))
        .await;
    drop(bob);
    let mut alice = app.connect(1).await;
    let mine = alice
        .send_message(json!({"chat_id": chat_id, "content": "mine"}))
        .await;
    let voice = crate::media::upload_file(&app, 1, "voice.ogg", crate::media::ogg_opus()).await;
    let file_only = alice
        .send_message(json!({"chat_id": chat_id, "content": "", "file_id": voice.file_id()}))
        .await;
    let gone = alice
        .send_message(json!({"chat_id": chat_id, "content": "soon gone"}))
        .await;
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.delete_message"),
        json!({"command_id": "del", "message_id": gone["message_id"]}),
    )
    .await;
    alice.expect("message_deleted").await;
    let mut bob = app.connect(2).await;

    let edit = |message: &Value, chat: i64, id: &str| {
        json!({"action": "edit_message", "chat_id": chat, "message_id": message["message_id"],
               "content": "changed", "command_id": id})
    };
    // Someone else's message: refused by the persister, named by its command id.
    bob.send(edit(&mine, chat_id, "b1")).await;
    let refused = bob.expect_error("forbidden").await;
    assert_eq!(refused["command_id"], "b1");
    // A chat I am not in: refused at the socket.
    alice.send(edit(&elsewhere, other_chat, "a1")).await;
    alice.expect_error("forbidden").await;
    // A message of another chat named under mine.
    alice.send(edit(&elsewhere, chat_id, "a2")).await;
    assert_eq!(alice.expect_error("not_found").await["command_id"], "a2");
    alice.send(edit(&gone, chat_id, "a3")).await;
    assert_eq!(
        alice.expect_error("message_deleted").await["command_id"],
        "a3"
    );
    alice.send(edit(&file_only, chat_id, "a4")).await;
    assert_eq!(alice.expect_error("not_editable").await["command_id"], "a4");
    alice
        .send(
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": mine["message_id"],
                     "content": "x", "file_id": voice.file_id()}),
        )
        .await;
    alice.expect_error("not_editable").await;

    // REST says the same with status codes.
    let body = json!({"content": "changed"});
    let cases = [
        (2, &mine["message_id"], body.clone(), 403),
        (3, &mine["message_id"], body.clone(), 403),
        (1, &elsewhere["message_id"], body.clone(), 404),
        (1, &gone["message_id"], body.clone(), 422),
        (1, &file_only["message_id"], body.clone(), 422),
        (1, &json!(i64::MAX), body.clone(), 404),
        (1, &json!(-1), body.clone(), 422),
        (1, &mine["message_id"], json!({"content": " "}), 422),
        (1, &mine["message_id"], json!({"content": "a\u{0}b"}), 422),
        (
            1,
            &mine["message_id"],
            json!({"content": "x".repeat(10_001)}),
            422,
        ),
        (1, &mine["message_id"], json!({"text": "x"}), 422),
    ];
    for (user, message_id, body, expected) in cases {
        let shown = body.to_string();
        let status = patch(&app, user, chat_id, message_id, body).await.status();
        assert_eq!(
            status, expected,
            "user {user}, message {message_id}, {shown:.60}"
        );
    }

    // Nothing changed, and the author still can.
    assert_eq!(
        app.history_entry(1, chat_id, &mine["message_id"]).await["content"],
        "mine"
    );
    alice.send(edit(&mine, chat_id, "ok")).await;
    assert_eq!(bob.expect("message_edited").await["content"], "changed");
}

#[tokio::test]
async fn an_edit_after_the_window_is_refused() {
    // A zero window: any edit comes after it.
    let app = spawn_app_with(&[("EDIT_WINDOW", "0s")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "final"}))
        .await;
    alice
        .send(json!({"action": "edit_message", "chat_id": chat_id,
                     "message_id": sent["message_id"], "content": "not final"}))
        .await;
    alice.expect_error("edit_window_passed").await;
    let response = patch(
        &app,
        1,
        chat_id,
        &sent["message_id"],
        json!({"content": "no"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        app.history_entry(1, chat_id, &sent["message_id"]).await["content"],
        "final"
    );
}

#[tokio::test]
async fn django_edits_over_nats_and_hears_of_refusals() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "typo"}))
        .await;
    bob.expect("new_message").await;
    let client = app.nats().await;
    let mut events = client
        .subscribe(format!("chat.events.{chat_id}.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    // `type` and `chat_id` implied by the subject, as for the other commands.
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.edit_message"),
        json!({"command_id": "dj-1", "message_id": sent["message_id"], "editor_id": 1,
               "content": "fixed"}),
    )
    .await;
    assert_eq!(bob.expect("message_edited").await["content"], "fixed");
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.edit_message"),
        json!({"command_id": "dj-2", "message_id": sent["message_id"], "editor_id": 2,
               "content": "hijack"}),
    )
    .await;
    let seen = crate::helpers::next_events(&mut events, 2).await;
    assert_eq!(seen[0].0, format!("chat.events.{chat_id}.message_edited"));
    assert_eq!(seen[0].1["content"], "fixed");
    assert_eq!(seen[0].1["command_id"], "dj-1");
    assert_eq!(seen[1].0, format!("chat.events.{chat_id}.command_rejected"));
    assert_eq!(seen[1].1["code"], "forbidden");
    assert_eq!(seen[1].1["command"], "edit_message");
    assert_eq!(seen[1].1["command_id"], "dj-2");
}

#[tokio::test]
async fn garbage_edit_frames_are_refused_and_messages_still_flow() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "x"}))
        .await;
    let id = &sent["message_id"];
    let frames = [
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": id, "content": "a\u{0}"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": id, "content": "x".repeat(10_001)}),
            "content_too_long",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": -1, "content": "a"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": 0, "content": "a"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": "7", "content": "a"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": u64::MAX, "content": "a"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": i64::MIN, "message_id": id, "content": "a"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": i64::MAX, "message_id": id, "content": "a"}),
            "forbidden",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": id, "content": ["a"]}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": id, "content": "a", "command_id": "c\u{0}"}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": id, "content": "a", "command_id": "c".repeat(129)}),
            "invalid_field",
        ),
        (
            json!({"action": "edit_message", "chat_id": chat_id, "message_id": i64::MAX, "content": "a", "command_id": "max"}),
            "not_found",
        ),
    ];
    // Each twice: a repeat is answered the same.
    for (frame, code) in frames.iter().chain(frames.iter()) {
        alice.send(frame.clone()).await;
        let error = alice.expect_error(code).await;
        if *code == "not_found" {
            assert_eq!(error["command_id"], "max");
        }
    }
    assert_eq!(app.history_entry(1, chat_id, id).await["content"], "x");
    alice
        .send_message(json!({"chat_id": chat_id, "content": "still flowing"}))
        .await;
}

#[tokio::test]
async fn a_reconnecting_member_gets_the_edits_it_missed_in_order() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "v1"}))
        .await;
    let since = bob.expect("new_message").await["cursor"].as_u64().unwrap();
    drop(bob);
    for (n, text) in ["v2", "v3"].iter().enumerate() {
        alice
            .send(json!({"action": "edit_message", "chat_id": chat_id,
                         "message_id": sent["message_id"], "content": text,
                         "command_id": format!("e{n}")}))
            .await;
        alice.expect("message_edited").await;
    }

    let url = format!("{}&since={since}", app.ws_url(&token(2)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = crate::helpers::WsClient { stream };
    bob.expect("unread").await;
    let mut edits = Vec::new();
    loop {
        let frame = bob.next().await;
        match frame["action"].as_str() {
            Some("synced") => break,
            Some("message_edited") if frame["cursor"].as_u64().unwrap() > since => {
                edits.push(frame)
            }
            _ => {}
        }
    }
    let texts: Vec<&Value> = edits.iter().map(|f| &f["content"]).collect();
    assert_eq!(texts, vec!["v2", "v3"], "both edits, oldest first");
    assert!(edits[0]["cursor"].as_u64() < edits[1]["cursor"].as_u64());
}
