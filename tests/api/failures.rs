//! Failure survival: whatever dies, a message that got `message_accepted` is stored exactly
//! once, and a send that could not be accepted is answered with an error, never silence.

use std::{collections::HashSet, time::Duration};

use sea_orm::{Database, EntityTrait};
use serde_json::json;

use jetchat::store::message;

use crate::helpers::{WsClient, connect_at, eventually, spawn_app, spawn_app_with};

/// Waits until the database holds as many messages as were accepted, then checks it holds
/// exactly the accepted ones, each once.
pub async fn assert_stored_exactly_once(database_url: &str, accepted: &[String]) {
    let db = Database::connect(database_url).await.unwrap();
    let rows = eventually("every accepted message persisted", || async {
        let rows = message::Entity::find()
            .all(&db)
            .await
            .map_err(|e| e.to_string())?;
        if rows.len() >= accepted.len() {
            Ok(rows)
        } else {
            Err(format!("{} rows", rows.len()))
        }
    })
    .await;
    let stored: Vec<&str> = rows.iter().map(|r| r.client_msg_id.as_str()).collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(stored.len(), unique.len(), "no message stored twice");
    assert_eq!(
        unique,
        accepted.iter().map(String::as_str).collect(),
        "exactly the accepted ones"
    );
}

/// Sends `client_msg_id` until jetchat accepts it, resending after each error like a client
/// that follows the protocol; returns how many errors it saw. A resend of a message already
/// stored is answered with its `message_ack` alone (docs/protocol.md), which confirms it too.
pub async fn send_until_accepted(
    socket: &mut WsClient,
    chat_id: i64,
    client_msg_id: &str,
) -> usize {
    let mut errors = 0;
    for _ in 0..100 {
        socket
            .send(json!({"action":"send_message","chat_id":chat_id,"content":client_msg_id,"client_msg_id":client_msg_id}))
            .await;
        loop {
            let frame = socket.next().await;
            if frame["client_msg_id"] != client_msg_id {
                continue; // acks and errors of earlier sends
            }
            match frame["action"].as_str() {
                Some("message_accepted" | "message_ack") => return errors,
                Some("error") if frame["code"] == "rate_limited" => {
                    // Not a failure: the client sends again when the server said it may.
                    let wait = frame["retry_after_ms"].as_u64().expect("retry_after_ms");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    break;
                }
                Some("error") => {
                    assert_eq!(frame["code"], "unavailable", "{frame}");
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                _ => continue,
            }
        }
    }
    panic!("{client_msg_id} was never accepted");
}

#[tokio::test]
async fn restarting_nats_under_load_loses_nothing_that_was_accepted() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut accepted = Vec::new();
    let first_pid = app.nats_pid();
    for i in 0..60 {
        if i == 20 {
            app.kill_nats();
        }
        let id = format!("m{i}");
        send_until_accepted(&mut alice, group, &id).await;
        accepted.push(id);
    }
    assert_ne!(
        app.nats_pid(),
        first_pid,
        "the nats-server was killed and restarted meanwhile"
    );
    assert_stored_exactly_once(&app.database_url, &accepted).await;
    // And the service keeps working end to end after the restart.
    let mut bob = app.connect(2).await;
    send_until_accepted(&mut alice, group, "after").await;
    assert_eq!(bob.expect("new_message").await["content"], "after");
}

/// Reads frames until every id in `ids` was accepted or the socket dies; returns the accepted.
async fn collect_accepted(socket: &mut WsClient, ids: &[String]) -> HashSet<String> {
    let mut accepted = HashSet::new();
    while accepted.len() < ids.len() {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut socket.stream),
        )
        .await
        {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                if frame["action"] == "message_accepted" {
                    accepted.insert(frame["client_msg_id"].as_str().unwrap().to_owned());
                }
            }
            Ok(Some(Ok(_))) => continue,
            _ => break, // the instance is gone
        }
    }
    accepted
}

#[tokio::test]
async fn killing_an_instance_mid_stream_loses_nothing_that_was_accepted() {
    // Short ack wait: the killed instance's unacked batch goes to the survivor in 2 s.
    let a = spawn_app_with(&[("PERSIST_ACK_WAIT", "2s")]).await;
    let mut b = a.spawn_process().await;
    let group = a.create_chat(1, true, &[2]).await;
    let mut alice = connect_at(b.address, 1).await;

    let ids: Vec<String> = (0..90).map(|i| format!("m{i}")).collect();
    let mut accepted = HashSet::new();
    for (round, chunk) in ids.chunks(30).enumerate() {
        for id in chunk {
            alice.send(json!({"action":"send_message","chat_id":group,"content":id,"client_msg_id":id})).await;
        }
        if round == 1 {
            // Mid-stream: sends in flight, commands accepted but maybe not persisted yet.
            b.kill();
            alice = a.connect(1).await;
            // The client resends whatever it did not see accepted, with the same ids.
            let unconfirmed: Vec<String> = ids[..60]
                .iter()
                .filter(|id| !accepted.contains(*id))
                .cloned()
                .collect();
            for id in &unconfirmed {
                send_until_accepted(&mut alice, group, id).await;
                accepted.insert(id.clone());
            }
            continue;
        }
        accepted.extend(collect_accepted(&mut alice, chunk).await);
    }
    assert_eq!(accepted.len(), 90);

    let db = Database::connect(&a.database_url).await.unwrap();
    let rows = eventually("every accepted message persisted", || async {
        let rows = message::Entity::find()
            .all(&db)
            .await
            .map_err(|e| e.to_string())?;
        if rows.len() >= 90 {
            Ok(rows)
        } else {
            Err(format!("{} rows", rows.len()))
        }
    })
    .await;
    let stored: Vec<&str> = rows.iter().map(|r| r.client_msg_id.as_str()).collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(stored.len(), 90, "no message stored twice");
    assert_eq!(unique.len(), 90);
    // Every member can read them all in history.
    let history: serde_json::Value = a
        .get(2, &format!("/chats/{group}/messages?limit=100"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 90);
}

/// A batch that announces more events than a JetStream context has room for awaiting their
/// acknowledgement (5,000 in async-nats) is published all the same: the persister must not
/// hold every acknowledgement while it waits for room (it stood still for good), and goes on
/// with the next command.
#[tokio::test]
async fn a_batch_announcing_more_events_than_acks_in_flight_is_published_and_the_persister_goes_on()
{
    use futures_util::StreamExt;

    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let nats = app.nats().await;
    let mut added = nats
        .subscribe(format!("chat.events.{chat_id}.member_added"))
        .await
        .unwrap();
    let newcomers: Vec<i64> = (1_000..7_000).collect(); // 6,000 `member_added` in one batch
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{chat_id}.add_members"),
        json!({"type": "add_members", "command_id": "many", "chat_id": chat_id,
               "user_ids": newcomers}),
    )
    .await;
    let mut told = 0;
    while told < 6_000 {
        tokio::time::timeout(Duration::from_secs(60), added.next())
            .await
            .expect("every member_added is published")
            .expect("subscription open");
        told += 1;
    }
    let mut alice = app.connect(1).await;
    let ack = alice
        .send_message(json!({"chat_id": chat_id, "content": "after", "client_msg_id": "after"}))
        .await;
    assert_eq!(
        ack["client_msg_id"], "after",
        "the persister went on: {ack}"
    );
}
