//! The user directory: names and avatars from Django (access-token claims, `upsert_user` on
//! NATS), the newest kept, garbage refused with its code; `GET /users` shows only users who
//! share a chat with the caller; `user_updated` reaches co-members only; `GET /chats/`
//! carries the members' profiles.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WsClient, eventually, pipeline_drained, publish_command, spawn_app, stream_messages,
    token_with,
};

/// An access token for `user_id` whose claims also carry `extra` (name, avatar, iat).
fn token_claiming(user_id: i64, extra: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "user_id": user_id,
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    token_with(claims)
}

/// Django's `upsert_user`, published on `CHAT_IN`.
async fn upsert(app: &TestApp, command_id: &str, user_id: Value, name: &str, extra: Value) {
    let mut command = json!({
        "type": "upsert_user",
        "command_id": command_id,
        "user_id": user_id,
        "display_name": name,
    });
    command
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    publish_command(app, "chat.in.users.upsert", command).await;
}

/// `GET /users?ids=…` as `viewer`: the profiles by id.
async fn users(app: &TestApp, viewer: i64, ids: &str) -> Vec<Value> {
    let answer = app.get(viewer, &format!("/users?ids={ids}")).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// The display name `viewer` sees for `user` (None: not shown).
async fn name_seen(app: &TestApp, viewer: i64, user: i64) -> Option<String> {
    users(app, viewer, &user.to_string())
        .await
        .first()
        .map(|p| p["display_name"].as_str().unwrap().to_owned())
}

/// Waits until `viewer` sees `user` named `name`.
async fn until_named(app: &TestApp, viewer: i64, user: i64, name: &str) {
    eventually(&format!("user {user} is named {name}"), || async {
        match name_seen(app, viewer, user).await {
            Some(seen) if seen == name => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// The next frame of `action`, skipping presence and other hints.
async fn next_of(client: &mut WsClient, action: &str) -> Value {
    loop {
        let frame = client.next().await;
        if frame["action"] == action {
            return frame;
        }
        assert!(
            ["presence", "chat_created", "command_applied"]
                .contains(&frame["action"].as_str().unwrap_or("")),
            "expected {action}, got {frame}"
        );
    }
}

#[tokio::test]
async fn claims_are_recorded_when_a_socket_opens_and_when_its_token_is_refreshed() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let token = token_claiming(
        1,
        json!({"name": "  Ann  ", "avatar": "https://cdn.example/ann.png", "iat": now - 10}),
    );
    let mut ann = app.try_connect(Some(&token)).await.expect("connects");
    // The user's own sockets are told too (another device shows the new name).
    let frame = next_of(&mut ann, "user_updated").await;
    assert_eq!(
        frame["user"]["display_name"], "Ann",
        "stored trimmed: {frame}"
    );
    until_named(&app, 1, 1, "Ann").await;
    let me = users(&app, 1, "1").await;
    assert_eq!(me[0]["avatar_url"], "https://cdn.example/ann.png");
    assert!(me[0]["updated_at"].is_string(), "{me:?}");

    // A fresher token with another name: recorded on `refresh_token`, avatar gone with it.
    let renamed = token_claiming(1, json!({"name": "Ann B", "iat": now}));
    ann.send(json!({"action": "refresh_token", "token": renamed}))
        .await;
    next_of(&mut ann, "token_refreshed").await;
    assert_eq!(
        next_of(&mut ann, "user_updated").await["user"]["display_name"],
        "Ann B"
    );
    until_named(&app, 1, 1, "Ann B").await;
    assert_eq!(users(&app, 1, "1").await[0]["avatar_url"], Value::Null);
}

#[tokio::test]
async fn a_socket_with_the_claims_the_directory_has_publishes_nothing() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut upserts = nats.subscribe("chat.in.users.upsert").await.unwrap();
    nats.flush().await.unwrap();
    let token = token_claiming(1, json!({"name": "Ann"}));
    let _first = app.try_connect(Some(&token)).await.expect("connects");
    until_named(&app, 1, 1, "Ann").await;
    assert!(
        upserts.next().await.is_some(),
        "the first socket records the claims"
    );

    // Same claims again, on this instance (which knows) and on a second one (which reads the
    // directory once): no command.
    let _again = app.try_connect(Some(&token)).await.expect("connects");
    let other = app.sibling().await;
    let _there = other.try_connect(Some(&token)).await.expect("connects");
    let more = tokio::time::timeout(Duration::from_secs(2), upserts.next()).await;
    assert!(more.is_err(), "a command was published: {more:?}");
    // A token without the claims records nothing either.
    let _plain = app.connect(1).await;
    assert_eq!(name_seen(&app, 1, 1).await.as_deref(), Some("Ann"));
}

#[tokio::test]
async fn django_upserts_a_user_the_members_are_told_and_an_older_update_is_ignored() {
    let app = spawn_app().await;
    app.create_chat(1, false, &[2]).await;
    app.create_chat(1, true, &[2]).await;
    app.create_chat(3, false, &[4]).await;
    let mut bob = app.connect(2).await;
    let mut stranger = app.connect(3).await;

    upsert(
        &app,
        "django-1",
        json!(1),
        "Alice",
        json!({"avatar_url": "https://cdn.example/a.png", "updated_at": "2026-12-01T10:00:00Z"}),
    )
    .await;
    let frame = next_of(&mut bob, "user_updated").await;
    assert_eq!(frame["user"]["user_id"], 1);
    assert_eq!(frame["user"]["display_name"], "Alice");
    assert_eq!(frame["user"]["avatar_url"], "https://cdn.example/a.png");
    stranger.expect_silence(Duration::from_millis(500)).await;
    // Told once, though Bob shares two chats with Alice.
    bob.expect_silence(Duration::from_millis(100)).await;

    // Older than what is stored: nothing changes, nobody is told.
    upsert(
        &app,
        "django-0",
        json!(1),
        "Alice (old)",
        json!({"updated_at": "2026-11-30T10:00:00Z"}),
    )
    .await;
    pipeline_drained(&app).await;
    assert_eq!(name_seen(&app, 2, 1).await.as_deref(), Some("Alice"));
    // The same name said later is no change either; a newer name is.
    upsert(
        &app,
        "django-2",
        json!(1),
        "Alice",
        json!({"avatar_url": "https://cdn.example/a.png", "updated_at": "2026-12-02T10:00:00Z"}),
    )
    .await;
    upsert(
        &app,
        "django-3",
        json!(1),
        "Alicia",
        json!({"updated_at": "2026-12-03T10:00:00Z"}),
    )
    .await;
    let frame = next_of(&mut bob, "user_updated").await;
    assert_eq!(frame["user"]["display_name"], "Alicia", "{frame}");
    assert_eq!(frame["user"]["avatar_url"], Value::Null);
    stranger.expect_silence(Duration::from_millis(300)).await;
    // An older token's claims do not undo it either.
    let stale = token_claiming(1, json!({"name": "Alice", "iat": 1_700_000_000}));
    let _alice = app.try_connect(Some(&stale)).await.expect("connects");
    pipeline_drained(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pipeline_drained(&app).await;
    assert_eq!(name_seen(&app, 2, 1).await.as_deref(), Some("Alicia"));
}

#[tokio::test]
async fn invalid_names_and_urls_are_refused_with_their_code_and_garbage_is_set_aside() {
    let app = spawn_app().await;
    let nats = app.nats().await;
    let mut rejected = nats
        .subscribe("chat.events.none.command_rejected")
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let long = "x".repeat(101);
    let long_url = format!("https://cdn.example/{}", "a".repeat(2048));
    let cases = [
        ("blank", json!(1), "   ", json!({}), "invalid_display_name"),
        (
            "long",
            json!(1),
            long.as_str(),
            json!({}),
            "invalid_display_name",
        ),
        (
            "bell",
            json!(1),
            "An\u{7}n",
            json!({}),
            "invalid_display_name",
        ),
        (
            "nul",
            json!(1),
            "An\u{0}n",
            json!({}),
            "invalid_display_name",
        ),
        (
            "newline",
            json!(1),
            "Ann\nB",
            json!({}),
            "invalid_display_name",
        ),
        (
            "script",
            json!(1),
            "Ann",
            json!({"avatar_url": "javascript:alert(1)"}),
            "invalid_avatar_url",
        ),
        (
            "ftp",
            json!(1),
            "Ann",
            json!({"avatar_url": "ftp://cdn.example/a.png"}),
            "invalid_avatar_url",
        ),
        (
            "nohost",
            json!(1),
            "Ann",
            json!({"avatar_url": "https:///a.png"}),
            "invalid_avatar_url",
        ),
        (
            "longurl",
            json!(1),
            "Ann",
            json!({"avatar_url": long_url}),
            "invalid_avatar_url",
        ),
        ("zero", json!(0), "Ann", json!({}), "invalid_field"),
        ("negative", json!(-5), "Ann", json!({}), "invalid_field"),
    ];
    for (id, user, name, extra, _) in &cases {
        upsert(&app, id, user.clone(), name, extra.clone()).await;
    }
    // Beyond i64: not a command at all, kept as a dead letter.
    publish_command(
        &app,
        "chat.in.users.upsert",
        json!({"type":"upsert_user","command_id":"huge","user_id":1e20,"display_name":"Ann"}),
    )
    .await;
    let mut codes = std::collections::BTreeMap::new();
    while codes.len() < cases.len() + 1 {
        let message = tokio::time::timeout(Duration::from_secs(10), rejected.next())
            .await
            .expect("a rejection in time")
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        codes.insert(
            event["command_id"].as_str().unwrap_or("-").to_owned(),
            event["code"].as_str().unwrap().to_owned(),
        );
    }
    for (id, _, _, _, code) in &cases {
        assert_eq!(
            codes.get(*id).map(String::as_str),
            Some(*code),
            "{id}: {codes:?}"
        );
    }
    assert!(
        codes.values().any(|c| c == "invalid_command"),
        "the undecodable one: {codes:?}"
    );
    pipeline_drained(&app).await;
    let letters = stream_messages(&app, "CHAT_DLQ").await;
    assert_eq!(
        letters.len(),
        1,
        "only the undecodable command is a dead letter"
    );
    assert_eq!(name_seen(&app, 1, 1).await.as_deref(), Some("User 1"));

    // The largest id is a user like any other; the same command twice leaves it so.
    for _ in 0..2 {
        upsert(&app, "max", json!(i64::MAX), "Max", json!({})).await;
    }
    until_named(&app, i64::MAX, i64::MAX, "Max").await;
    // None of it stopped anyone else: a message still flows.
    let chat_id = app.create_chat(1, false, &[2]).await;
    let mut bob = app.connect(2).await;
    let mut ann = app.connect(1).await;
    ann.send(json!({"action":"send_message","chat_id":chat_id,"content":"still here","client_msg_id":"after"}))
        .await;
    assert_eq!(
        next_of(&mut bob, "new_message").await["content"],
        "still here"
    );
}

#[tokio::test]
async fn users_are_shown_to_those_who_share_a_chat_and_unknown_ones_read_user_n() {
    let app = spawn_app().await;
    app.create_chat(1, true, &[2, 6]).await;
    app.create_chat(3, false, &[4]).await;
    for (id, name) in [(1, "Ann"), (2, "Bob"), (3, "Cid")] {
        upsert(&app, &format!("u{id}"), json!(id), name, json!({})).await;
    }
    until_named(&app, 1, 2, "Bob").await;

    let seen = users(&app, 1, "3,2,1,5,6,2").await;
    let names: Vec<(i64, &str)> = seen
        .iter()
        .map(|p| {
            (
                p["user_id"].as_i64().unwrap(),
                p["display_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [(1, "Ann"), (2, "Bob"), (6, "User 6")],
        "a stranger (3) and a user in no shared chat (5) are absent"
    );
    assert_eq!(
        seen[2]["updated_at"],
        Value::Null,
        "6 is not in the directory"
    );
    assert_eq!(seen[2]["avatar_url"], Value::Null);
    assert!(users(&app, 3, "1,2").await.is_empty());
    assert_eq!(name_seen(&app, 3, 3).await.as_deref(), Some("Cid"));

    for bad in [
        "",
        "abc",
        "1,,2",
        "0",
        &(1..=101)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ] {
        let answer = app.get(1, &format!("/users?ids={bad}")).await;
        assert_eq!(answer.status(), 422, "ids={bad}");
    }
    assert_eq!(app.get_with_token(None, "/users?ids=1").await.status(), 401);
}

#[tokio::test]
async fn the_chat_list_carries_the_members_profiles() {
    let app = spawn_app().await;
    let private = app.create_chat(1, false, &[2]).await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    upsert(
        &app,
        "u2",
        json!(2),
        "Bob",
        json!({"avatar_url": "https://cdn.example/bob.png"}),
    )
    .await;
    until_named(&app, 1, 2, "Bob").await;

    let chats = app.get_json(1, "/chats/").await;
    let chat = |id: i64| {
        chats
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["chat_id"] == id)
            .unwrap()
            .clone()
    };
    let private = chat(private);
    assert_eq!(
        private["profiles"],
        json!([
            {"user_id": 1, "display_name": "User 1", "avatar_url": null, "updated_at": null},
            {"user_id": 2, "display_name": "Bob", "avatar_url": "https://cdn.example/bob.png",
             "updated_at": private["profiles"][1]["updated_at"]},
        ])
    );
    let group = chat(group);
    let names: Vec<&str> = group["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User 1", "Bob", "User 3"]);
}

/// The `display_name`s of a frame's `profiles`.
fn names(frame: &Value) -> Vec<String> {
    frame["profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("profiles in {frame}"))
        .iter()
        .map(|p| p["display_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn chat_created_and_member_added_carry_the_members_profiles() {
    let app = spawn_app().await;
    for (id, name) in [(1, "Ann"), (2, "Bob"), (3, "Cid")] {
        upsert(&app, &format!("u{id}"), json!(id), name, json!({})).await;
    }
    pipeline_drained(&app).await;
    let mut ann = app.connect(1).await;
    let mut bob = app.connect(2).await;

    let group = app.create_chat(1, true, &[2]).await;
    let created = next_of(&mut bob, "chat_created").await;
    assert_eq!(created["chat"]["chat_id"], group);
    assert_eq!(names(&created), ["Ann", "Bob"]);

    publish_command(
        &app,
        &format!("chat.in.{group}.add_members"),
        json!({"type":"add_members","command_id":"add-3","chat_id":group,"user_ids":[3]}),
    )
    .await;
    let added = next_of(&mut bob, "member_added").await;
    assert_eq!(added["user_id"], 3);
    assert_eq!(names(&added), ["Ann", "Bob", "Cid"]);

    // A private chat made by a first message names both members too (a user the directory
    // does not know as "User N").
    ann.send(json!({"action":"send_message","receiver_id":4,"content":"hi","client_msg_id":"p1"}))
        .await;
    let created = loop {
        let frame = ann.next().await;
        if frame["action"] == "chat_created" && frame["chat"]["member_ids"] == json!([1, 4]) {
            break frame;
        }
    };
    assert_eq!(names(&created), ["Ann", "User 4"]);
}
