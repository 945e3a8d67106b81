//! The operator commands: replay, streams, and rebuilding the database from `CHAT_IN`.

use sea_orm::{Database, DatabaseConnection, EntityTrait, QueryOrder};
use serde_json::{Value, json};

use jetchat::{
    ops::{
        replay::{self, ReplayArgs, StreamName},
        reproject, streams,
    },
    store::{chat, chat_member, message, upload},
};

use crate::helpers::{TestApp, eventually, spawn_app};

fn args(stream: StreamName) -> ReplayArgs {
    ReplayArgs {
        stream,
        subject: None,
        since: None,
        from_seq: None,
        until: None,
        follow: false,
        json: true,
    }
}

async fn replay_lines(app: &TestApp, args: &ReplayArgs) -> Vec<Value> {
    let mut out = Vec::new();
    let count = replay::run(&app.ops_bus().await, args, &mut out)
        .await
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, count);
    lines
}

/// Waits until the persister has acked everything in `CHAT_IN`.
async fn persisted(app: &TestApp) {
    let bus = app.ops_bus().await;
    eventually("the persister caught up", || async {
        let reports = streams::report(&bus).await.map_err(|e| e.to_string())?;
        let persister = reports[0]
            .consumers
            .iter()
            .find(|c| c.name == "persister")
            .ok_or("no persister")?;
        if persister.pending == 0
            && persister.ack_pending == 0
            && persister.ack_floor == reports[0].last_seq
        {
            Ok(())
        } else {
            Err(format!("{persister:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn replay_prints_one_chats_traffic_in_order() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let other = app.create_chat(1, true, &[3]).await;
    let mut alice = app.connect(1).await;
    for i in 0..3 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("g{i}")}))
            .await;
        alice
            .send_message(json!({"chat_id": other, "content": format!("o{i}")}))
            .await;
    }

    let mut filtered = args(StreamName::In);
    filtered.subject = Some(format!("chat.in.{group}.>"));
    let lines = replay_lines(&app, &filtered).await;
    let contents: Vec<&str> = lines
        .iter()
        .map(|l| l["payload"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["g0", "g1", "g2"]);
    assert!(
        lines
            .iter()
            .all(|l| l["subject"] == format!("chat.in.{group}.message"))
    );
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64())
    );
    assert!(
        lines[0]["headers"]["Nats-Msg-Id"]
            .as_str()
            .unwrap()
            .starts_with("msg:1:")
    );

    let mut events = args(StreamName::Events);
    events.subject = Some(format!("chat.events.{other}.message_created"));
    events.since = Some("1h".into());
    assert_eq!(replay_lines(&app, &events).await.len(), 3);

    let mut from = args(StreamName::In);
    from.from_seq = Some(lines[1]["seq"].as_u64().unwrap());
    from.subject = filtered.subject.clone();
    assert_eq!(replay_lines(&app, &from).await.len(), 2);

    let mut nothing = args(StreamName::In);
    nothing.subject = Some("chat.in.424242.>".into());
    assert!(replay_lines(&app, &nothing).await.is_empty());

    // Replay is read-only: the persister's consumer is untouched and nothing is redelivered.
    persisted(&app).await;
    let reports = streams::report(&app.ops_bus().await).await.unwrap();
    assert_eq!(reports[0].name, "CHAT_IN");
    let durable: Vec<_> = reports[0].consumers.iter().filter(|c| c.durable).collect();
    assert_eq!(
        durable.len(),
        1,
        "replay made no durable consumer: {:?}",
        reports[0].consumers
    );
    assert_eq!(durable[0].name, "persister");
    assert_eq!(durable[0].redelivered, 0);
    assert!(streams::render(&reports).contains("persister"));
}

async fn dump(
    db: &DatabaseConnection,
) -> (
    Vec<chat::Model>,
    Vec<chat_member::Model>,
    Vec<message::Model>,
    Vec<upload::Model>,
) {
    (
        chat::Entity::find()
            .order_by_asc(chat::Column::Id)
            .all(db)
            .await
            .unwrap(),
        chat_member::Entity::find()
            .order_by_asc(chat_member::Column::ChatId)
            .order_by_asc(chat_member::Column::UserId)
            .all(db)
            .await
            .unwrap(),
        message::Entity::find()
            .order_by_asc(message::Column::Id)
            .all(db)
            .await
            .unwrap(),
        upload::Entity::find()
            .order_by_asc(upload::Column::Id)
            .all(db)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn reproject_rebuilds_the_same_database_from_the_command_log() {
    let app = spawn_app().await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    // Private chat created by a first message, a group from REST, receipts, administration.
    let first = alice
        .send_message(json!({"receiver_id": 2, "content": "hi"}))
        .await;
    bob.expect("new_message").await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut last = first.clone();
    for i in 0..5 {
        last = bob
            .send_message(json!({"chat_id": group, "content": format!("m{i}")}))
            .await;
    }
    // A voice note: the upload is in the log too, so the rebuilt database accepts its message.
    let voice = crate::media::upload_file(&app, 2, "voice.ogg", crate::media::ogg_opus()).await;
    bob.send_message(json!({"chat_id": group, "content": "", "file_id": voice.file_id()}))
        .await;
    alice
        .send(json!({"action": "acknowledge", "message_id": first["message_id"]}))
        .await;
    alice
        .send(json!({"action": "delivered", "message_id": last["message_id"]}))
        .await;
    let js = async_nats::jetstream::new(app.nats().await);
    for (kind, body) in [
        (
            "add_members",
            json!({"command_id": "a", "user_ids": [4, 5]}),
        ),
        (
            "remove_members",
            json!({"command_id": "r", "user_ids": [3]}),
        ),
        ("rename", json!({"command_id": "n", "name": "renamed"})),
        (
            "delete_message",
            json!({"command_id": "d", "message_id": last["message_id"]}),
        ),
        ("rename", json!({"command_id": "bad", "name": ""})),
    ] {
        js.publish(format!("chat.in.{group}.{kind}"), body.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    persisted(&app).await;

    let target = crate::helpers::fresh_database_url(app.dir()).await;
    let report = reproject::run(&app.ops_bus().await, &target, 3, &Default::default())
        .await
        .unwrap();
    let live = dump(&Database::connect(&app.database_url).await.unwrap()).await;
    let rebuilt = dump(&Database::connect(&target).await.unwrap()).await;
    assert_eq!(report.chats, 2);
    assert_eq!(report.members as usize, live.1.len());
    assert_eq!(report.messages, 7);
    assert_eq!(report.refused, 0);
    assert_eq!(report.undecodable, 0);
    assert_eq!(rebuilt.0, live.0, "chats");
    assert_eq!(rebuilt.1, live.1, "members and their receipts");
    assert_eq!(rebuilt.2, live.2, "messages, ids and stream sequences");
    assert_eq!(live.3.len(), 1, "the upload");
    assert_eq!(rebuilt.3, live.3, "uploads");
    assert!(
        rebuilt
            .2
            .iter()
            .any(|m| m.file_id.as_deref() == Some(voice.file_id())),
        "the message with the voice note"
    );

    // Only into an empty database.
    assert!(
        reproject::run(&app.ops_bus().await, &target, 3, &Default::default())
            .await
            .is_err()
    );
}
