//! Mentions: a message names members it mentions; non-members and the sender are dropped,
//! repeats count once, garbage is refused; frames, history and the catch-up carry them;
//! `GET /chats/` counts unread mentions; a mentioned member who muted the chat is still
//! pushed (`push_needed` with `mentioned`), unless they muted its mentions too.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{pipeline_drained, publish_command, spawn_app, spawn_app_with, token};

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;
const DAVE: i64 = 4;

/// `user_id`'s `GET /chats/` entry of `chat_id`.
async fn summary(app: &crate::helpers::TestApp, user_id: i64, chat_id: i64) -> Value {
    app.get_json(user_id, "/chats/")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat_id"] == chat_id)
        .cloned()
        .expect("the chat is listed")
}

#[tokio::test]
async fn mentions_reach_frames_history_and_unread_counts() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB, CAROL]).await;
    let mut alice = app.connect(ALICE).await;
    let mut bob = app.connect(BOB).await;

    // Dave is no member and Alice is the sender: both dropped; Bob's repeat counts once.
    let ack = alice
        .send_message(json!({"chat_id": group, "content": "@Bob look",
                              "mentions": [BOB, DAVE, ALICE, BOB, CAROL]}))
        .await;
    let frame = bob.expect("new_message").await;
    assert_eq!(frame["mentions"], json!([BOB, CAROL]), "{frame}");
    // A message that mentions nobody carries no field.
    alice
        .send_message(json!({"chat_id": group, "content": "plain"}))
        .await;
    let plain = bob.expect("new_message").await;
    assert!(plain.get("mentions").is_none(), "{plain}");
    // Dave alone: nobody left to mention.
    alice
        .send_message(json!({"chat_id": group, "content": "dave?", "mentions": [DAVE]}))
        .await;
    assert!(bob.expect("new_message").await.get("mentions").is_none());

    let entry = app.history_entry(BOB, group, &ack["message_id"]).await;
    assert_eq!(entry["mentions"], json!([BOB, CAROL]), "{entry}");
    assert_eq!(summary(&app, BOB, group).await["unread_mentions"], 1);
    assert_eq!(summary(&app, CAROL, group).await["unread_mentions"], 1);
    assert_eq!(
        summary(&app, ALICE, group).await["unread_mentions"],
        0,
        "my own"
    );
    assert_eq!(summary(&app, BOB, group).await["unread_count"], 3);

    // Read: no unread mention left.
    bob.send(json!({"action": "acknowledge", "message_id": ack["message_id"]}))
        .await;
    pipeline_drained(&app).await;
    assert_eq!(summary(&app, BOB, group).await["unread_mentions"], 0);
    assert_eq!(summary(&app, CAROL, group).await["unread_mentions"], 1);

    // A deleted message's mentions are gone with its content.
    alice
        .send(json!({"action": "delete_message", "chat_id": group,
                     "message_id": ack["message_id"], "command_id": "del"}))
        .await;
    while alice.next().await["action"] != "message_deleted" {}
    pipeline_drained(&app).await;
    assert_eq!(summary(&app, CAROL, group).await["unread_mentions"], 0);
    let tombstone = app.history_entry(CAROL, group, &ack["message_id"]).await;
    assert!(tombstone.get("mentions").is_none(), "{tombstone}");

    // The catch-up renders messages as stored: mentions included.
    let mention = alice
        .send_message(json!({"chat_id": group, "content": "again", "mentions": [CAROL]}))
        .await;
    pipeline_drained(&app).await;
    let url = format!("{}&since=0", app.ws_url(&token(CAROL)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut carol = crate::helpers::WsClient { stream };
    carol.expect("unread").await;
    loop {
        let frame = carol.next().await;
        assert_ne!(frame["action"], "synced", "the mention was not replayed");
        if frame["action"] == "new_message" && frame["message_id"] == mention["message_id"] {
            assert_eq!(frame["mentions"], json!([CAROL]));
            break;
        }
    }
}

#[tokio::test]
async fn garbage_mentions_are_refused_with_their_code() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let too_many: Vec<i64> = (1..=51).collect();
    for (mentions, id) in [
        (json!([-1]), "neg"),
        (json!([0]), "zero"),
        (json!(too_many), "many"),
        (json!(["two"]), "type"),
        (json!("2"), "scalar"),
        (json!([9223372036854775808u64]), "past-i64"),
    ] {
        alice
            .send(
                json!({"action": "send_message", "chat_id": group, "content": "x",
                         "client_msg_id": id, "mentions": mentions}),
            )
            .await;
        let error = alice.expect("error").await;
        assert_eq!(error["code"], "invalid_field", "{id}: {error}");
    }
    // Fifty, each a user, are taken (non-members dropped); i64::MAX is a user id like any.
    let fifty: Vec<i64> = (2..=50).chain([i64::MAX]).collect();
    let ack = alice
        .send_message(json!({"chat_id": group, "content": "all", "mentions": fifty}))
        .await;
    let entry = app.history_entry(ALICE, group, &ack["message_id"]).await;
    assert_eq!(entry["mentions"], json!([BOB]));

    // On NATS, as Django would send it.
    let client = app.nats().await;
    let mut events = client.subscribe("chat.events.>").await.unwrap();
    client.flush().await.unwrap();
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"sender_id": ALICE, "content": "bad", "client_msg_id": "dj-bad", "mentions": [0]}),
    )
    .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"sender_id": ALICE, "content": "good", "client_msg_id": "dj-good", "mentions": [BOB]}),
    )
    .await;
    let mut seen = HashMap::new();
    while seen.len() < 2 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
            .unwrap();
        let event: Value = serde_json::from_slice(&msg.payload).unwrap();
        match event["type"].as_str() {
            Some("command_rejected") => {
                seen.insert("rejected", event["code"].clone());
            }
            Some("message_created") => {
                seen.insert("created", event["message"]["mentions"].clone());
            }
            _ => {}
        }
    }
    assert_eq!(seen["rejected"], "invalid_field");
    assert_eq!(seen["created"], json!([BOB]));
}

#[tokio::test]
async fn a_mention_is_pushed_through_a_mute_unless_mentions_are_muted_too() {
    let app = spawn_app_with(&[("PUSH_AFTER", "1s")]).await;
    let group = app.create_chat(ALICE, true, &[BOB, CAROL, DAVE]).await;
    // Bob mutes the group over REST, Carol mutes it with its mentions over the socket; Dave
    // does not mute it.
    let muted = app
        .http
        .put(app.url(&format!("/chats/{group}/mute")))
        .bearer_auth(token(BOB))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(muted.status(), 200);
    let state: Value = muted.json().await.unwrap();
    assert_eq!(state["mentions_muted"], false);
    {
        let mut carol = app.connect(CAROL).await;
        carol
            .send(json!({"action": "mute", "chat_id": group, "mute_mentions": true, "command_id": "m"}))
            .await;
        let frame = carol.expect("chat_muted").await;
        assert_eq!(frame["mentions_muted"], true, "{frame}");
    }
    pipeline_drained(&app).await;
    assert_eq!(summary(&app, CAROL, group).await["mentions_muted"], true);
    assert_eq!(summary(&app, BOB, group).await["mentions_muted"], false);

    let mut pushes = app
        .nats()
        .await
        .subscribe("chat.events.*.push_needed")
        .await
        .unwrap();
    let mut alice = app.connect(ALICE).await;
    alice
        .send_message(json!({"chat_id": group, "content": "plain"}))
        .await;
    let mention = alice
        .send_message(json!({"chat_id": group, "content": "@all",
                              "mentions": [BOB, CAROL, DAVE]}))
        .await;
    // Per user: the pushes' counts added up, and whether any was flagged (a scan may find
    // the two messages apart).
    let mut by_user: HashMap<i64, (u64, bool, Vec<Value>)> = HashMap::new();
    while !by_user.contains_key(&BOB) || by_user.get(&DAVE).is_none_or(|d| d.0 < 2) {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(20), pushes.next())
            .await
            .expect("a push in time")
            .unwrap();
        let push: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_ne!(push["user_id"], CAROL, "{push}");
        let entry = by_user
            .entry(push["user_id"].as_i64().unwrap())
            .or_default();
        entry.0 += push["count"].as_u64().unwrap();
        entry.1 |= push["mentioned"].as_bool().unwrap();
        entry
            .2
            .extend(push["message_ids"].as_array().unwrap().iter().cloned());
    }
    // Bob, muted: the mention alone, flagged.
    let bob = &by_user[&BOB];
    assert_eq!((bob.0, bob.1), (1, true), "{bob:?}");
    assert_eq!(bob.2, [mention["message_id"].clone()], "{bob:?}");
    // Dave, not muted: both, flagged for the mention.
    let dave = &by_user[&DAVE];
    assert_eq!((dave.0, dave.1), (2, true), "{dave:?}");
    // Carol muted the mentions too: nothing for her, then or with the next scan.
    let more = tokio::time::timeout(std::time::Duration::from_secs(3), pushes.next()).await;
    if let Ok(Some(msg)) = more {
        let push: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_ne!(push["user_id"], CAROL, "{push}");
    }
    // A plain message to a muted Bob pushes nothing.
    alice
        .send_message(json!({"chat_id": group, "content": "plain again"}))
        .await;
    let later = tokio::time::timeout(std::time::Duration::from_secs(4), pushes.next()).await;
    if let Ok(Some(msg)) = later {
        let push: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_ne!(push["user_id"], BOB, "{push}");
        assert_ne!(push["user_id"], CAROL, "{push}");
        assert_eq!(push["mentioned"], false, "{push}");
    }
}

/// A chat nobody reads counts its unread messages up to `UNREAD_MOST` (the greeting and
/// `GET /chats/` would otherwise read every unread row, more with every message); its unread
/// mentions, read by their own index, stay exact below that.
#[tokio::test]
async fn unread_counts_stop_at_their_cap_and_mentions_stay_exact() {
    use jetchat::store::queries::UNREAD_MOST;
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "0")]).await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let sends = UNREAD_MOST as usize + 3;
    let mentioning = [7, 700, sends - 1];
    for chunk in (0..sends).collect::<Vec<_>>().chunks(100) {
        for &i in chunk {
            let mut frame = json!({"action": "send_message", "content_type": "text",
                                   "chat_id": group, "content": format!("busy {i}")});
            if mentioning.contains(&i) {
                frame["mentions"] = json!([BOB]);
            }
            alice.send(frame).await;
        }
        let mut acked = 0;
        while acked < chunk.len() {
            let frame = alice.next().await;
            assert_ne!(frame["action"], "error", "{frame}");
            if frame["action"] == "message_ack" {
                acked += 1;
            }
        }
    }
    pipeline_drained(&app).await;

    let bobs = summary(&app, BOB, group).await;
    assert_eq!(bobs["unread_count"], UNREAD_MOST, "{bobs}");
    assert_eq!(bobs["unread_mentions"], mentioning.len(), "{bobs}");
    let (stream, _) = tokio_tungstenite::connect_async(app.ws_url(&token(BOB)))
        .await
        .expect("WebSocket handshake succeeds");
    let mut bob = crate::helpers::WsClient { stream };
    let unread = bob.expect("unread").await;
    let chat = unread["chats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat_id"] == group)
        .cloned()
        .expect("the chat is in the greeting");
    assert_eq!(chat["unread"], UNREAD_MOST, "{unread}");
    // Alice's own messages are none of hers to read.
    assert_eq!(summary(&app, ALICE, group).await["unread_count"], 0);
}
