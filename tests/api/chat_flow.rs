//! The full cycle: send → accepted → ack → new_message → delivered/read → status_update.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, without_cursor};

#[tokio::test]
async fn private_chat_full_cycle() {
    let app = spawn_app().await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;

    // First message to a user creates the private chat.
    alice
        .send(json!({"action":"send_message","receiver_id":2,"content":"hi bob","content_type":"text","client_msg_id":"a-1"}))
        .await;
    let accepted = alice.expect("message_accepted").await;
    assert_eq!(accepted["client_msg_id"], "a-1");
    let ack = alice.expect("message_ack").await;
    assert_eq!(ack["client_msg_id"], "a-1");
    let message_id = ack["message_id"].as_i64().unwrap();
    let chat_id = ack["chat_id"].as_i64().unwrap();
    assert!(ack["timestamp"].as_str().unwrap().ends_with("+00:00"));

    let new = bob.expect("new_message").await;
    assert_eq!(new["message_id"], message_id);
    assert_eq!(new["chat_id"], chat_id);
    assert_eq!(new["sender_id"], 1);
    assert_eq!(new["receiver_id"], 2);
    assert_eq!(new["content"], "hi bob");
    assert_eq!(new["content_type"], "text");
    assert_eq!(new["client_msg_id"], "a-1");
    assert_eq!(new["status"], "sent");
    assert!(new["file_url"].is_null());

    bob.send(json!({"action":"delivered","message_id":message_id}))
        .await;
    let update = without_cursor(alice.expect("status_update").await);
    assert_eq!(
        update,
        json!({"action":"status_update","message_id":message_id,"chat_id":chat_id,"user_id":2,"status":"delivered"})
    );

    bob.send(json!({"action":"acknowledge","message_id":message_id}))
        .await;
    let update = alice.expect("status_update").await;
    assert_eq!(update["status"], "read");

    // The answer goes the other way through the now-known chat.
    let ack = bob
        .send_message(json!({"receiver_id":1,"content":"hi alice"}))
        .await;
    assert_eq!(ack["chat_id"], chat_id);
    let new = alice.expect("new_message").await;
    assert_eq!(new["content"], "hi alice");

    let history: serde_json::Value = app
        .get(1, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["message_id"], message_id);
    assert_eq!(history[1]["status"], "read", "alice sees her message read");
    assert_eq!(
        history[0]["status"], "sent",
        "alice has not marked bob's answer"
    );
}

#[tokio::test]
async fn group_chat_fans_out_to_every_member_once() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut carol = app.connect(3).await;
    let mut stranger = app.connect(4).await;

    let ack = alice
        .send_message(json!({"chat_id":chat_id,"content":"hello group","client_msg_id":"g-1"}))
        .await;
    let message_id = ack["message_id"].as_i64().unwrap();
    for member in [&mut bob, &mut carol] {
        let new = member.expect("new_message").await;
        assert_eq!(new["message_id"], message_id);
        assert_eq!(new["chat_id"], chat_id);
        assert!(new["receiver_id"].is_null());
    }
    stranger.expect_silence(Duration::from_millis(300)).await;
    alice.expect_silence(Duration::from_millis(100)).await;

    carol
        .send(json!({"action":"acknowledge","message_id":message_id}))
        .await;
    let update = alice.expect("status_update").await;
    assert_eq!(update["user_id"], 3);
    assert_eq!(update["status"], "read");
    bob.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn every_device_of_a_user_gets_the_message() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut phone = app.connect(1).await;
    let mut laptop = app.connect(1).await;
    let mut bob_phone = app.connect(2).await;
    let mut bob_laptop = app.connect(2).await;

    let ack = phone
        .send_message(json!({"chat_id":chat_id,"content":"from my phone"}))
        .await;
    // The sender's other device sees its own message as new_message.
    let mine = laptop.expect("new_message").await;
    assert_eq!(mine["message_id"], ack["message_id"]);
    assert_eq!(mine["sender_id"], 1);
    for socket in [&mut bob_phone, &mut bob_laptop] {
        assert_eq!(
            socket.expect("new_message").await["message_id"],
            ack["message_id"]
        );
    }
}

#[tokio::test]
async fn a_retried_client_msg_id_is_stored_once() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;

    let first = alice
        .send_message(json!({"chat_id":chat_id,"content":"once","client_msg_id":"retry-me"}))
        .await;
    assert_eq!(
        bob.expect("new_message").await["message_id"],
        first["message_id"]
    );

    // The client did not see the ack and sends again, even from a new connection.
    let mut again = app.connect(1).await;
    again.send(json!({"action":"send_message","chat_id":chat_id,"content":"once","client_msg_id":"retry-me"})).await;
    let reply = again.next().await;
    let reply = if reply["action"] == "message_accepted" {
        again.next().await
    } else {
        reply
    };
    assert_eq!(reply["action"], "message_ack");
    assert_eq!(reply["message_id"], first["message_id"]);
    bob.expect_silence(Duration::from_millis(300)).await;

    let history: serde_json::Value = app
        .get(2, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_new_private_chat_reaches_a_receiver_who_is_already_online() {
    let app = spawn_app().await;
    let mut bob = app.connect(2).await;
    let mut alice = app.connect(1).await;
    for i in 0..5 {
        alice
            .send(json!({"action":"send_message","receiver_id":2,"content":format!("m{i}")}))
            .await;
    }
    for i in 0..5 {
        let new = bob.expect("new_message").await;
        assert_eq!(new["content"], format!("m{i}"));
    }
}

#[tokio::test]
async fn pushed_messages_are_marked_delivered_for_clients_that_never_say_so() {
    let app = crate::helpers::spawn_app_with(&[("AUTO_DELIVERED", "true")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut last = 0;
    for i in 0..3 {
        let ack = alice
            .send_message(json!({"chat_id":chat_id,"content":format!("m{i}")}))
            .await;
        last = ack["message_id"].as_i64().unwrap();
        bob.expect("new_message").await;
    }
    // Bob's client (a Python-service client) sends no receipt; jetchat reports the push.
    loop {
        let update = alice.expect("status_update").await;
        assert_eq!(update["user_id"], 2);
        assert_eq!(update["status"], "delivered");
        if update["message_id"] == last {
            break;
        }
    }
    let history: serde_json::Value = app
        .get(1, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "delivered")
    );
}
