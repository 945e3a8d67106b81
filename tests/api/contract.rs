//! The bus contract: `docs/schemas/*.json` are generated from the payload types, and every
//! payload jetchat emits or accepts on a real run validates against them.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::{Value, json};

use jetchat::{
    bus::messages::schemas,
    ops::replay::{self, ReplayArgs, StreamName},
};

use crate::helpers::spawn_app;

fn schema_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schemas")
        .join(name)
}

/// Run with `UPDATE_SCHEMAS=1` to rewrite the files after an intended contract change.
#[test]
fn committed_schemas_match_the_code() {
    for (name, schema) in schemas() {
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
    for (kind, body) in [
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
            json!({"type": "delete_message", "v": 1, "command_id": "d", "chat_id": group, "message_id": sent["message_id"]}),
        ),
        (
            "rename",
            json!({"type": "rename_chat", "v": 1, "command_id": "bad", "chat_id": group, "name": ""}),
        ),
    ] {
        js.publish(format!("chat.in.{group}.{kind}"), body.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
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
        let errors: Vec<String> = validators["outcome.json"]
            .iter_errors(outcome)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "outcome {outcome} does not match: {errors:?}"
        );
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
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} payload was seen: {kinds:?}"
        );
    }
    // And a payload that breaks the contract is caught.
    assert!(!validators["command.json"].is_valid(&json!({"type": "send_message", "content": 5})));
}
