//! Django's side of NATS: injected messages and chat administration commands, their outcome
//! events, and live sockets following membership changes.

use std::time::Duration;

use async_nats::RequestErrorKind;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{
    FRAME_TIMEOUT, TestApp, pipeline_drained, publish_command, spawn_app, spawn_app_with,
    stream_messages, without_cursor,
};

/// A live subscription to events, as Django's consumer sees them.
async fn events(app: &TestApp, subject: &str) -> async_nats::Subscriber {
    let client = app.nats().await;
    let sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    sub
}

async fn next_event(sub: &mut async_nats::Subscriber) -> (String, Value) {
    let msg = tokio::time::timeout(FRAME_TIMEOUT, sub.next())
        .await
        .expect("an event in time")
        .expect("subscription open");
    (
        msg.subject.to_string(),
        serde_json::from_slice(&msg.payload).unwrap(),
    )
}

#[tokio::test]
async fn a_message_injected_on_nats_flows_like_a_sockets_message() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let mut created = events(&app, &format!("chat.events.{chat_id}.message_created")).await;

    // The shortest form Django can send: type, chat, client_msg_id and content_type implied.
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.message"),
        json!({"sender_id": 1, "content": "from django"}),
    )
    .await;

    let new = bob.expect("new_message").await;
    assert_eq!(new["content"], "from django");
    assert_eq!(new["sender_id"], 1);
    let (subject, event) = next_event(&mut created).await;
    assert_eq!(subject, format!("chat.events.{chat_id}.message_created"));
    assert_eq!(event["type"], "message_created");
    assert_eq!(event["v"], 1);
    assert_eq!(event["message"]["message_id"], new["message_id"]);
}

#[tokio::test]
async fn an_added_member_starts_receiving_at_once() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut carol = app.connect(3).await;
    let mut added = events(&app, &format!("chat.events.{chat_id}.member_added")).await;

    publish_command(
        &app,
        &format!("chat.in.{chat_id}.add_members"),
        json!({"type":"add_members","v":1,"command_id":"cmd-add-1","chat_id":chat_id,"user_ids":[3]}),
    )
    .await;

    let (_, event) = next_event(&mut added).await;
    assert_eq!(event["user_id"], 3);
    assert_eq!(event["command_id"], "cmd-add-1");
    let mut frame = without_cursor(carol.expect("member_added").await);
    let chat = frame
        .as_object_mut()
        .unwrap()
        .remove("chat")
        .expect("the group comes along");
    let profiles = frame
        .as_object_mut()
        .unwrap()
        .remove("profiles")
        .expect("the members' names come along");
    assert_eq!(
        frame,
        json!({"action":"member_added","chat_id":chat_id,"user_id":3})
    );
    let names: Vec<&str> = profiles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User 1", "User 2", "User 3"]);
    assert_eq!(chat["chat_id"], chat_id);
    assert_eq!(chat["member_ids"], json!([1, 2, 3]));
    let told = alice.expect("member_added").await;
    assert_eq!(told["user_id"], 3);

    let ack = alice
        .send_message(json!({"chat_id": chat_id, "content": "welcome carol"}))
        .await;
    let new = carol.expect("new_message").await;
    assert_eq!(new["message_id"], ack["message_id"]);
    // Carol may post now, on the socket she already had open.
    carol
        .send_message(json!({"chat_id": chat_id, "content": "thanks"}))
        .await;
}

#[tokio::test]
async fn a_removed_member_stops_receiving_at_once() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut carol = app.connect(3).await;

    publish_command(
        &app,
        &format!("chat.in.{chat_id}.remove_members"),
        json!({"type":"remove_members","command_id":"cmd-rm-1","chat_id":chat_id,"user_ids":[2]}),
    )
    .await;
    assert_eq!(bob.expect("member_removed").await["user_id"], 2);
    assert_eq!(alice.expect("member_removed").await["user_id"], 2);
    assert_eq!(carol.expect("member_removed").await["user_id"], 2);

    alice
        .send_message(json!({"chat_id": chat_id, "content": "bob is gone"}))
        .await;
    assert_eq!(carol.expect("new_message").await["content"], "bob is gone");
    bob.expect_silence(Duration::from_millis(300)).await;

    bob.send(json!({"action":"send_message","chat_id":chat_id,"content":"let me in","client_msg_id":"b1"})).await;
    let error = bob.expect("error").await;
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["client_msg_id"], "b1");
    assert_eq!(
        app.get(2, &format!("/chats/{chat_id}/messages"))
            .await
            .status(),
        403
    );
}

/// What a core NATS request to a chat's live subject finds: jetchat's router subscribed
/// (it takes the request and answers nothing) or nobody.
async fn live_subject_interest(nats: &async_nats::Client, chat_id: i64) -> RequestErrorKind {
    let request = async_nats::Request::new().timeout(Some(Duration::from_millis(500)));
    let subject = format!("chat.live.{chat_id}.probe");
    match nats.send_request(subject, request).await {
        Ok(reply) => panic!("nobody answers a live subject, got {reply:?}"),
        Err(error) => error.kind(),
    }
}

#[tokio::test]
async fn a_chat_that_loses_its_last_socket_here_is_unsubscribed_and_subscribed_anew_once() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2, 3]).await;
    let nats = app.nats().await;
    // Bob's is the only socket of the chat on this instance.
    let mut bob = app.connect(2).await;
    assert_eq!(
        live_subject_interest(&nats, chat_id).await,
        RequestErrorKind::TimedOut,
        "routed: the router holds the subscription"
    );

    publish_command(
        &app,
        &format!("chat.in.{chat_id}.remove_members"),
        json!({"type":"remove_members","command_id":"cmd-rm-last","chat_id":chat_id,"user_ids":[2]}),
    )
    .await;
    assert_eq!(bob.expect("member_removed").await["user_id"], 2);
    crate::helpers::eventually("the chat unsubscribed", || async {
        match live_subject_interest(&nats, chat_id).await {
            RequestErrorKind::NoResponders => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Subscribed again for new sockets, and each message arrives once: the old subscription
    // is gone, not merely hidden behind the new one.
    let mut carol = app.connect(3).await;
    let mut alice = app.connect(1).await;
    assert_eq!(
        live_subject_interest(&nats, chat_id).await,
        RequestErrorKind::TimedOut
    );
    for content in ["one", "two"] {
        alice
            .send_message(json!({"chat_id": chat_id, "content": content}))
            .await;
    }
    assert_eq!(carol.expect("new_message").await["content"], "one");
    assert_eq!(carol.expect("new_message").await["content"], "two");
    bob.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn rename_and_delete_reach_the_members_and_the_history() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let keep = alice
        .send_message(json!({"chat_id": chat_id, "content": "keep"}))
        .await;
    let spam = alice
        .send_message(json!({"chat_id": chat_id, "content": "spam"}))
        .await;
    bob.expect("new_message").await;
    bob.expect("new_message").await;

    publish_command(
        &app,
        &format!("chat.in.{chat_id}.rename"),
        json!({"command_id":"cmd-rename","name":"new name"}),
    )
    .await;
    assert_eq!(
        without_cursor(bob.expect("chat_renamed").await),
        json!({"action":"chat_renamed","chat_id":chat_id,"name":"new name"})
    );
    // Then the same as `chat_updated`, with the settings, for clients that know it.
    assert_eq!(bob.expect("chat_updated").await["name"], "new name");
    alice.expect("chat_renamed").await;
    alice.expect("chat_updated").await;

    publish_command(
        &app,
        &format!("chat.in.{chat_id}.delete_message"),
        json!({"command_id":"cmd-del","message_id":spam["message_id"]}),
    )
    .await;
    let deleted = bob.expect("message_deleted").await;
    assert_eq!(deleted["message_id"], spam["message_id"]);

    let history: Value = app
        .get(2, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["message_id"])
        .collect();
    assert_eq!(ids, vec![&spam["message_id"], &keep["message_id"]]);
    assert_eq!(history[0]["deleted"], true, "a tombstone: {}", history[0]);
    assert_eq!(history[0]["content"], "");
    assert!(history[1].get("deleted").is_none());
    let chats: Value = app.get(2, "/chats/").await.json().await.unwrap();
    assert_eq!(chats[0]["name"], "new name");
}

#[tokio::test]
async fn refused_commands_say_why_with_their_command_id() {
    let app = spawn_app().await;
    let private = app.create_chat(1, false, &[2]).await;
    let mut rejected = events(&app, "chat.events.*.command_rejected").await;

    publish_command(
        &app,
        &format!("chat.in.{private}.add_members"),
        json!({"command_id":"cmd-private","user_ids":[3]}),
    )
    .await;
    let (subject, event) = next_event(&mut rejected).await;
    assert_eq!(subject, format!("chat.events.{private}.command_rejected"));
    assert_eq!(event["command_id"], "cmd-private");
    assert_eq!(event["command"], "add_members");
    assert_eq!(event["code"], "not_a_group");

    publish_command(
        &app,
        "chat.in.999.rename",
        json!({"command_id":"cmd-missing","name":"x"}),
    )
    .await;
    let (_, event) = next_event(&mut rejected).await;
    assert_eq!(event["command_id"], "cmd-missing");
    assert_eq!(event["code"], "not_found");

    publish_command(
        &app,
        "chat.in.999.message",
        json!({"sender_id": 1, "content": "into the void", "client_msg_id": "void-1"}),
    )
    .await;
    let (_, event) = next_event(&mut rejected).await;
    assert_eq!(event["command_id"], "void-1");
    assert_eq!(event["command"], "send_message");
}

#[tokio::test]
async fn every_command_gets_an_outcome_even_when_it_changes_nothing() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let private = app.create_chat(1, false, &[2]).await;
    let mut outcomes = events(&app, "chat.events.>").await;

    // Already a member, not a member, an existing private chat: same outcome events.
    publish_command(
        &app,
        &format!("chat.in.{group}.add_members"),
        json!({"command_id":"again-add","user_ids":[2]}),
    )
    .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.remove_members"),
        json!({"command_id":"again-rm","user_ids":[9]}),
    )
    .await;
    // An existing private chat is no change: answered on reply_to alone.
    let client = app.nats().await;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    publish_command(
        &app,
        "chat.in.chats.create",
        json!({"type":"create_chat","command_id":"again-create","creator_id":2,"is_group":false,
               "member_ids":[1],"reply_to":inbox}),
    )
    .await;
    let (_, ready) = next_event(&mut replies).await;
    assert_eq!(ready["outcome"], "chat_ready", "{ready}");
    assert_eq!(ready["command_id"], "again-create");
    assert_eq!(ready["created"], false);
    assert_eq!(ready["chat"]["chat_id"], private);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (_, event) = next_event(&mut outcomes).await;
        seen.push((
            event["type"].as_str().unwrap().to_owned(),
            event["command_id"].as_str().unwrap_or_default().to_owned(),
            event,
        ));
    }
    assert_eq!(seen[0].0, "member_added");
    assert_eq!(seen[0].1, "again-add");
    assert_eq!(seen[1].0, "member_removed");
    assert_eq!(seen[1].1, "again-rm");
}

#[tokio::test]
async fn creating_a_private_chat_that_exists_answers_it_and_tells_nobody_anything_new() {
    let app = spawn_app().await;
    let mut bob = app.connect(2).await;
    let first = app
        .post(1, "/chats/", json!({"is_group": false, "member_ids": [2]}))
        .await;
    assert_eq!(first.status(), 201);
    let chat_id = first.json::<Value>().await.unwrap()["chat_id"].clone();
    assert_eq!(bob.next().await["action"], "chat_created");

    // Again over REST, and from Django on NATS (by either member).
    let again = app
        .post(1, "/chats/", json!({"is_group": false, "member_ids": [2]}))
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["chat_id"], chat_id);
    let client = app.nats().await;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    publish_command(
        &app,
        "chat.in.chats.create",
        json!({"type":"create_chat","command_id":"dj-open","creator_id":2,"is_group":false,
               "member_ids":[1],"reply_to":inbox}),
    )
    .await;
    let (_, ready) = next_event(&mut replies).await;
    assert_eq!(ready["created"], false, "{ready}");
    assert_eq!(ready["chat"]["chat_id"], chat_id);

    // Bob's next frame is the message sent after all of it, not another chat_created.
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"chat_id": chat_id, "content": "after"}))
        .await;
    loop {
        let frame = bob.next().await;
        assert_ne!(frame["action"], "chat_created", "{frame}");
        if frame["action"] == "new_message" {
            assert_eq!(frame["content"], "after");
            break;
        }
    }
    pipeline_drained(&app).await;

    // Stored once: in CHAT_EVENTS and in the journal a catch-up reads.
    let announced = stream_messages(&app, "CHAT_EVENTS")
        .await
        .into_iter()
        .filter(|m| m.subject.ends_with(".chat_created"))
        .count();
    assert_eq!(announced, 1);
    let page = app.get_json(2, "/sync?since=0").await;
    let created: Vec<&Value> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "chat_created")
        .collect();
    assert_eq!(created.len(), 1, "{page}");
}

#[tokio::test]
async fn commands_from_nats_obey_the_same_rules_as_sockets() {
    let app = spawn_app_with(&[("MAX_CONTENT_CHARS", "10")]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut rejected = events(&app, "chat.events.*.command_rejected").await;
    for (payload, code) in [
        (
            json!({"sender_id": 1, "content": "   ", "client_msg_id": "blank"}),
            "empty_content",
        ),
        (
            json!({"sender_id": 1, "content": "far too long here", "client_msg_id": "long"}),
            "content_too_long",
        ),
        (
            json!({"sender_id": -3, "content": "hi", "client_msg_id": "negative"}),
            "invalid_field",
        ),
    ] {
        publish_command(&app, &format!("chat.in.{group}.message"), payload).await;
        let (_, event) = next_event(&mut rejected).await;
        assert_eq!(event["code"], code, "{event}");
    }
    // Not a command at all: refused with the id it carries, not silently dropped.
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"client_msg_id": "no-sender", "content": "?"}),
    )
    .await;
    let (_, event) = next_event(&mut rejected).await;
    assert_eq!(event["code"], "invalid_command");
    assert_eq!(event["command_id"], "no-sender");
    assert_eq!(event["chat_id"], group);
    let history: Value = app
        .get(1, &format!("/chats/{group}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history, json!([]));
}

#[tokio::test]
async fn every_refused_command_is_announced_even_when_its_id_is_another_senders_or_none() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    // Two outsiders who happen to pick the same id, then two payloads that are no command.
    for sender in [3, 4] {
        publish_command(
            &app,
            &format!("chat.in.{group}.message"),
            json!({"sender_id": sender, "content": "let me in", "client_msg_id": "same-id"}),
        )
        .await;
    }
    let js = async_nats::jetstream::new(app.nats().await);
    for garbage in ["not json", "still not json"] {
        js.publish(format!("chat.in.{group}.message"), garbage.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    pipeline_drained(&app).await;

    // What CHAT_EVENTS stored (a subscriber would see a dropped duplicate too).
    let mut rejections: Vec<(String, String, u64)> = stream_messages(&app, "CHAT_EVENTS")
        .await
        .into_iter()
        .filter(|m| m.subject.ends_with(".command_rejected"))
        .map(|m| {
            let event: Value = serde_json::from_slice(&m.payload).unwrap();
            (
                event["command_id"].as_str().unwrap().to_owned(),
                event["code"].as_str().unwrap().to_owned(),
                event["stream_seq"].as_u64().unwrap(),
            )
        })
        .collect();
    rejections.sort_by_key(|r| r.2);
    let ids_and_codes: Vec<(&str, &str)> = rejections
        .iter()
        .map(|(id, code, _)| (id.as_str(), code.as_str()))
        .collect();
    assert_eq!(
        ids_and_codes,
        [
            ("same-id", "forbidden"),
            ("same-id", "forbidden"),
            ("", "invalid_command"),
            ("", "invalid_command"),
        ]
    );
    let mut seqs: Vec<u64> = rejections.iter().map(|r| r.2).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 4, "one refusal per command: {rejections:?}");
}
