//! Every request gets its answer: a send refused once and sent again is refused again (not left
//! waiting for an ack that never comes), and a change the client named with `command_id`
//! (`edit_message`, `delete_message`, `react`, `unreact`, `mute`, `unmute`) is answered with
//! `command_applied` — a no-op included — or with an `error` that names it.

use serde_json::{Value, json};

use crate::helpers::{WsClient, pipeline_drained, spawn_app};

/// The next `n` frames, whatever their order (the answer to a named change comes on its own
/// path, before or after the change's frames).
async fn next_frames(socket: &mut WsClient, n: usize) -> Vec<Value> {
    let mut frames = Vec::new();
    while frames.len() < n {
        frames.push(socket.next().await);
    }
    frames
}

fn actions(frames: &[Value]) -> Vec<String> {
    let mut actions: Vec<String> = frames
        .iter()
        .map(|f| f["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    actions.sort();
    actions
}

fn applied<'a>(frames: &'a [Value], command_id: &str) -> &'a Value {
    frames
        .iter()
        .find(|f| f["action"] == "command_applied")
        .filter(|f| f["command_id"] == command_id)
        .unwrap_or_else(|| panic!("command_applied for {command_id} in {frames:?}"))
}

#[tokio::test]
async fn a_refused_send_sent_again_is_refused_again() {
    let app = spawn_app().await;
    let ours = app.create_chat(1, true, &[2]).await;
    let theirs = app.create_chat(1, true, &[3]).await;
    let mut alice = app.connect(1).await;
    let elsewhere = alice
        .send_message(json!({"chat_id": theirs, "content": "not for chat one"}))
        .await;
    let refused = json!({"action": "send_message", "chat_id": ours, "content": "hm",
                         "client_msg_id": "again-1",
                         "reply_to_message_id": elsewhere["message_id"]});
    // The same send three times, within JetStream's duplicate window: refused each time.
    for _ in 0..3 {
        alice.send(refused.clone()).await;
        alice.expect("message_accepted").await;
        let error = alice.expect_error("invalid_reply").await;
        assert_eq!(error["client_msg_id"], "again-1");
    }
    // The same id with the cause gone: stored once, acked.
    alice
        .send(
            json!({"action": "send_message", "chat_id": ours, "content": "hm",
                     "client_msg_id": "again-1"}),
        )
        .await;
    alice.expect("message_accepted").await;
    let ack = alice.expect("message_ack").await;
    assert_eq!(ack["client_msg_id"], "again-1");
    pipeline_drained(&app).await;
    let history = app.get_json(2, &format!("/chats/{ours}/messages")).await;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    assert_eq!(history[0]["client_msg_id"], "again-1");
}

#[tokio::test]
async fn a_named_change_is_answered_even_when_it_changes_nothing() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let sent = alice
        .send_message(json!({"chat_id": chat_id, "content": "lunch?"}))
        .await;
    let id = sent["message_id"].clone();
    bob.expect("new_message").await;
    let react = |emoji: &str, add: bool, command_id: Option<&str>| {
        let mut frame = json!({"action": if add { "react" } else { "unreact" },
                               "chat_id": chat_id, "message_id": id, "emoji": emoji});
        if let Some(command_id) = command_id {
            frame["command_id"] = json!(command_id);
        }
        frame
    };

    // A reaction: its frame, and the answer.
    bob.send(react("👍", true, Some("r1"))).await;
    let frames = next_frames(&mut bob, 2).await;
    assert_eq!(actions(&frames), ["command_applied", "reaction_added"]);
    applied(&frames, "r1");
    // The same reaction again changes nothing, and is answered all the same; so is an
    // unreact of an emoji Bob never put.
    bob.send(react("👍", true, Some("r2"))).await;
    assert_eq!(
        bob.next().await,
        json!({"action": "command_applied", "command_id": "r2"})
    );
    bob.send(react("🎉", false, Some("r3"))).await;
    assert_eq!(
        bob.next().await,
        json!({"action": "command_applied", "command_id": "r3"})
    );

    // Mute and unmute name their requests too.
    bob.send(json!({"action": "mute", "chat_id": chat_id, "command_id": "m1"}))
        .await;
    let frames = next_frames(&mut bob, 2).await;
    assert_eq!(actions(&frames), ["chat_muted", "command_applied"]);
    applied(&frames, "m1");
    bob.send(json!({"action": "unmute", "chat_id": chat_id, "command_id": "m2"}))
        .await;
    let frames = next_frames(&mut bob, 2).await;
    assert_eq!(actions(&frames), ["chat_muted", "command_applied"]);
    applied(&frames, "m2");

    // A refusal names the request: a mute of a chat Bob is not in, a bad mute time.
    let strangers = app.create_chat(1, true, &[3]).await;
    bob.send(json!({"action": "mute", "chat_id": strangers, "command_id": "m3"}))
        .await;
    assert_eq!(bob.expect_error("forbidden").await["command_id"], "m3");
    bob.send(
        json!({"action": "mute", "chat_id": chat_id, "until": "yesterday",
                    "command_id": "m4"}),
    )
    .await;
    assert_eq!(bob.expect_error("invalid_field").await["command_id"], "m4");

    // A change the client did not name gets no answer frame (the Python service's clients
    // see what they saw before): the next frame after the reaction is the pong.
    bob.send(react("🔥", true, None)).await;
    bob.expect("reaction_added").await;
    bob.send(json!({"action": "ping"})).await;
    assert_eq!(bob.next().await["action"], "pong");
}
