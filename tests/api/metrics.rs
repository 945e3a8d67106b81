//! `GET /metrics`: it parses as Prometheus text and its counters follow a real conversation
//! between two WebSocket clients.

use prometheus_parse::{Scrape, Value};
use serde_json::json;

use crate::{
    helpers::{TestApp, publish_command, spawn_app, spawn_app_with, token},
    media::{ogg_opus, upload_file},
};

/// One scrape, parsed.
struct Metrics(Scrape);

impl Metrics {
    async fn scrape(app: &TestApp) -> Metrics {
        let response = app.http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "a complete exposition");
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        Metrics(Scrape::parse(lines).expect("Prometheus text format"))
    }

    /// The value of the series `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = self
            .0
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("{name}{labels:?} is exposed"));
        match &sample.value {
            // The parser reads OpenMetrics counters (`_total`) as untyped.
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("{name} is no summary"),
        }
    }
}

#[tokio::test]
async fn counters_follow_a_conversation() {
    let app = spawn_app().await;
    let before = Metrics::scrape(&app).await;
    assert_eq!(before.value("jetchat_open_sockets", &[]), 0.0);
    assert_eq!(before.value("jetchat_messages_accepted_total", &[]), 0.0);

    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    alice
        .send(json!({"action":"send_message","receiver_id":2,"content":"hi bob","client_msg_id":"m-1"}))
        .await;
    alice.expect("message_accepted").await;
    let ack = alice.expect("message_ack").await;
    let new = bob.expect("new_message").await;
    assert_eq!(new["message_id"], ack["message_id"]);
    bob.send(json!({"action":"acknowledge","message_id":ack["message_id"]}))
        .await;
    alice.expect("status_update").await;
    alice.send(json!({"action":"ping"})).await;
    alice.expect("pong").await;
    bob.send(json!({"action":"dance"})).await;
    bob.expect_error("unknown_action").await;

    let after = Metrics::scrape(&app).await;
    let v = |name: &str, labels: &[(&str, &str)]| after.value(name, labels);
    assert_eq!(v("jetchat_open_sockets", &[]), 2.0);
    assert_eq!(
        v("jetchat_frames_in_total", &[("kind", "send_message")]),
        1.0
    );
    assert_eq!(
        v("jetchat_frames_in_total", &[("kind", "acknowledge")]),
        1.0
    );
    assert_eq!(v("jetchat_frames_in_total", &[("kind", "ping")]), 1.0);
    assert_eq!(v("jetchat_frames_in_total", &[("kind", "invalid")]), 1.0);
    for kind in [
        "message_accepted",
        "message_ack",
        "new_message",
        "status_update",
        "pong",
        "error",
    ] {
        assert_eq!(
            v("jetchat_frames_out_total", &[("kind", kind)]),
            1.0,
            "{kind}"
        );
    }
    assert_eq!(v("jetchat_messages_accepted_total", &[]), 1.0);
    assert_eq!(v("jetchat_messages_persisted_total", &[]), 1.0);
    assert_eq!(v("jetchat_messages_delivered_total", &[]), 1.0);
    assert_eq!(
        v("jetchat_errors_total", &[("code", "unknown_action")]),
        1.0
    );
    assert_eq!(v("jetchat_errors_total", &[("code", "bad_json")]), 0.0);
    assert_eq!(v("jetchat_rate_limited_frames_total", &[]), 0.0);
    assert!(
        v("jetchat_persist_batch_size", &[]) >= 2.0,
        "the message and the receipt"
    );
    assert!(v("jetchat_persist_commit_seconds", &[]) >= 2.0);
    assert_eq!(
        v("jetchat_router_subscriptions", &[]),
        1.0,
        "the one private chat"
    );
    assert_eq!(v("jetchat_consumer_info_up", &[]), 1.0);
    assert!(v("jetchat_consumer_pending", &[]) >= 0.0);
    // Four partitions where NATS is not embedded, each with its series; this instance holds
    // the ones its messages went through.
    for partition in ["0", "1", "2", "3"] {
        assert!(v("jetchat_partition_pending", &[("partition", partition)]) >= 0.0);
        assert!(v("jetchat_partition_redelivered", &[("partition", partition)]) >= 0.0);
    }
    assert!(v("jetchat_partitions_held", &[]) >= 1.0);
    // SQLite's heap: its caches and statements on SQLite (nothing of it on PostgreSQL).
    if std::env::var_os("TEST_DATABASE_URL").is_none() {
        assert!(v("jetchat_sqlite_memory_bytes", &[]) > 0.0);
    } else {
        assert!(v("jetchat_sqlite_memory_bytes", &[]) >= 0.0);
    }

    drop(alice);
    drop(bob);
    crate::helpers::eventually("sockets counted closed", || async {
        match Metrics::scrape(&app)
            .await
            .value("jetchat_open_sockets", &[])
        {
            0.0 => Ok(()),
            open => Err(format!("{open} open")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_send_found_stored_again_is_not_counted_as_persisted_again() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let command = json!({"type": "send_message", "sender_id": 1, "chat_id": group,
                         "content": "once", "content_type": "text", "client_msg_id": "dj-1"});
    // Two copies in CHAT_IN (no Nats-Msg-Id): the second is found stored and announced again.
    let js = async_nats::jetstream::new(app.nats().await);
    for _ in 0..2 {
        js.publish(
            format!("chat.in.{group}.message"),
            command.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    crate::helpers::pipeline_drained(&app).await;
    bob.expect("new_message").await;
    let metrics = Metrics::scrape(&app).await;
    assert_eq!(
        metrics.value("jetchat_messages_persisted_total", &[]),
        1.0,
        "one row stored"
    );
}

#[tokio::test]
async fn rate_limited_frames_and_media_bytes_are_counted() {
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "1"), ("RATE_MESSAGES_BURST", "1")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"chat_id": chat_id, "content": "one"}))
        .await;
    alice
        .send(
            json!({"action":"send_message","chat_id":chat_id,"content":"two","client_msg_id":"x"}),
        )
        .await;
    alice.expect_error("rate_limited").await;

    let bytes = ogg_opus();
    let uploaded = upload_file(&app, 1, "voice.ogg", bytes.clone()).await;
    let served = app
        .http
        .get(app.url(&uploaded.path()))
        .bearer_auth(token(1))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 206);
    assert_eq!(served.bytes().await.unwrap().len(), 10);

    let metrics = Metrics::scrape(&app).await;
    assert_eq!(metrics.value("jetchat_rate_limited_frames_total", &[]), 1.0);
    assert_eq!(
        metrics.value("jetchat_errors_total", &[("code", "rate_limited")]),
        1.0
    );
    let media = |direction| metrics.value("jetchat_media_bytes_total", &[("direction", direction)]);
    assert_eq!(media("in"), bytes.len() as f64);
    assert_eq!(media("out"), 10.0);
}

#[tokio::test]
async fn metrics_turn_off() {
    let app = spawn_app_with(&[("METRICS", "off")]).await;

    let response = app.http.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("METRICS=off"));
}

#[tokio::test]
async fn the_dead_letters_waiting_show_in_metrics_and_in_healthz_without_failing_it() {
    let app = spawn_app().await;
    assert_eq!(
        Metrics::scrape(&app)
            .await
            .value("jetchat_dead_letters", &[]),
        0.0
    );
    // No command: the persister dead-letters it.
    crate::helpers::publish_command(&app, "chat.in.7.message", json!(["not", "a", "command"]))
        .await;
    crate::helpers::eventually("the dead letter is counted", || async {
        match Metrics::scrape(&app)
            .await
            .value("jetchat_dead_letters", &[])
        {
            1.0 => Ok(()),
            other => Err(format!("{other}")),
        }
    })
    .await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "reported, not a failure");
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["dead_letters"], 1, "{health}");
    assert_eq!(health["problems"], json!([]), "{health}");
}

/// Makes the database refuse groups named `poison` (the persister dead-letters their
/// creation as `invalid_data`).
async fn refuse_poisoned_chat_names(app: &TestApp) {
    use sea_orm::{ConnectionTrait, DatabaseBackend};
    let db = app.database().await;
    let statements: &[&str] = match db.get_database_backend() {
        DatabaseBackend::Postgres => &[
            "CREATE FUNCTION refuse_poison_name() RETURNS trigger AS $$ BEGIN \
             IF NEW.name = 'poison' THEN \
             RAISE EXCEPTION 'poison refused' USING ERRCODE = 'check_violation'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison_name BEFORE INSERT ON chats FOR EACH ROW \
             EXECUTE FUNCTION refuse_poison_name()",
        ],
        _ => &["CREATE TRIGGER refuse_poison_name BEFORE INSERT ON chats \
                WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END"],
    };
    for sql in statements {
        db.execute_unprepared(sql)
            .await
            .expect("the check installs");
    }
}

#[tokio::test]
async fn refusals_are_counted_by_code_and_by_where_they_were_decided() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    crate::poison::refuse_poison_in_the_database(&app).await;
    refuse_poisoned_chat_names(&app).await;
    let before = Metrics::scrape(&app).await;
    assert_eq!(
        before.value(
            "jetchat_refusals_total",
            &[("code", "invalid_command"), ("source", "persister")]
        ),
        0.0,
        "every series shows from the start"
    );

    // On NATS, as Django publishes: no command at all, a sender who is no member (a rule),
    // a message the database refuses (a dead letter).
    publish_command(&app, "chat.in.7.message", json!(["not", "a", "command"])).await;
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"sender_id": 3, "content": "let me in", "client_msg_id": "dj-1"}),
    )
    .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"sender_id": 1, "content": "poison", "client_msg_id": "dj-2"}),
    )
    .await;
    // A socket: a frame the gateway refuses, and a send the database refuses (the persister's).
    let mut alice = app.connect(1).await;
    alice.send(json!({"action": "dance"})).await;
    alice.expect_error("unknown_action").await;
    alice
        .send(
            json!({"action": "send_message", "chat_id": group, "content": "poison",
                     "client_msg_id": "ws-1"}),
        )
        .await;
    alice.expect("message_accepted").await;
    alice.expect_error("invalid_data").await;
    // REST: a request REST refuses, and a command the database refuses (the persister's).
    let history = app.get(3, &format!("/chats/{group}/messages")).await;
    assert_eq!(history.status(), 403);
    let created = app
        .post(
            1,
            "/chats/",
            json!({"name": "poison", "is_group": true, "member_ids": [2]}),
        )
        .await;
    assert_eq!(created.status(), 422);

    let after = crate::helpers::eventually("the persister's refusals are counted", || async {
        let metrics = Metrics::scrape(&app).await;
        match metrics.value(
            "jetchat_refusals_total",
            &[("code", "invalid_data"), ("source", "persister")],
        ) {
            3.0 => Ok(metrics),
            other => Err(format!("{other} invalid_data")),
        }
    })
    .await;
    let refusals = |code: &str, source: &str| {
        after.value(
            "jetchat_refusals_total",
            &[("code", code), ("source", source)],
        )
    };
    assert_eq!(refusals("invalid_command", "persister"), 1.0);
    assert_eq!(refusals("forbidden", "persister"), 1.0);
    assert_eq!(refusals("unknown_action", "socket"), 1.0);
    assert_eq!(refusals("forbidden", "rest"), 1.0);
    // Decided by the persister: counted there only, not again where the sender heard it.
    assert_eq!(refusals("invalid_data", "socket"), 0.0);
    assert_eq!(refusals("invalid_data", "rest"), 0.0);
    assert_eq!(refusals("invalid_field", "rest"), 0.0);
    // The error frames sent to sockets keep their own series.
    assert_eq!(
        after.value("jetchat_errors_total", &[("code", "invalid_data")]),
        1.0
    );
    assert_eq!(
        after.value("jetchat_errors_total", &[("code", "unknown_action")]),
        1.0
    );
}
