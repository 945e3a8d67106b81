//! Failure survival: whatever dies, a message that got `message_accepted` is stored exactly
//! once, and a send that could not be accepted is answered with an error, never silence.

use std::{collections::HashSet, time::Duration};

use sea_orm::{Database, EntityTrait};
use serde_json::json;

use jetchat::store::message;

use crate::helpers::{WsClient, eventually, spawn_app};

/// Sends `client_msg_id` until jetchat accepts it, resending after each error like a client
/// that follows the protocol; returns how many errors it saw.
async fn send_until_accepted(socket: &mut WsClient, chat_id: i64, client_msg_id: &str) -> usize {
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
                Some("message_accepted") => return errors,
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
    let db = Database::connect(&app.database_url).await.unwrap();
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
    // And the service keeps working end to end after the restart.
    let mut bob = app.connect(2).await;
    send_until_accepted(&mut alice, group, "after").await;
    assert_eq!(bob.expect("new_message").await["content"], "after");
}
