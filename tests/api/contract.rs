//! The bus contract: `docs/schemas/*.json` are generated from the payload types, and every
//! payload jetchat emits or accepts on a real run validates against them.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::{Value, json};

use jetchat::{
    bus::schemas::schemas,
    gateway::protocol,
    ops::replay::{self, ReplayArgs, StreamName},
};

use crate::helpers::{TestApp, WsClient, spawn_app, token};

fn schema_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schemas")
        .join(name)
}

/// Run with `UPDATE_SCHEMAS=1` to rewrite the files after an intended contract change.
#[test]
fn committed_schemas_match_the_code() {
    for (name, schema) in schemas().into_iter().chain(protocol::schemas()) {
        let pretty = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(schema_path(name), &pretty).unwrap();
        }
        let committed = std::fs::read_to_string(schema_path(name)).unwrap_or_default();
        assert!(
            committed == pretty,
            "docs/schemas/{name} is out of date: run `UPDATE_SCHEMAS=1 cargo nextest run --test api contract`"
        );
    }
}

/// Commands (subject kind, payload) that change `group` in each way its members are told of:
/// user 3 joins and leaves, a rename, `message_id` deleted.
fn group_changes(group: i64, message_id: &Value) -> [(&'static str, Value); 4] {
    [
        (
            "add_members",
            json!({"type": "add_members", "v": 1, "command_id": "a", "chat_id": group, "user_ids": [3]}),
        ),
        (
            "remove_members",
            json!({"type": "remove_members", "v": 1, "command_id": "r", "chat_id": group, "user_ids": [3]}),
        ),
        (
            "rename",
            json!({"type": "rename_chat", "v": 1, "command_id": "n", "chat_id": group, "name": "new"}),
        ),
        (
            "delete_message",
            json!({"type": "delete_message", "v": 1, "command_id": "d", "chat_id": group, "message_id": message_id}),
        ),
    ]
}

#[tokio::test]
async fn every_payload_on_the_bus_validates_against_the_schemas() {
    let validators: HashMap<&str, jsonschema::Validator> = schemas()
        .into_iter()
        .map(|(name, schema)| {
            (
                name,
                jsonschema::validator_for(&schema).expect("a valid JSON Schema"),
            )
        })
        .collect();
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut outcomes = nats.subscribe("_INBOX.>").await.unwrap();
    nats.flush().await.unwrap();

    // Traffic that produces every kind of command, event and outcome.
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let first = alice
        .send_message(json!({"receiver_id": 2, "content": "hi", "client_msg_id": "c-1"}))
        .await;
    bob.expect("new_message").await;
    bob.send(json!({"action": "acknowledge", "message_id": first["message_id"]}))
        .await;
    alice.expect("status_update").await;
    let group = app.create_chat(1, true, &[2]).await;
    let sent = alice.send_message(json!({"chat_id": group, "content": "x", "content_type": "audio", "file_url": "media/x.ogg"})).await;
    let js = async_nats::jetstream::new(nats.clone());
    for (kind, body) in group_changes(group, &sent["message_id"])
        .into_iter()
        .chain([(
            "rename",
            json!({"type": "rename_chat", "v": 1, "command_id": "bad", "chat_id": group, "name": ""}),
        )])
    {
        js.publish(format!("chat.in.{group}.{kind}"), body.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The group commands Django may send (as the system), the last deleting a second group.
    let doomed = app.create_chat(1, true, &[2]).await;
    for (chat, kind, body) in [
        (
            group,
            "set_member_role",
            json!({"type": "set_member_role", "v": 1, "command_id": "s", "chat_id": group, "user_id": 2, "role": "admin"}),
        ),
        (
            group,
            "update_chat",
            json!({"type": "update_chat", "v": 1, "command_id": "u", "chat_id": group, "settings": {"members_can_add": true}}),
        ),
        (
            doomed,
            "delete_chat",
            json!({"type": "delete_chat", "v": 1, "command_id": "x", "chat_id": doomed, "reply_to": "_INBOX.deleted"}),
        ),
    ] {
        js.publish(format!("chat.in.{chat}.{kind}"), body.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // A pin Django sets as the system, answered on its inbox.
    js.publish(
        format!("chat.in.{}.pin_message", first["chat_id"]),
        json!({"type": "pin_message", "v": 1, "command_id": "p", "chat_id": first["chat_id"], "message_id": first["message_id"], "pinned": true, "reply_to": "_INBOX.pinned"})
            .to_string()
            .into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // A block Django sets for a user, answered on its inbox.
    js.publish(
        "chat.in.users.block",
        json!({"type": "set_block", "v": 1, "command_id": "b", "user_id": 1, "blocked_id": 9, "blocked": true, "reply_to": "_INBOX.blocked"})
            .to_string()
            .into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // Replies on inboxes: JetStream's publish acks, and jetchat's outcomes (create_chat's).
    let mut outcome_payloads = Vec::new();
    while let Ok(Some(reply)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), outcomes.next()).await
    {
        if let Ok(value) = serde_json::from_slice::<Value>(&reply.payload)
            && value.get("outcome").is_some()
        {
            outcome_payloads.push(value);
        }
    }

    let mut kinds = HashMap::<String, usize>::new();
    for (stream, schema) in [
        (StreamName::In, "command.json"),
        (StreamName::Events, "event.json"),
    ] {
        let args = ReplayArgs {
            stream,
            subject: None,
            since: None,
            from_seq: None,
            until: None,
            follow: false,
            json: true,
        };
        let mut out = Vec::new();
        replay::run(&app.ops_bus().await, &args, &mut out)
            .await
            .unwrap();
        for line in String::from_utf8(out).unwrap().lines() {
            let line: Value = serde_json::from_str(line).unwrap();
            let payload = &line["payload"];
            let errors: Vec<String> = validators[schema]
                .iter_errors(payload)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{} does not match {schema}: {errors:?}\n{payload}",
                line["subject"]
            );
            *kinds
                .entry(payload["type"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert!(
        !outcome_payloads.is_empty(),
        "create_chat's outcome was seen"
    );
    for outcome in &outcome_payloads {
        assert_valid(&validators["outcome.json"], outcome, "outcome.json");
    }

    for kind in [
        "send_message",
        "receipt",
        "create_chat",
        "add_members",
        "remove_members",
        "rename_chat",
        "delete_message",
        "message_created",
        "chat_created",
        "member_added",
        "member_removed",
        "chat_renamed",
        "message_deleted",
        "command_rejected",
        "set_member_role",
        "update_chat",
        "delete_chat",
        "member_role_changed",
        "chat_updated",
        "chat_deleted",
        "set_block",
        "block_changed",
        "pin_message",
        "message_pinned",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} payload was seen: {kinds:?}"
        );
    }
    // And a payload that breaks the contract is caught.
    assert!(!validators["command.json"].is_valid(&json!({"type": "send_message", "content": 5})));
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).expect("a valid JSON Schema")
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value, schema: &str) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{value} does not match {schema}: {errors:?}"
    );
}

/// A socket that keeps every frame it reads and every frame it sends.
struct Recorded {
    socket: WsClient,
    received: Vec<Value>,
    sent: Vec<Value>,
}

impl Recorded {
    /// A socket whose `unread` frame is kept too.
    async fn open(app: &TestApp, user_id: i64) -> Recorded {
        let (stream, _) = tokio_tungstenite::connect_async(app.ws_url(&token(user_id)))
            .await
            .expect("WebSocket handshake succeeds");
        let mut socket = Recorded {
            socket: WsClient { stream },
            received: Vec::new(),
            sent: Vec::new(),
        };
        socket.take("unread").await;
        socket
    }

    async fn send(&mut self, frame: Value) {
        self.sent.push(frame.clone());
        self.socket.send(frame).await;
    }

    /// Reads frames until each of `actions` has come, in whatever order.
    async fn take_all(&mut self, actions: &[&str]) {
        let mut missing: Vec<&str> = actions.to_vec();
        while !missing.is_empty() {
            let frame = self.socket.next().await;
            self.received.push(frame.clone());
            missing.retain(|action| frame["action"] != *action);
        }
    }

    /// Reads frames up to the first `action` and returns it.
    async fn take(&mut self, action: &str) -> Value {
        loop {
            let frame = self.socket.next().await;
            self.received.push(frame.clone());
            if frame["action"] == action {
                return frame;
            }
        }
    }
}

#[tokio::test]
async fn every_frame_of_a_conversation_validates_against_the_frame_schemas() {
    let schemas: HashMap<&str, Value> = protocol::schemas().into_iter().collect();
    let server_frames = validator(&schemas["frames.json"]);
    let client_frames = validator(&schemas["client_frames.json"]);
    let app = spawn_app().await;
    let mut alice = Recorded::open(&app, 1).await;
    let mut bob = Recorded::open(&app, 2).await;

    alice.send(json!({"action": "ping"})).await;
    alice.take("pong").await;
    alice
        .send(json!({"action": "send_message", "receiver_id": 2, "content": "hi", "content_type": "text", "client_msg_id": "c-1"}))
        .await;
    let first = alice.take("message_ack").await;
    bob.take("new_message").await;
    bob.send(json!({"action": "delivered", "message_id": first["message_id"]}))
        .await;
    bob.send(json!({"action": "acknowledge", "message_id": first["message_id"], "chat_id": first["chat_id"]}))
        .await;
    alice.take("status_update").await;
    bob.send(json!({"action": "read", "message_id": first["message_id"]}))
        .await;
    // Not a client frame, on purpose: sent past the record.
    alice.socket.send(json!({"action": "dance"})).await;
    alice.take("error").await;
    alice
        .send(json!({"action": "send_message", "chat_id": first["chat_id"], "content": " ", "client_msg_id": "c-2"}))
        .await;
    alice.take("error").await;

    let group = app.create_chat(1, true, &[2]).await;
    bob.take("chat_created").await;
    alice
        .send(json!({"action": "send_message", "chat_id": group, "content": "x", "content_type": "audio", "file_url": "media/x.ogg"}))
        .await;
    let sent = alice.take("message_ack").await;
    alice
        .send(
            json!({"action": "send_message", "chat_id": group, "content": "re",
                     "client_msg_id": "c-3", "reply_to_message_id": sent["message_id"]}),
        )
        .await;
    let reply = alice.take("message_ack").await;
    for frame in [
        json!({"action": "react", "chat_id": group, "message_id": reply["message_id"],
               "emoji": "👍🏽", "command_id": "k1"}),
        json!({"action": "edit_message", "chat_id": group, "message_id": reply["message_id"],
               "content": "re!", "command_id": "k2"}),
        json!({"action": "unreact", "chat_id": group, "message_id": reply["message_id"],
               "emoji": "👍🏽"}),
        json!({"action": "send_message", "chat_id": group, "content": "",
               "forwarded_from": reply["message_id"]}),
    ] {
        alice.send(frame).await;
    }
    // The ack comes on the socket's own subject, the changes through the chat's: any order.
    let mut awaited = std::collections::BTreeSet::from([
        "reaction_added",
        "message_edited",
        "reaction_removed",
        "message_ack",
    ]);
    while !awaited.is_empty() {
        let frame = alice.socket.next().await;
        alice.received.push(frame.clone());
        awaited.remove(frame["action"].as_str().unwrap_or_default());
    }
    for (kind, body) in group_changes(group, &sent["message_id"]) {
        crate::helpers::publish_command(&app, &format!("chat.in.{group}.{kind}"), body).await;
    }
    // Membership frames and the chat's other changes reach a socket on two subscriptions, so
    // their order may differ from the cursors' (docs/protocol.md): wait for all four in any order.
    bob.take_all(&[
        "member_added",
        "member_removed",
        "chat_renamed",
        "message_deleted",
    ])
    .await;
    alice
        .send(json!({"action": "typing", "chat_id": group}))
        .await;
    bob.take("typing").await;
    alice
        .send(json!({"action": "typing", "chat_id": group, "state": "stopped"}))
        .await;
    bob.take("typing").await;
    alice
        .send(json!({"action": "presence", "chat_id": group}))
        .await;
    alice.take("presence_state").await;
    alice
        .send(json!({"action": "refresh_token", "token": token(1)}))
        .await;
    alice.take("token_refreshed").await;
    bob.send(json!({"action": "sync", "since": 0, "epoch": "another-database"}))
        .await;
    bob.take("resync_required").await;
    let mut bob_again = Recorded::open(&app, 2).await;
    bob_again.send(json!({"action": "sync", "since": 0})).await;
    bob_again.take("synced").await;

    // The group actions, each answered.
    for frame in [
        json!({"action": "add_members", "chat_id": group, "user_ids": [4], "command_id": "g1"}),
        json!({"action": "remove_member", "chat_id": group, "user_id": 4, "command_id": "g2"}),
        json!({"action": "set_member_role", "chat_id": group, "user_id": 2, "role": "admin", "command_id": "g3"}),
        json!({"action": "update_chat", "chat_id": group, "name": "g", "settings": {"members_can_add": true}, "command_id": "g4"}),
    ] {
        let command_id = frame["command_id"].clone();
        alice.send(frame).await;
        loop {
            let answer = alice.take("command_applied").await;
            if answer["command_id"] == command_id {
                break;
            }
        }
    }
    bob.take_all(&["member_role_changed", "chat_updated"]).await;
    bob.send(json!({"action": "leave_chat", "chat_id": group, "command_id": "g5"}))
        .await;
    bob.take("command_applied").await;
    let doomed = app.create_chat(1, true, &[2]).await;
    bob.take("chat_created").await;
    alice
        .send(json!({"action": "delete_chat", "chat_id": doomed, "command_id": "g6"}))
        .await;
    bob.take("chat_deleted").await;
    alice
        .send(json!({"action": "send_message", "chat_id": group, "content": "pin me"}))
        .await;
    let pinned = alice.take("message_ack").await;
    for (action, told) in [
        ("pin_message", "message_pinned"),
        ("unpin_message", "message_unpinned"),
    ] {
        alice
            .send(json!({"action": action, "chat_id": group, "message_id": pinned["message_id"], "command_id": action}))
            .await;
        alice.take(told).await;
    }
    alice
        .send(json!({"action": "block_user", "user_id": 9, "command_id": "b1"}))
        .await;
    alice.take("block_changed").await;
    alice
        .send(json!({"action": "unblock_user", "user_id": 9}))
        .await;
    alice.take("block_changed").await;
    let mut actions = std::collections::BTreeSet::new();
    for socket in [&alice, &bob, &bob_again] {
        for frame in &socket.received {
            assert_valid(&server_frames, frame, "frames.json");
            actions.insert(frame["action"].as_str().unwrap().to_owned());
        }
        for frame in &socket.sent {
            assert_valid(&client_frames, frame, "client_frames.json");
        }
    }
    for action in [
        "unread",
        "pong",
        "message_accepted",
        "message_ack",
        "new_message",
        "status_update",
        "error",
        "chat_created",
        "member_added",
        "member_removed",
        "chat_renamed",
        "message_deleted",
        "message_edited",
        "reaction_added",
        "reaction_removed",
        "typing",
        "presence_state",
        "token_refreshed",
        "resync_required",
        "synced",
        "member_role_changed",
        "chat_updated",
        "chat_deleted",
        "command_applied",
        "block_changed",
        "message_pinned",
        "message_unpinned",
    ] {
        assert!(
            actions.contains(action),
            "no {action} frame was seen: {actions:?}"
        );
    }
    // And frames that break the contract are caught.
    assert!(!server_frames.is_valid(&json!({"action": "message_ack", "client_msg_id": "c"})));
    assert!(!server_frames.is_valid(&json!({"action": "new_message", "message_id": "42"})));
    assert!(
        !client_frames.is_valid(&json!({"action": "send_message", "chat_id": -1, "content": "x"}))
    );
    assert!(!client_frames.is_valid(&json!({"action": "sync"})));
}
