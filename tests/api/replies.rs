//! Replies and forwards: `send_message` with `reply_to_message_id` (a message of the same
//! chat; frames and history quote its author and first 100 characters, nothing once it is
//! deleted, its new text once it is edited) and `forwarded_from` (a message the sender can
//! read; frames and history name the original's chat, id and author).

use serde_json::{Value, json};

use crate::helpers::{WsClient, pipeline_drained, spawn_app, token};

/// Sends a message that must be stored, passing over the frames before its ack.
async fn send_ok(socket: &mut WsClient, target: Value) -> Value {
    let mut frame = json!({"action": "send_message", "content_type": "text",
                           "client_msg_id": uuid::Uuid::now_v7().to_string()});
    frame
        .as_object_mut()
        .unwrap()
        .extend(target.as_object().unwrap().clone());
    socket.send(frame).await;
    loop {
        let next = socket.next().await;
        assert_ne!(next["action"], "error", "{next}");
        if next["action"] == "message_ack" {
            return next;
        }
    }
}

/// Reads frames up to the first with `action`.
async fn until(socket: &mut WsClient, action: &str) -> Value {
    loop {
        let next = socket.next().await;
        if next["action"] == action {
            return next;
        }
    }
}

#[tokio::test]
async fn a_reply_quotes_its_message_which_follows_edits_and_deletion() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let long = "é".repeat(150);
    let question = send_ok(&mut alice, json!({"chat_id": chat_id, "content": long})).await;
    bob.expect("new_message").await;
    let answer = send_ok(
        &mut bob,
        json!({"chat_id": chat_id, "content": "yes",
                             "reply_to_message_id": question["message_id"]}),
    )
    .await;
    let frame = until(&mut alice, "new_message").await;
    assert_eq!(frame["reply_to_message_id"], question["message_id"]);
    assert_eq!(frame["reply_quote"]["sender_id"], 1);
    assert_eq!(
        frame["reply_quote"]["text"],
        "é".repeat(100),
        "the first 100 characters"
    );
    let row = app.history_entry(1, chat_id, &answer["message_id"]).await;
    assert_eq!(row["reply_quote"], frame["reply_quote"]);
    assert!(
        app.history_entry(1, chat_id, &question["message_id"])
            .await
            .get("reply_to_message_id")
            .is_none()
    );

    alice
        .send(json!({"action": "edit_message", "chat_id": chat_id,
                     "message_id": question["message_id"], "content": "lunch at noon?"}))
        .await;
    until(&mut alice, "message_edited").await;
    let row = app.history_entry(2, chat_id, &answer["message_id"]).await;
    assert_eq!(
        row["reply_quote"],
        json!({"sender_id": 1, "text": "lunch at noon?"})
    );

    alice
        .send(json!({"action": "delete_message", "chat_id": chat_id,
                     "message_id": question["message_id"]}))
        .await;
    until(&mut alice, "message_deleted").await;
    pipeline_drained(&app).await;
    let row = app.history_entry(2, chat_id, &answer["message_id"]).await;
    assert_eq!(
        row["reply_to_message_id"], question["message_id"],
        "still a reply"
    );
    assert!(
        row.get("reply_quote").is_none(),
        "nothing of a deleted message: {row}"
    );

    // A reply to the deleted message: allowed, quoting nothing.
    let late = send_ok(
        &mut bob,
        json!({"chat_id": chat_id, "content": "too late",
                             "reply_to_message_id": question["message_id"]}),
    )
    .await;
    let row = app.history_entry(1, chat_id, &late["message_id"]).await;
    assert_eq!(row["reply_to_message_id"], question["message_id"]);
    assert!(row.get("reply_quote").is_none(), "{row}");

    // A member back from away gets the reply as it is now.
    let url = format!("{}&since=0", app.ws_url(&token(1)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut again = WsClient { stream };
    again.expect("unread").await;
    loop {
        let frame = again.next().await;
        if frame["action"] == "synced" {
            panic!("the reply was not replayed");
        }
        if frame["action"] == "new_message" && frame["message_id"] == answer["message_id"] {
            assert_eq!(frame["reply_to_message_id"], question["message_id"]);
            assert!(frame.get("reply_quote").is_none(), "{frame}");
            break;
        }
    }
}

#[tokio::test]
async fn a_reply_to_a_message_of_another_chat_is_refused() {
    let app = spawn_app().await;
    let ours = app.create_chat(1, true, &[2]).await;
    let theirs = app.create_chat(1, true, &[3]).await;
    let mut alice = app.connect(1).await;
    let elsewhere = send_ok(
        &mut alice,
        json!({"chat_id": theirs, "content": "not for chat one"}),
    )
    .await;
    for (reply_to, client_msg_id) in [
        (elsewhere["message_id"].clone(), "r-other"),
        (json!(i64::MAX), "r-max"),
        (json!(999_999), "r-none"),
    ] {
        alice
            .send(
                json!({"action": "send_message", "chat_id": ours, "content": "hm",
                         "client_msg_id": client_msg_id, "reply_to_message_id": reply_to}),
            )
            .await;
        alice.expect("message_accepted").await;
        let error = alice.expect_error("invalid_reply").await;
        assert_eq!(error["client_msg_id"], client_msg_id);
    }

    // From NATS too.
    let client = app.nats().await;
    let mut events = client
        .subscribe(format!("chat.events.{ours}.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{ours}.message"),
        json!({"sender_id": 1, "content": "x", "client_msg_id": "dj-r",
               "reply_to_message_id": elsewhere["message_id"]}),
    )
    .await;
    let (subject, event) = crate::helpers::next_events(&mut events, 1).await.remove(0);
    assert_eq!(subject, format!("chat.events.{ours}.command_rejected"));
    assert_eq!(event["code"], "invalid_reply");
    pipeline_drained(&app).await;
    let history = app.get_json(2, &format!("/chats/{ours}/messages")).await;
    assert_eq!(history, json!([]), "nothing stored");
}

#[tokio::test]
async fn a_forward_names_its_original_and_needs_a_message_the_sender_can_read() {
    let app = spawn_app().await;
    let origin = app.create_chat(1, true, &[2]).await;
    let target = app.create_chat(2, true, &[3]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut carol = app.connect(3).await;
    let voice = crate::media::upload_file(&app, 1, "voice.ogg", crate::media::ogg_opus()).await;
    let original = send_ok(
        &mut alice,
        json!({"chat_id": origin, "content": "the plan", "file_id": voice.file_id()}),
    )
    .await;
    bob.expect("new_message").await;
    let media = format!("/media/{}", voice.file_id());
    assert_eq!(app.get(3, &media).await.status(), 404, "not Carol's yet");

    // Without content: the original's text and file are copied.
    let copied = send_ok(
        &mut bob,
        json!({"chat_id": target, "content": "",
                             "forwarded_from": original["message_id"]}),
    )
    .await;
    let frame = until(&mut carol, "new_message").await;
    assert_eq!(frame["message_id"], copied["message_id"]);
    assert_eq!(frame["content"], "the plan");
    assert_eq!(frame["file_id"], voice.file_id());
    assert_eq!(
        frame["forwarded_from"],
        json!({"chat_id": origin, "message_id": original["message_id"], "sender_id": 1})
    );
    assert_eq!(
        app.get(3, &media).await.status(),
        200,
        "a forward's file is the chat's"
    );
    // With content: the sender's.
    let commented = send_ok(
        &mut bob,
        json!({"chat_id": target, "content": "look",
                             "forwarded_from": original["message_id"]}),
    )
    .await;
    let row = app.history_entry(3, target, &commented["message_id"]).await;
    assert_eq!(row["content"], "look");
    assert_eq!(row["forwarded_from"]["message_id"], original["message_id"]);

    // Carol cannot forward what she cannot read; nobody forwards a deleted message.
    carol
        .send(
            json!({"action": "send_message", "chat_id": target, "content": "",
                     "client_msg_id": "f-carol", "forwarded_from": original["message_id"]}),
        )
        .await;
    let error = until(&mut carol, "error").await;
    assert_eq!(error["code"], "invalid_forward", "{error}");
    assert_eq!(error["client_msg_id"], "f-carol");
    alice
        .send(json!({"action": "delete_message", "chat_id": origin,
                     "message_id": original["message_id"]}))
        .await;
    until(&mut alice, "message_deleted").await;
    bob.send(
        json!({"action": "send_message", "chat_id": target, "content": "again",
                    "client_msg_id": "f-deleted", "forwarded_from": original["message_id"]}),
    )
    .await;
    loop {
        let frame = bob.next().await;
        if frame["action"] == "error" {
            assert_eq!(frame["code"], "invalid_forward", "{frame}");
            assert_eq!(frame["client_msg_id"], "f-deleted");
            break;
        }
    }
    // The forward keeps its own copy.
    let row = app.history_entry(3, target, &copied["message_id"]).await;
    assert_eq!(row["content"], "the plan");
}

#[tokio::test]
async fn garbage_reply_and_forward_fields_are_refused_and_messages_still_flow() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    for (field, value, code) in [
        ("reply_to_message_id", json!(-1), "invalid_field"),
        ("reply_to_message_id", json!(0), "invalid_field"),
        ("reply_to_message_id", json!("7"), "invalid_field"),
        ("reply_to_message_id", json!(u64::MAX), "invalid_field"),
        ("reply_to_message_id", json!(1.5), "invalid_field"),
        ("forwarded_from", json!(-1), "invalid_field"),
        ("forwarded_from", json!({"message_id": 1}), "invalid_field"),
        ("forwarded_from", json!(i64::MAX), "invalid_forward"),
    ] {
        for round in 0..2 {
            let mut frame = json!({"action": "send_message", "chat_id": chat_id, "content": "x",
                                   "client_msg_id": format!("g-{field}-{value}-{round}")});
            frame[field] = value.clone();
            alice.send(frame).await;
            let mut next = alice.next().await;
            if next["action"] == "message_accepted" {
                next = alice.next().await;
            }
            assert_eq!(next["action"], "error", "{field}={value}: {next}");
            assert_eq!(next["code"], code, "{field}={value}: {next}");
        }
    }
    send_ok(
        &mut alice,
        json!({"chat_id": chat_id, "content": "still flowing"}),
    )
    .await;
}
