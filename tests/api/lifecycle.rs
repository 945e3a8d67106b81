//! Start-up, graceful shutdown, and durability across restarts.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let mut app = spawn_app().await;
    let mut socket = app.connect(1).await;
    app.stop().await;
    assert_eq!(socket.close_code().await, 1001);
}

#[tokio::test]
async fn commands_accepted_while_jetchat_is_down_are_persisted_when_it_returns() {
    let mut app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    app.stop().await;

    // With no jetchat running, JetStream still takes commands (here as Django would send them).
    let js = async_nats::jetstream::new(app.nats().await);
    for i in 0..20 {
        let command = json!({"type":"send_message","v":1,"sender_id":1,"chat_id":chat_id,
            "content":format!("while down {i}"),"content_type":"text","client_msg_id":format!("down-{i}")});
        js.publish(
            format!("chat.in.{chat_id}.message"),
            command.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .expect("JetStream acknowledges");
    }

    app.start_again().await;
    let mut history = Vec::new();
    for _ in 0..100 {
        let page: Value = app
            .get(2, &format!("/chats/{chat_id}/messages?limit=100"))
            .await
            .json()
            .await
            .unwrap();
        history = page.as_array().unwrap().clone();
        if history.len() >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let contents: Vec<&str> = history
        .iter()
        .rev()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("while down {i}")).collect();
    assert_eq!(contents, expected, "every command persisted once, in order");
}

#[tokio::test]
async fn healthz_reports_ok_when_everything_is_up() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status":"ok","database":true,"nats":true,"streams":true})
    );
}
