//! Deletion by the author over WebSocket and REST: a tombstone in history, `message_deleted`
//! to members (replayed on reconnect), the upload no longer served to them; nobody else may.

use serde_json::{Value, json};

use crate::helpers::{TestApp, pipeline_drained, spawn_app, token};

async fn delete(app: &TestApp, user_id: i64, chat_id: i64, message_id: &Value) -> u16 {
    app.http
        .delete(app.url(&format!("/chats/{chat_id}/messages/{message_id}")))
        .bearer_auth(token(user_id))
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_author_deletes_and_members_keep_a_tombstone() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let voice = crate::media::upload_file(&app, 1, "voice.ogg", crate::media::ogg_opus()).await;
    let with_file = alice
        .send_message(json!({"chat_id": chat_id, "content": "listen", "file_id": voice.file_id()}))
        .await;
    let text = alice
        .send_message(json!({"chat_id": chat_id, "content": "oops"}))
        .await;
    let since = bob.expect("new_message").await["cursor"].as_u64().unwrap();
    bob.expect("new_message").await;
    bob.send(json!({"action": "acknowledge", "message_id": text["message_id"]}))
        .await;
    alice.expect("status_update").await;
    let media = format!("/media/{}", voice.file_id());
    assert_eq!(app.get(2, &media).await.status(), 200, "served while live");

    // Others may not: another member, a stranger.
    bob.send(json!({"action": "delete_message", "chat_id": chat_id,
                    "message_id": with_file["message_id"], "command_id": "b1"}))
        .await;
    assert_eq!(bob.expect_error("forbidden").await["command_id"], "b1");
    assert_eq!(delete(&app, 2, chat_id, &text["message_id"]).await, 403);
    assert_eq!(delete(&app, 3, chat_id, &text["message_id"]).await, 403);
    assert_eq!(delete(&app, 1, chat_id, &json!(i64::MAX)).await, 404);
    assert_eq!(delete(&app, 1, chat_id, &json!(-1)).await, 422);

    // The author, over the socket and over REST; each twice.
    for _ in 0..2 {
        alice
            .send(json!({"action": "delete_message", "chat_id": chat_id,
                         "message_id": with_file["message_id"], "command_id": "a1"}))
            .await;
        assert_eq!(
            bob.expect("message_deleted").await["message_id"],
            with_file["message_id"]
        );
    }
    assert_eq!(delete(&app, 1, chat_id, &text["message_id"]).await, 204);
    assert_eq!(
        delete(&app, 1, chat_id, &text["message_id"]).await,
        204,
        "idempotent"
    );
    pipeline_drained(&app).await;

    let history = app.get_json(2, &format!("/chats/{chat_id}/messages")).await;
    let rows = history.as_array().unwrap();
    let ids: Vec<&Value> = rows.iter().map(|m| &m["message_id"]).collect();
    assert_eq!(
        ids,
        vec![&text["message_id"], &with_file["message_id"]],
        "ids and order kept"
    );
    for row in rows {
        assert_eq!(row["deleted"], true, "{row}");
        assert_eq!(row["content"], "");
        assert!(
            row["file_id"].is_null() && row["file_url"].is_null(),
            "{row}"
        );
    }
    let mine = app.get_json(1, &format!("/chats/{chat_id}/messages")).await;
    assert_eq!(mine[0]["status"], "read", "receipts kept");
    assert_eq!(
        app.get(2, &media).await.status(),
        404,
        "no longer served to members"
    );

    // A member back from away hears of both deletions, in order, and of no content.
    let url = format!("{}&since={since}", app.ws_url(&token(2)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = crate::helpers::WsClient { stream };
    bob.expect("unread").await;
    let mut deleted = Vec::new();
    loop {
        let frame = bob.next().await;
        match frame["action"].as_str() {
            Some("synced") => break,
            Some("message_deleted") => deleted.push(frame["message_id"].clone()),
            Some("new_message") => panic!("a deleted message replayed: {frame}"),
            _ => {}
        }
    }
    assert_eq!(
        deleted,
        vec![with_file["message_id"].clone(), text["message_id"].clone()]
    );
}

#[tokio::test]
async fn a_deleted_messages_edits_are_not_replayed() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "v1"}))
        .await;
    let since = bob.expect("new_message").await["cursor"].as_u64().unwrap();
    drop(bob);
    alice
        .send(json!({"action": "edit_message", "chat_id": chat_id,
                     "message_id": sent["message_id"], "content": "secret v2"}))
        .await;
    alice.expect("message_edited").await;
    alice
        .send(json!({"action": "delete_message", "chat_id": chat_id,
                     "message_id": sent["message_id"]}))
        .await;
    alice.expect("message_deleted").await;

    let url = format!("{}&since={since}", app.ws_url(&token(2)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = crate::helpers::WsClient { stream };
    bob.expect("unread").await;
    let mut actions = Vec::new();
    loop {
        let frame = bob.next().await;
        assert!(
            !frame.to_string().contains("secret"),
            "an old text replayed: {frame}"
        );
        match frame["action"].as_str() {
            Some("synced") => break,
            Some(action) => actions.push(action.to_owned()),
            None => {}
        }
    }
    assert!(
        actions.contains(&"message_deleted".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn garbage_delete_frames_are_refused_and_messages_still_flow() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let frames = [
        (
            json!({"action": "delete_message", "chat_id": chat_id}),
            "missing_field",
        ),
        (
            json!({"action": "delete_message", "message_id": 1}),
            "missing_field",
        ),
        (
            json!({"action": "delete_message", "chat_id": chat_id, "message_id": -1}),
            "invalid_field",
        ),
        (
            json!({"action": "delete_message", "chat_id": chat_id, "message_id": u64::MAX}),
            "invalid_field",
        ),
        (
            json!({"action": "delete_message", "chat_id": 0, "message_id": 1}),
            "invalid_field",
        ),
        (
            json!({"action": "delete_message", "chat_id": i64::MAX, "message_id": 1}),
            "forbidden",
        ),
        (
            json!({"action": "delete_message", "chat_id": chat_id, "message_id": 1, "command_id": "x\u{0}"}),
            "invalid_field",
        ),
        (
            json!({"action": "delete_message", "chat_id": chat_id, "message_id": i64::MAX, "command_id": "max"}),
            "not_found",
        ),
    ];
    for (frame, code) in frames.iter().chain(frames.iter()) {
        alice.send(frame.clone()).await;
        let error = alice.expect_error(code).await;
        if frame["command_id"] == "max" {
            assert_eq!(
                error["command_id"], "max",
                "a refusal names the change: {error}"
            );
        }
    }
    // A frame refused before it is published names its command_id too.
    alice
        .send(
            json!({"action": "delete_message", "chat_id": chat_id, "message_id": -5,
                     "command_id": "neg"}),
        )
        .await;
    assert_eq!(
        alice.expect_error("invalid_field").await["command_id"],
        "neg"
    );
    alice
        .send_message(json!({"chat_id": chat_id, "content": "still flowing"}))
        .await;
}

#[tokio::test]
async fn over_nats_a_deleter_id_must_be_the_author_and_moderation_may_delete_any() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mine = alice
        .send_message(json!({"chat_id": chat_id, "content": "alice's"}))
        .await;
    bob.expect("new_message").await;
    let theirs = bob
        .send_message(json!({"chat_id": chat_id, "content": "bob's"}))
        .await;
    alice.expect("new_message").await;
    let client = app.nats().await;
    let mut events = client
        .subscribe(format!("chat.events.{chat_id}.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    let subject = format!("chat.in.{chat_id}.delete_message");
    crate::helpers::publish_command(
        &app,
        &subject,
        json!({"command_id": "dj-x", "message_id": mine["message_id"], "deleter_id": 2}),
    )
    .await;
    crate::helpers::publish_command(
        &app,
        &subject,
        json!({"command_id": "dj-1", "message_id": mine["message_id"], "deleter_id": 1}),
    )
    .await;
    // Moderation (no deleter_id): any message.
    crate::helpers::publish_command(
        &app,
        &subject,
        json!({"command_id": "dj-m", "message_id": theirs["message_id"]}),
    )
    .await;
    let seen = crate::helpers::next_events(&mut events, 3).await;
    assert_eq!(seen[0].0, format!("chat.events.{chat_id}.command_rejected"));
    assert_eq!(seen[0].1["code"], "forbidden");
    assert_eq!(seen[0].1["command_id"], "dj-x");
    assert_eq!(seen[1].0, format!("chat.events.{chat_id}.message_deleted"));
    assert_eq!(seen[1].1["message_id"], mine["message_id"]);
    assert_eq!(seen[1].1["command_id"], "dj-1");
    assert!(seen[1].1["cursor"].is_u64(), "journaled: {}", seen[1].1);
    assert_eq!(seen[2].0, format!("chat.events.{chat_id}.message_deleted"));
    assert_eq!(seen[2].1["message_id"], theirs["message_id"]);
    for _ in 0..2 {
        bob.expect("message_deleted").await;
    }
    pipeline_drained(&app).await;
    let history = app.get_json(2, &format!("/chats/{chat_id}/messages")).await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["deleted"] == true),
        "{history}"
    );
}

#[tokio::test]
async fn a_removed_member_may_no_longer_delete_their_messages() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let sent = bob
        .send_message(json!({"chat_id": chat_id, "content": "before I left"}))
        .await;
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{chat_id}.remove_members"),
        json!({"command_id": "r", "user_ids": [2]}),
    )
    .await;
    bob.expect("member_removed").await;
    bob.send(json!({"action": "delete_message", "chat_id": chat_id,
                    "message_id": sent["message_id"], "command_id": "late"}))
        .await;
    assert_eq!(bob.expect_error("forbidden").await["command_id"], "late");
    assert_eq!(delete(&app, 2, chat_id, &sent["message_id"]).await, 403);
    let history = app.get_json(1, &format!("/chats/{chat_id}/messages")).await;
    assert_eq!(history[0]["content"], "before I left");
}
