//! Reactions: `react` / `unreact` over WebSocket, REST and NATS; one of each emoji per user
//! and message, at most 20 distinct emoji per message, members only, not on a deleted
//! message; history shows per-emoji counts and whether I reacted; `reaction_added` and
//! `reaction_removed` reach every member, with a cursor, and are replayed on reconnect.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, pipeline_drained, spawn_app, token};

/// `PUT` (`add`) or `DELETE` a reaction over REST; the status.
async fn rest(
    app: &TestApp,
    user: i64,
    chat_id: i64,
    message_id: &Value,
    emoji: &str,
    add: bool,
) -> u16 {
    let path = format!(
        "/chats/{chat_id}/messages/{message_id}/reactions/{}",
        utf8_percent_encode(emoji, NON_ALPHANUMERIC)
    );
    let request = if add {
        app.http.put(app.url(&path))
    } else {
        app.http.delete(app.url(&path))
    };
    request
        .bearer_auth(token(user))
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

/// The reactions history shows `user` on `message_id`.
async fn reactions_seen(app: &TestApp, user: i64, chat_id: i64, message_id: &Value) -> Value {
    app.history_entry(user, chat_id, message_id).await["reactions"].clone()
}

fn react(chat_id: i64, message_id: &Value, emoji: &str, command_id: &str) -> Value {
    json!({"action": "react", "chat_id": chat_id, "message_id": message_id, "emoji": emoji,
           "command_id": command_id})
}

#[tokio::test]
async fn members_react_once_per_emoji_and_everyone_sees_the_counts() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "lunch?"}))
        .await;
    let id = &sent["message_id"];
    bob.expect("new_message").await;

    // Bob reacts twice with the same emoji (socket, then REST): one reaction, one frame.
    bob.send(react(chat_id, id, "👍🏽", "b1")).await;
    for socket in [&mut alice, &mut bob] {
        let frame = socket.expect("reaction_added").await;
        assert_eq!(frame["emoji"], "👍🏽");
        assert_eq!(frame["user_id"], 2);
        assert_eq!(frame["message_id"], *id);
        assert!(frame["cursor"].is_u64(), "journaled: {frame}");
    }
    assert_eq!(rest(&app, 2, chat_id, id, "👍🏽", true).await, 204);
    assert_eq!(rest(&app, 3, chat_id, id, "👍🏽", true).await, 204);
    assert_eq!(rest(&app, 1, chat_id, id, "👨‍👩‍👧‍👦", true).await, 204);
    // Bob's repeat announced nothing: the next frames are Carol's and Alice's.
    assert_eq!(bob.expect("reaction_added").await["user_id"], 3);
    assert_eq!(bob.expect("reaction_added").await["user_id"], 1);
    for user in [3, 1] {
        assert_eq!(alice.expect("reaction_added").await["user_id"], user);
    }
    pipeline_drained(&app).await;

    assert_eq!(
        reactions_seen(&app, 2, chat_id, id).await,
        json!([{"emoji": "👍🏽", "count": 2, "me": true},
               {"emoji": "👨‍👩‍👧‍👦", "count": 1, "me": false}])
    );
    assert_eq!(
        reactions_seen(&app, 1, chat_id, id).await,
        json!([{"emoji": "👍🏽", "count": 2, "me": false},
               {"emoji": "👨‍👩‍👧‍👦", "count": 1, "me": true}])
    );

    // Taking back: once announced; again, nothing to take back (still 204 / no frame).
    bob.send(
        json!({"action": "unreact", "chat_id": chat_id, "message_id": id,
                    "emoji": "👍🏽", "command_id": "b2"}),
    )
    .await;
    let removed = alice.expect("reaction_removed").await;
    assert_eq!(
        (removed["user_id"].clone(), removed["emoji"].clone()),
        (json!(2), json!("👍🏽"))
    );
    bob.expect("reaction_removed").await;
    assert_eq!(rest(&app, 2, chat_id, id, "👍🏽", false).await, 204);
    assert_eq!(rest(&app, 3, chat_id, id, "👍🏽", false).await, 204);
    assert_eq!(bob.expect("reaction_removed").await["user_id"], 3);
    assert_eq!(alice.expect("reaction_removed").await["user_id"], 3);
    pipeline_drained(&app).await;
    assert_eq!(
        reactions_seen(&app, 2, chat_id, id).await,
        json!([{"emoji": "👨‍👩‍👧‍👦", "count": 1, "me": false}])
    );
    let plain = alice
        .send_message(json!({"chat_id": chat_id, "content": "no reactions"}))
        .await;
    assert_eq!(
        reactions_seen(&app, 2, chat_id, &plain["message_id"]).await,
        json!([])
    );
}

#[tokio::test]
async fn at_most_twenty_different_emoji_per_message() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "vote"}))
        .await;
    let id = &sent["message_id"];
    let emoji: Vec<String> = ('a'..='u').map(String::from).collect();
    for e in &emoji[..20] {
        assert_eq!(rest(&app, 1, chat_id, id, e, true).await, 204, "{e}");
    }
    assert_eq!(
        rest(&app, 1, chat_id, id, &emoji[20], true).await,
        422,
        "a 21st"
    );
    alice.send(react(chat_id, id, &emoji[20], "over")).await;
    loop {
        let frame = alice.next().await;
        if frame["action"] == "error" {
            assert_eq!(frame["code"], "too_many_reactions", "{frame}");
            assert_eq!(frame["command_id"], "over");
            break;
        }
    }
    // One of the twenty is still open to the others.
    assert_eq!(rest(&app, 2, chat_id, id, "a", true).await, 204);
    pipeline_drained(&app).await;
    let seen = reactions_seen(&app, 2, chat_id, id).await;
    assert_eq!(seen.as_array().unwrap().len(), 20);
    assert_eq!(seen[0], json!({"emoji": "a", "count": 2, "me": true}));
}

#[tokio::test]
async fn only_members_react_and_never_to_a_deleted_message() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let other_chat = app.create_chat(3, true, &[4]).await;
    let mut alice = app.connect(1).await;
    let mut stranger = app.connect(3).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "members only"}))
        .await;
    let id = &sent["message_id"];

    stranger.send(react(chat_id, id, "👀", "s1")).await;
    assert_eq!(stranger.expect_error("forbidden").await["command_id"], "s1");
    assert_eq!(rest(&app, 3, chat_id, id, "👀", true).await, 403);
    // The message is not in the stranger's own chat either.
    stranger.send(react(other_chat, id, "👀", "s2")).await;
    assert_eq!(stranger.expect_error("not_found").await["command_id"], "s2");
    assert_eq!(rest(&app, 3, other_chat, id, "👀", true).await, 404);
    assert_eq!(
        rest(&app, 1, chat_id, &json!(i64::MAX), "👀", true).await,
        404
    );

    // Over NATS: a user_id that is not a member is refused by the persister.
    let client = app.nats().await;
    let mut events = client
        .subscribe(format!("chat.events.{chat_id}.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{chat_id}.react"),
        json!({"command_id": "dj-3", "message_id": id, "user_id": 3, "emoji": "👀"}),
    )
    .await;
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{chat_id}.react"),
        json!({"command_id": "dj-2", "message_id": id, "user_id": 2, "emoji": "✅"}),
    )
    .await;
    let seen = crate::helpers::next_events(&mut events, 2).await;
    assert_eq!(seen[0].0, format!("chat.events.{chat_id}.command_rejected"));
    assert_eq!(seen[0].1["code"], "forbidden");
    assert_eq!(seen[0].1["command_id"], "dj-3");
    assert_eq!(seen[1].0, format!("chat.events.{chat_id}.reaction_added"));
    assert_eq!(seen[1].1["user_id"], 2);
    assert_eq!(alice.expect("reaction_added").await["emoji"], "✅");

    // Deleted: refused, and the tombstone shows no reactions.
    alice
        .send(json!({"action": "delete_message", "chat_id": chat_id, "message_id": id}))
        .await;
    alice.expect("message_deleted").await;
    alice.send(react(chat_id, id, "👍", "late")).await;
    assert_eq!(
        alice.expect_error("message_deleted").await["command_id"],
        "late"
    );
    assert_eq!(rest(&app, 2, chat_id, id, "✅", false).await, 422);
    pipeline_drained(&app).await;
    assert_eq!(reactions_seen(&app, 2, chat_id, id).await, json!([]));
}

#[tokio::test]
async fn a_member_back_from_away_gets_the_reactions_in_order() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "party"}))
        .await;
    let id = sent["message_id"].clone();
    let since = bob.expect("new_message").await["cursor"].as_u64().unwrap();
    drop(bob);
    for (emoji, add) in [("🎉", true), ("🥳", true), ("🎉", false)] {
        let action = if add { "react" } else { "unreact" };
        alice
            .send(json!({"action": action, "chat_id": chat_id, "message_id": id, "emoji": emoji}))
            .await;
        alice
            .expect(if add {
                "reaction_added"
            } else {
                "reaction_removed"
            })
            .await;
    }
    let url = format!("{}&since={since}", app.ws_url(&token(2)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bob = WsClient { stream };
    bob.expect("unread").await;
    let mut replayed = Vec::new();
    loop {
        let frame = bob.next().await;
        match frame["action"].as_str() {
            Some("synced") => break,
            Some(action @ ("reaction_added" | "reaction_removed")) => {
                assert!(frame["cursor"].is_u64());
                replayed.push((
                    action.to_owned(),
                    frame["emoji"].as_str().unwrap().to_owned(),
                ));
            }
            _ => {}
        }
    }
    assert_eq!(
        replayed,
        [
            ("reaction_added".to_owned(), "🎉".to_owned()),
            ("reaction_added".to_owned(), "🥳".to_owned()),
            ("reaction_removed".to_owned(), "🎉".to_owned()),
        ]
    );
}

#[tokio::test]
async fn garbage_reaction_frames_are_refused_and_messages_still_flow() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "x"}))
        .await;
    let id = &sent["message_id"];
    let long = "\u{301}".repeat(40);
    let frames = [
        (
            json!({"action": "react", "chat_id": chat_id, "message_id": id}),
            "missing_field",
        ),
        (
            json!({"action": "react", "chat_id": chat_id, "emoji": "👍"}),
            "missing_field",
        ),
        (
            json!({"action": "unreact", "message_id": id, "emoji": "👍"}),
            "missing_field",
        ),
        (react(chat_id, id, "", "e0"), "invalid_emoji"),
        (react(chat_id, id, " ", "e1"), "invalid_emoji"),
        (react(chat_id, id, "👍👍", "e2"), "invalid_emoji"),
        (react(chat_id, id, "ok", "e3"), "invalid_emoji"),
        (react(chat_id, id, "\u{0}", "e4"), "invalid_emoji"),
        (react(chat_id, id, "👍\n", "e5"), "invalid_emoji"),
        (react(chat_id, id, &long, "e6"), "invalid_emoji"),
        (
            json!({"action": "react", "chat_id": chat_id, "message_id": id, "emoji": 5}),
            "invalid_field",
        ),
        (react(chat_id, &json!(-1), "👍", "e7"), "invalid_field"),
        (
            react(chat_id, &json!(u64::MAX), "👍", "x8"),
            "invalid_field",
        ),
        (react(0, id, "👍", "e9"), "invalid_field"),
        (react(i64::MAX, id, "👍", "e10"), "forbidden"),
        (react(chat_id, &json!(i64::MAX), "👍", "e11"), "not_found"),
        (react(chat_id, id, "👍", "x\u{0}"), "invalid_field"),
    ];
    for (frame, code) in frames.iter().chain(frames.iter()) {
        alice.send(frame.clone()).await;
        let error = alice.expect_error(code).await;
        if let Some(named) = frame["command_id"].as_str().filter(|c| c.starts_with('e')) {
            assert_eq!(error["command_id"], named, "{error}");
        }
    }
    for (emoji, status) in [
        ("", 404),
        ("%00", 422),
        ("ab", 422),
        ("%F0%9F%91%8D%F0%9F%91%8D", 422),
    ] {
        let response = app
            .http
            .put(app.url(&format!("/chats/{chat_id}/messages/{id}/reactions/{emoji}")))
            .bearer_auth(token(1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{emoji:?}");
    }
    alice
        .send_message(json!({"chat_id": chat_id, "content": "still flowing"}))
        .await;
    pipeline_drained(&app).await;
    assert_eq!(reactions_seen(&app, 1, chat_id, id).await, json!([]));
}
