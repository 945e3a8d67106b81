//! Presence: online while a socket is open on some instance, offline after the last one
//! closes (past the grace) or its instance dies; told to those who share a chat, on change only.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};

use jetchat::bus::schemas::schemas;

use crate::helpers::{WsClient, connect_at, spawn_app_with};

/// Quick heartbeats and a short grace, so the tests wait little (no test asserts a duration).
const FAST: &[(&str, &str)] = &[
    ("PRESENCE", "on"),
    ("PRESENCE_TTL", "2s"),
    ("PRESENCE_GRACE", "300ms"),
];

/// The next `presence` frame, which must be about `user_id` going `status`.
async fn expect_presence(socket: &mut WsClient, user_id: i64, status: &str) -> Value {
    let frame = socket.expect("presence").await;
    assert_eq!(frame["user_id"], user_id, "{frame}");
    assert_eq!(frame["status"], status, "{frame}");
    frame
}

/// Each member's `status` and `last_seen` in a `presence_state` frame or a REST answer.
fn members(answer: &Value) -> HashMap<i64, (String, Value)> {
    answer["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_i64().unwrap(),
                (
                    m["status"].as_str().unwrap().to_owned(),
                    m["last_seen"].clone(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn presence_is_told_across_instances_to_those_who_share_a_chat() {
    let a = spawn_app_with(FAST).await;
    let b = a.sibling().await;
    a.create_chat(1, false, &[2]).await;
    a.create_chat(3, false, &[4]).await;
    let mut alice = a.connect(1).await;
    let mut stranger = a.connect(3).await;
    let mut bob = b.connect(2).await;

    let online = expect_presence(&mut alice, 2, "online").await;
    assert_eq!(online["last_seen"], Value::Null);

    drop(bob);
    let offline = expect_presence(&mut alice, 2, "offline").await;
    assert!(offline["last_seen"].is_string(), "{offline}");
    alice.expect_silence(Duration::from_millis(500)).await;
    stranger.expect_silence(Duration::from_millis(100)).await;

    // Someone who was online before you connected is no change: ask for the state instead.
    bob = b.connect(2).await;
    expect_presence(&mut alice, 2, "online").await;
    bob.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_user_in_several_shared_chats_is_told_once_per_socket() {
    let a = spawn_app_with(FAST).await;
    a.create_chat(1, false, &[2]).await;
    a.create_chat(1, true, &[2]).await;
    a.create_chat(2, true, &[1, 3]).await;
    let mut alice = a.connect(1).await;
    let _bob = a.connect(2).await;
    expect_presence(&mut alice, 2, "online").await;
    alice.expect_silence(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn kill_9_of_an_instance_takes_its_users_offline() {
    let a = spawn_app_with(FAST).await;
    a.create_chat(1, false, &[2]).await;
    let mut alice = a.connect(1).await;
    let mut other = a.spawn_process().await;
    let _bob = connect_at(other.address, 2).await;
    expect_presence(&mut alice, 2, "online").await;

    other.kill();
    // Within the TTL plus a sweep; FRAME_TIMEOUT is far more than that.
    let offline = expect_presence(&mut alice, 2, "offline").await;
    assert!(offline["last_seen"].is_string(), "{offline}");
}

/// Everyone on an instance that dies goes offline in one batch of changes: each is told in
/// each of their small chats (but not in a group past `PRESENCE_MAX_MEMBERS`), and each has a
/// `last_seen` a member reads back.
#[tokio::test]
async fn many_users_going_offline_together_are_each_told_with_a_last_seen() {
    const USERS: i64 = 40;
    let a = spawn_app_with(
        &[
            FAST,
            &[("PRESENCE_MAX_MEMBERS", "2"), ("RATE_CHATS_PER_MIN", "0")],
        ]
        .concat(),
    )
    .await;
    let mut chats = Vec::new();
    for user in 2..2 + USERS {
        chats.push((user, a.create_chat(1, false, &[user]).await));
    }
    // A group of three: past PRESENCE_MAX_MEMBERS, its members are told nothing there.
    let group = a.create_chat(1, true, &[2, 3]).await;
    let mut alice = a.connect(1).await;
    let mut other = a.spawn_process().await;
    let mut theirs = Vec::new();
    for user in 2..2 + USERS {
        theirs.push(connect_at(other.address, user).await);
    }
    let mut online = std::collections::HashSet::new();
    while online.len() < USERS as usize {
        let frame = alice.expect("presence").await;
        assert_eq!(frame["status"], "online", "{frame}");
        online.insert(frame["user_id"].as_i64().unwrap());
    }

    other.kill();
    let mut offline = std::collections::HashSet::new();
    while offline.len() < USERS as usize {
        let frame = alice.expect("presence").await;
        assert_eq!(frame["status"], "offline", "{frame}");
        assert!(frame["last_seen"].is_string(), "{frame}");
        assert!(
            offline.insert(frame["user_id"].as_i64().unwrap()),
            "told once per user (the group of three is past the limit): {frame}"
        );
    }
    alice.expect_silence(Duration::from_millis(500)).await;
    // Some of them (presence queries are limited to bursts of 20): the first, the last, between.
    for &(user, chat) in chats.iter().step_by(9).chain(chats.last()) {
        let answer: Value = a
            .get(1, &format!("/chats/{chat}/presence"))
            .await
            .json()
            .await
            .unwrap();
        let (status, last_seen) = &members(&answer)[&user];
        assert_eq!(status, "offline", "{answer}");
        assert!(last_seen.is_string(), "user {user}'s last_seen: {answer}");
    }
    let answer: Value = a
        .get(1, &format!("/chats/{group}/presence"))
        .await
        .json()
        .await
        .unwrap();
    assert!(members(&answer)[&2].1.is_string(), "{answer}");
    drop(theirs);
}

#[tokio::test]
async fn a_reconnect_within_the_grace_tells_nothing() {
    let a = spawn_app_with(&[
        ("PRESENCE", "on"),
        ("PRESENCE_TTL", "2s"),
        ("PRESENCE_GRACE", "3s"),
    ])
    .await;
    let b = a.sibling().await;
    a.create_chat(1, false, &[2]).await;
    let mut alice = a.connect(1).await;
    let bob = a.connect(2).await;
    expect_presence(&mut alice, 2, "online").await;

    // A flapping connection, on this instance and the other.
    drop(bob);
    for i in 0..5 {
        let flap = if i % 2 == 0 {
            b.connect(2).await
        } else {
            a.connect(2).await
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(flap);
    }
    alice.expect_silence(Duration::from_millis(1500)).await;
    // Gone for good: told once, after the grace.
    expect_presence(&mut alice, 2, "offline").await;
    alice.expect_silence(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn members_ask_for_a_chats_presence_by_frame_and_by_rest() {
    let a = spawn_app_with(FAST).await;
    let chat = a.create_chat(1, true, &[2, 3]).await;
    let mut alice = a.connect(1).await;
    let bob = a.connect(2).await;
    expect_presence(&mut alice, 2, "online").await;
    drop(bob);
    expect_presence(&mut alice, 2, "offline").await;

    alice
        .send(json!({"action": "presence", "chat_id": chat}))
        .await;
    let state = alice.expect("presence_state").await;
    assert_eq!(state["chat_id"], chat);
    assert_eq!(state["enabled"], true);
    let state = members(&state);
    let bob_last_seen = state[&2].1.clone();
    assert_eq!(state[&1], ("online".to_owned(), Value::Null));
    assert_eq!(state[&2].0, "offline");
    assert!(state[&2].1.is_string(), "bob's last_seen: {:?}", state[&2]);
    assert_eq!(state[&3], ("offline".to_owned(), Value::Null), "never seen");

    let rest = a.get(3, &format!("/chats/{chat}/presence")).await;
    assert_eq!(rest.status(), 200);
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(members(&rest)[&1].0, "online");
    assert_eq!(members(&rest)[&2], ("offline".to_owned(), bob_last_seen));

    // Members only.
    assert_eq!(
        a.get(4, &format!("/chats/{chat}/presence")).await.status(),
        403
    );
    assert_eq!(a.get(1, "/chats/999999/presence").await.status(), 404);
    assert_eq!(a.get(1, "/chats/-5/presence").await.status(), 404);
    assert_eq!(a.get(1, "/chats/x/presence").await.status(), 422);
    let mut stranger = a.connect(4).await;
    stranger
        .send(json!({"action": "presence", "chat_id": chat}))
        .await;
    stranger.expect_error("forbidden").await;
    for bad in [json!(0), json!(-1), json!("7"), json!(1e30)] {
        stranger
            .send(json!({"action": "presence", "chat_id": bad}))
            .await;
        stranger.expect_error("invalid_field").await;
    }
}

#[tokio::test]
async fn a_group_larger_than_presence_max_members_is_told_nothing_and_asks_instead() {
    let a = spawn_app_with(&[FAST, &[("PRESENCE_MAX_MEMBERS", "3")]].concat()).await;
    let large = a.create_chat(1, true, &[2, 3, 4]).await;
    a.create_chat(1, true, &[5, 6]).await; // exactly the limit: told
    a.create_chat(1, false, &[7]).await;
    let mut alice = a.connect(1).await;
    let _in_large = a.connect(2).await;
    alice.expect_silence(Duration::from_millis(700)).await;
    let _in_small = a.connect(5).await;
    expect_presence(&mut alice, 5, "online").await;
    let _private = a.connect(7).await;
    expect_presence(&mut alice, 7, "online").await;
    alice.expect_silence(Duration::from_millis(300)).await;

    // The large group's members ask, and are answered as anywhere.
    alice
        .send(json!({"action": "presence", "chat_id": large}))
        .await;
    let state = alice.expect("presence_state").await;
    assert_eq!(members(&state)[&2].0, "online");
    assert_eq!(members(&state)[&3].0, "offline");
}

#[tokio::test]
async fn a_presence_max_members_past_any_database_integer_tells_every_chat() {
    // u64::MAX: past i64::MAX, the largest integer either database compares with.
    let a =
        spawn_app_with(&[FAST, &[("PRESENCE_MAX_MEMBERS", "18446744073709551615")]].concat()).await;
    let group = a.create_chat(1, true, &[2, 3, 4]).await;
    let mut alice = a.connect(1).await;
    let _bob = a.connect(2).await;
    expect_presence(&mut alice, 2, "online").await;
    // Messages flow beside it (alice's socket has had its one presence frame).
    alice
        .send_message(json!({"chat_id": group, "content": "here"}))
        .await;
    let stored = a.get(2, &format!("/chats/{group}/messages")).await;
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored[0]["content"], "here", "{stored}");
}

#[tokio::test]
async fn presence_off_tracks_and_tells_nothing() {
    let a = spawn_app_with(&[("PRESENCE", "off")]).await;
    let chat = a.create_chat(1, false, &[2]).await;
    let mut alice = a.connect(1).await;
    let bob = a.connect(2).await;
    drop(bob);
    alice.expect_silence(Duration::from_millis(700)).await;

    alice
        .send(json!({"action": "presence", "chat_id": chat}))
        .await;
    let state = alice.expect("presence_state").await;
    assert_eq!(state["enabled"], false);
    assert_eq!(state["members"], json!([]));
    let rest: Value = a
        .get(1, &format!("/chats/{chat}/presence"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rest,
        json!({"chat_id": chat, "enabled": false, "members": []})
    );

    let js = async_nats::jetstream::new(a.nats().await);
    assert!(
        js.get_key_value("CHAT_PRESENCE").await.is_err(),
        "no bucket"
    );
}

#[tokio::test]
async fn a_presence_bucket_that_cannot_be_made_stops_the_start_with_a_clear_error() {
    let mut app = spawn_app_with(&[("PRESENCE", "off")]).await;
    app.stop().await;
    // A stream in the bucket's place that JetStream cannot turn into it (storage is fixed).
    let js = async_nats::jetstream::new(app.nats().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KV_CHAT_PRESENCE".into(),
        subjects: vec!["$KV.CHAT_PRESENCE.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    let error = app
        .try_start_again_with(&[("PRESENCE", "on")])
        .await
        .expect_err("no start without the bucket");
    let error = format!("{error:#}");
    assert!(error.contains("PRESENCE"), "{error}");
    assert!(error.contains("PRESENCE=off"), "says the way out: {error}");
    app.start_again_with(&[("PRESENCE", "off")]).await;
}

#[tokio::test]
async fn django_sees_presence_changes_on_core_nats_as_the_schemas_say() {
    let validators: HashMap<&str, jsonschema::Validator> = schemas()
        .into_iter()
        .map(|(name, schema)| (name, jsonschema::validator_for(&schema).unwrap()))
        .collect();
    let a = spawn_app_with(FAST).await;
    let chat = a.create_chat(1, false, &[2]).await;
    let nats = a.nats().await;
    let mut django = nats.subscribe("chat.presence.*").await.unwrap();
    let mut live = nats.subscribe("chat.live.>").await.unwrap();
    nats.flush().await.unwrap();

    let bob = a.connect(2).await;
    let told = tokio::time::timeout(Duration::from_secs(10), django.next())
        .await
        .expect("a presence change in time")
        .unwrap();
    assert_eq!(told.subject.as_str(), "chat.presence.2");
    let payload: Value = serde_json::from_slice(&told.payload).unwrap();
    assert_eq!(payload["status"], "online");
    validators["presence.json"].validate(&payload).unwrap();
    let routed = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("the chat's copy in time")
        .unwrap();
    assert_eq!(
        routed.subject.as_str(),
        format!("chat.live.{chat}.presence")
    );
    validators["live.json"]
        .validate(&serde_json::from_slice(&routed.payload).unwrap())
        .unwrap();
    drop(bob);
    let told = tokio::time::timeout(Duration::from_secs(10), django.next())
        .await
        .expect("the offline change in time")
        .unwrap();
    let payload: Value = serde_json::from_slice(&told.payload).unwrap();
    assert_eq!(payload["status"], "offline");
    validators["presence.json"].validate(&payload).unwrap();
}

/// The key-value cost of presence at 10,000 online users on one instance: steady refreshes,
/// then churn. A measurement, not a check: run with
/// `cargo nextest run --test api presence::kv_cost --run-ignored only --no-capture`.
#[tokio::test]
#[ignore]
async fn kv_cost_at_10_000_online_users() {
    use jetchat::{
        bus::{Bus, Subjects},
        config::Config,
        health::Pipeline,
        presence,
    };
    use std::sync::Arc;
    let app = spawn_app_with(&[("PRESENCE", "off")]).await;
    let ttl = "3s";
    let config = Config::from_lookup(|k| match k {
        "JWT_SECRET" => Some("s".into()),
        "PRESENCE_TTL" => Some(ttl.into()),
        _ => None,
    })
    .unwrap();
    let bus = Bus::new(app.nats().await, Subjects::new("chat"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let presence = presence::start(
        &bus,
        app.database().await,
        Arc::from("measure"),
        &config,
        Arc::new(Pipeline::default()),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(app.nats().await);
    let stream = || async {
        let mut s = js.get_stream("KV_CHAT_PRESENCE").await.unwrap();
        let state = s.info().await.unwrap().state.clone();
        (state.last_sequence, state.bytes)
    };
    let mut online: Vec<_> = (1..=10_000).map(|u| presence.online(u).unwrap()).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (seq0, _) = stream().await;
    let window = Duration::from_secs(9);
    tokio::time::sleep(window).await;
    let (seq1, bytes) = stream().await;
    let steady = (seq1 - seq0) as f64 / window.as_secs_f64();
    println!(
        "steady, 10,000 users, PRESENCE_TTL={ttl}: {steady:.2} puts/s, value {bytes} bytes \
         (at the default 30s: {:.2} puts/s)",
        steady * 3.0 / 30.0
    );
    // Churn: 200 sockets a second open and close (distinct users, each past the grace).
    let (seq0, _) = stream().await;
    let started = tokio::time::Instant::now();
    let mut user = 20_000;
    while started.elapsed() < window {
        for _ in 0..20 {
            user += 1;
            online.push(presence.online(user).unwrap());
            online.swap_remove(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (seq1, _) = stream().await;
    println!(
        "churn, 200 opens + 200 closes a second: {:.2} puts/s",
        (seq1 - seq0) as f64 / window.as_secs_f64()
    );
    shutdown.cancel();
}
