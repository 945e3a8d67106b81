//! REST: chat creation (full and legacy forms), my chats with last message and unread count,
//! health, the OpenAPI document and the Swagger UI.

use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};

/// A chat's member ids, sorted.
fn members(chat: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = chat["member_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("member_ids in {chat}"))
        .iter()
        .map(|id| id.as_i64().expect("member ids are integers"))
        .collect();
    ids.sort_unstable();
    ids
}

/// POST `body` to `/chats/` as `user`; returns the status and the JSON body.
async fn create(app: &TestApp, user: i64, body: Value) -> (u16, Value) {
    let response = app.post(user, "/chats/", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn assert_422(app: &TestApp, user: i64, body: Value) {
    let (status, answer) = create(app, user, body.clone()).await;
    assert_eq!(status, 422, "POST /chats/ {body} answered {answer}");
    assert!(
        answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{{\"detail\": ...}} for {body}: {answer}"
    );
}

/// `user`'s chat list.
async fn my_chats(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_json(user, "/chats/")
        .await
        .as_array()
        .expect("a list of chats")
        .clone()
}

async fn find_chat(app: &TestApp, user: i64, chat_id: i64) -> Option<Value> {
    my_chats(app, user)
        .await
        .into_iter()
        .find(|c| c["chat_id"] == chat_id)
}

#[tokio::test]
async fn creating_a_group_answers_201_with_the_creator_among_the_members() {
    let app = spawn_app().await;
    let (status, chat) = create(
        &app,
        1,
        json!({"name": "team", "is_group": true, "member_ids": [2, 3]}),
    )
    .await;
    assert_eq!(status, 201, "{chat}");
    assert!(chat["chat_id"].as_i64().is_some_and(|id| id > 0), "{chat}");
    assert_eq!(chat["name"], "team");
    assert_eq!(chat["is_group"], true);
    assert_eq!(chat["created_by"], 1);
    assert_eq!(members(&chat), vec![1, 2, 3]);

    // A second group with the same members is another chat.
    let (status, again) = create(
        &app,
        1,
        json!({"name": "team", "is_group": true, "member_ids": [2, 3]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_ne!(again["chat_id"], chat["chat_id"]);
}

#[tokio::test]
async fn a_private_chat_is_created_once_per_pair() {
    let app = spawn_app().await;
    let (status, first) = create(&app, 1, json!({"is_group": false, "member_ids": [2]})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["is_group"], false);
    assert_eq!(members(&first), vec![1, 2]);
    let chat_id = first["chat_id"].clone();

    let (status, second) = create(&app, 1, json!({"is_group": false, "member_ids": [2]})).await;
    assert_eq!(status, 200, "the existing private chat: {second}");
    assert_eq!(second["chat_id"], chat_id);
    assert_eq!(members(&second), vec![1, 2]);

    let (status, from_bob) = create(&app, 2, json!({"is_group": false, "member_ids": [1]})).await;
    assert_eq!(status, 200, "bob gets the same private chat: {from_bob}");
    assert_eq!(from_bob["chat_id"], chat_id);

    // A private chat with someone else is a different one.
    let (status, other) = create(&app, 1, json!({"is_group": false, "member_ids": [3]})).await;
    assert_eq!(status, 201);
    assert_ne!(other["chat_id"], chat_id);
}

#[tokio::test]
async fn a_private_chat_started_on_the_socket_is_returned_by_rest() {
    let app = spawn_app().await;
    let mut alice = app.connect(1).await;
    let ack = alice
        .send_message(json!({"receiver_id": 2, "content": "hi"}))
        .await;
    let (status, chat) = create(&app, 2, json!({"is_group": false, "member_ids": [1]})).await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["chat_id"], ack["chat_id"]);
}

#[tokio::test]
async fn a_private_chat_needs_exactly_one_other_member() {
    let app = spawn_app().await;
    assert_422(&app, 1, json!({"is_group": false, "member_ids": []})).await;
    assert_422(&app, 1, json!({"is_group": false, "member_ids": [1]})).await;
    assert_422(&app, 1, json!({"is_group": false, "member_ids": [2, 3]})).await;
    assert!(my_chats(&app, 1).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn non_positive_member_ids_are_422() {
    let app = spawn_app().await;
    assert_422(&app, 1, json!({"is_group": true, "member_ids": [2, 0]})).await;
    assert_422(&app, 1, json!({"is_group": true, "member_ids": [-3]})).await;
    assert_422(&app, 1, json!({"is_group": false, "member_ids": [0]})).await;
    assert_422(&app, 1, json!([2, -1])).await;
    assert!(my_chats(&app, 1).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_malformed_body_is_422_with_detail() {
    let app = spawn_app().await;
    assert_422(&app, 1, json!({"name": "no members", "is_group": true})).await;
    assert_422(&app, 1, json!({"is_group": true, "member_ids": "2,3"})).await;
}

#[tokio::test]
async fn the_python_form_makes_a_named_group() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/chats/?name=team"))
        .bearer_auth(crate::helpers::token(1))
        .json(&json!([2, 3]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let chat: Value = response.json().await.unwrap();
    assert!(chat["chat_id"].as_i64().is_some(), "{chat}");
    assert_eq!(chat["name"], "team");
    assert_eq!(chat["is_group"], true);
    assert_eq!(members(&chat), vec![1, 2, 3]);

    // Without ?name= it is still a group; even with a single other member.
    let response = app.post_raw(1, "/chats/", "[2]").await;
    assert_eq!(response.status(), 201);
    let chat: Value = response.json().await.unwrap();
    assert_eq!(chat["is_group"], true);
    assert_eq!(members(&chat), vec![1, 2]);
}

#[tokio::test]
async fn chats_without_the_trailing_slash_work() {
    let app = spawn_app().await;
    let response = app
        .post(
            1,
            "/chats",
            json!({"name": "slashless", "is_group": true, "member_ids": [2]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let chat: Value = response.json().await.unwrap();
    let listed = app.get_json(1, "/chats").await;
    assert_eq!(listed[0]["chat_id"], chat["chat_id"]);
}

#[tokio::test]
async fn my_chats_show_the_last_message_and_unread_count() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let mut last = Value::Null;
    for i in 1..=3 {
        last = bob
            .send_message(json!({"chat_id": chat_id, "content": format!("unread {i}")}))
            .await;
    }
    let newest = last["message_id"].as_i64().unwrap();

    let chat = find_chat(&app, 1, chat_id)
        .await
        .expect("alice's chat listed");
    assert_eq!(chat["unread_count"], 3, "{chat}");
    assert_eq!(chat["is_group"], true);
    assert_eq!(members(&chat), vec![1, 2]);
    let message = &chat["last_message"];
    assert_eq!(message["message_id"], newest, "{chat}");
    assert_eq!(message["content"], "unread 3");
    assert_eq!(message["sender_id"], 2);
    assert_eq!(message["chat_id"], chat_id);
    // Bob's own messages are not unread for him.
    let bobs = find_chat(&app, 2, chat_id)
        .await
        .expect("bob's chat listed");
    assert_eq!(bobs["unread_count"], 0, "{bobs}");
    assert_eq!(bobs["last_message"]["message_id"], newest);

    let mut alice = app.connect(1).await;
    alice
        .send(json!({"action": "acknowledge", "message_id": newest}))
        .await;
    eventually("alice's unread count drops to 0", || async {
        let chat = find_chat(&app, 1, chat_id).await.expect("still listed");
        if chat["unread_count"] == 0 {
            Ok(())
        } else {
            Err(chat.to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn a_chat_without_messages_is_listed_with_no_last_message() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let chat = find_chat(&app, 2, chat_id)
        .await
        .expect("bob's chat listed");
    assert!(chat["last_message"].is_null(), "{chat}");
    assert_eq!(chat["unread_count"], 0);
}

#[tokio::test]
async fn chats_are_listed_only_to_their_members() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"chat_id": chat_id, "content": "members only"}))
        .await;
    assert!(find_chat(&app, 2, chat_id).await.is_some());
    assert!(
        my_chats(&app, 3).await.is_empty(),
        "a non-member sees no chats"
    );
}

#[tokio::test]
async fn healthz_is_ok() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let doc = app.openapi().await; // 200 with a JSON body
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3.x: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/chats/",
        "/chats/{chat_id}/messages",
        "/messages/{user_id}",
        "/ws/chat",
        "/healthz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} in {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(paths["/chats/"]["post"].is_object());
    assert!(paths["/chats/"]["get"].is_object());
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(
        bearer["scheme"].as_str().map(str::to_lowercase).as_deref(),
        Some("bearer")
    );
}

#[tokio::test]
async fn docs_serve_the_swagger_ui() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "Swagger UI page");
}
