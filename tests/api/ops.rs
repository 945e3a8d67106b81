//! The operator commands: replay, streams, and rebuilding the database from `CHAT_IN`.

use sea_orm::{Database, DatabaseConnection, EntityTrait, QueryOrder};
use serde_json::{Value, json};

use jetchat::{
    ops::{
        replay::{self, ReplayArgs, StreamName},
        reproject, streams, trim_stream,
    },
    store::{chat, chat_member, message, message_reaction, message_revision, upload},
};

use nix::sys::signal::Signal;

use crate::helpers::{
    Snapshot, TestApp, connect_at, embedded_command, eventually, free_address, gone,
    publish_command, spawn_app, start_embedded,
};

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
        // One consumer per partition: every one has delivered and seen acked all it has.
        let persisters: Vec<_> = reports[0]
            .consumers
            .iter()
            .filter(|c| c.name.starts_with("persister"))
            .collect();
        if !persisters.is_empty()
            && persisters
                .iter()
                .all(|c| c.pending == 0 && c.ack_pending == 0)
        {
            Ok(())
        } else {
            Err(format!("{persisters:?}"))
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

    // Replay is read-only: the persister's consumer is untouched and nothing is redelivered;
    // the ordered consumers it read with are deleted when it ends.
    persisted(&app).await;
    let reports = streams::report(&app.ops_bus().await).await.unwrap();
    assert_eq!(reports[0].name, "CHAT_IN");
    let consumers = &reports[0].consumers;
    let names: Vec<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["persister", "persister-1", "persister-2", "persister-3"],
        "only the persisters, one per partition"
    );
    assert!(
        consumers.iter().all(|c| c.durable && c.redelivered == 0),
        "{consumers:?}"
    );
    assert!(
        reports[1].consumers.is_empty(),
        "none left on CHAT_EVENTS: {:?}",
        reports[1].consumers
    );
    assert!(streams::render(&reports).contains("persister"));
}

async fn dump(
    db: &DatabaseConnection,
) -> (
    Vec<chat::Model>,
    Vec<chat_member::Model>,
    Vec<message::Model>,
    Vec<upload::Model>,
    Vec<message_revision::Model>,
    Vec<message_reaction::Model>,
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
        message_revision::Entity::find()
            .order_by_asc(message_revision::Column::Id)
            .all(db)
            .await
            .unwrap(),
        message_reaction::Entity::find()
            .order_by_asc(message_reaction::Column::Id)
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
    let mut sent = Vec::new();
    for i in 0..5 {
        last = bob
            .send_message(json!({"chat_id": group, "content": format!("m{i}")}))
            .await;
        sent.push(last.clone());
    }
    let first_in_group = &sent[0];
    // A voice note: the upload is in the log too, so the rebuilt database accepts its message.
    let voice = crate::media::upload_file(&app, 2, "voice.ogg", crate::media::ogg_opus()).await;
    bob.send_message(json!({"chat_id": group, "content": "", "file_id": voice.file_id()}))
        .await;
    // Replies whose quotes the edit and the deletion below change, and a forward.
    for reply_to in [&first_in_group["message_id"], &last["message_id"]] {
        bob.send_message(
            json!({"chat_id": group, "content": "re", "reply_to_message_id": reply_to}),
        )
        .await;
    }
    app.connect(1)
        .await
        .send_message(
            json!({"chat_id": group, "content": "", "forwarded_from": first["message_id"]}),
        )
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
            "edit_message",
            json!({"command_id": "e", "message_id": first_in_group["message_id"],
                   "editor_id": 2, "content": "edited"}),
        ),
        (
            "edit_message",
            json!({"command_id": "e2", "message_id": last["message_id"],
                   "editor_id": 2, "content": "edited, then deleted"}),
        ),
        (
            "react",
            json!({"command_id": "r1", "message_id": first_in_group["message_id"],
                   "user_id": 2, "emoji": "👍🏽"}),
        ),
        (
            "react",
            json!({"command_id": "r2", "message_id": first_in_group["message_id"],
                   "user_id": 4, "emoji": "👨‍👩‍👧‍👦"}),
        ),
        (
            "react",
            json!({"command_id": "r3", "message_id": first_in_group["message_id"],
                   "user_id": 4, "emoji": "🎉"}),
        ),
        (
            "unreact",
            json!({"command_id": "r4", "message_id": first_in_group["message_id"],
                   "user_id": 4, "emoji": "🎉"}),
        ),
        (
            "react",
            json!({"command_id": "r5", "message_id": last["message_id"],
                   "user_id": 2, "emoji": "🔥"}),
        ),
        (
            "delete_message",
            json!({"command_id": "d", "message_id": last["message_id"]}),
        ),
        (
            "delete_message",
            json!({"command_id": "d2", "message_id": sent[1]["message_id"], "deleter_id": 2}),
        ),
        // The group's owner deletes bob's message (applied); a plain member may not.
        (
            "delete_message",
            json!({"command_id": "d3", "message_id": sent[2]["message_id"], "deleter_id": 1}),
        ),
        (
            "delete_message",
            json!({"command_id": "d4", "message_id": sent[3]["message_id"], "deleter_id": 4}),
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
    let report = reproject::run(&app.ops_bus().await, &target, None, 3, &Default::default())
        .await
        .unwrap();
    let live = dump(&Database::connect(&app.database_url).await.unwrap()).await;
    let rebuilt = dump(&Database::connect(&target).await.unwrap()).await;
    assert_eq!(report.chats, 2);
    assert_eq!(report.members as usize, live.1.len());
    assert_eq!(report.messages, 10);
    assert_eq!(report.undecodable, 0);
    // The two commands refused live are refused again, and the report names them: the
    // deletion by a member other than the author, then the rename to nothing.
    assert_eq!(report.refused, 2);
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(
        report.refused_by_code,
        [("forbidden".to_owned(), 1), ("invalid_name".to_owned(), 1)].into()
    );
    let refused: Vec<(&str, &str)> = report
        .first_refused
        .iter()
        .map(|r| (r.command.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (
                "delete_message",
                "deleting another member's message needs the admin role"
            ),
            ("rename_chat", "a name has 1 to 255 characters"),
        ]
    );
    let last = streams::report(&app.ops_bus().await).await.unwrap()[0].last_seq;
    assert_eq!(
        report
            .first_refused
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        [last - 1, last],
        "the last two commands published"
    );
    assert_eq!(rebuilt.0, live.0, "chats");
    assert_eq!(rebuilt.1, live.1, "members and their receipts");
    assert_eq!(rebuilt.2, live.2, "messages, ids and stream sequences");
    assert_eq!(live.3.len(), 1, "the upload");
    assert_eq!(rebuilt.3, live.3, "uploads");
    assert_eq!(live.4.len(), 2, "the revisions of two edits");
    assert_eq!(rebuilt.4, live.4, "revisions");
    assert_eq!(
        live.5.len(),
        2,
        "two reactions kept: one taken back, one deleted with its message"
    );
    assert_eq!(rebuilt.5, live.5, "reactions");
    let deleted: Vec<i64> = live
        .2
        .iter()
        .filter(|m| m.deleted_at.is_some())
        .map(|m| m.id)
        .collect();
    assert_eq!(
        deleted.len(),
        3,
        "moderation, the author's own and the owner's; not a plain member's of another's"
    );
    assert!(
        rebuilt
            .2
            .iter()
            .any(|m| m.content == "edited" && m.edited_at.is_some()),
        "the edited message"
    );
    let quotes: Vec<(Option<i64>, Option<&str>)> = rebuilt
        .2
        .iter()
        .filter(|m| m.reply_to_message_id.is_some())
        .map(|m| (m.reply_quote_sender_id, m.reply_quote_text.as_deref()))
        .collect();
    assert_eq!(
        quotes,
        [(Some(2), Some("edited")), (None, None)],
        "renewed, then cleared"
    );
    assert!(
        rebuilt.2.iter().any(
            |m| m.forwarded_from_message_id == first["message_id"].as_i64() && m.content == "hi"
        ),
        "the forward, its text copied"
    );
    assert!(
        rebuilt
            .2
            .iter()
            .any(|m| m.file_id.as_deref() == Some(voice.file_id())),
        "the message with the voice note"
    );

    // Only into an empty database.
    assert!(
        reproject::run(&app.ops_bus().await, &target, None, 3, &Default::default())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn streams_shows_every_stream_of_the_prefix_with_times_and_limits() {
    let app = spawn_app().await;
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"receiver_id": 2, "content": "hi"}))
        .await;
    // The dead-letter stream jetchat creates holds one letter; a stream of someone else.
    let js = async_nats::jetstream::new(app.nats().await);
    for (name, subject) in [("BILLING_IN", "billing.in.>")] {
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.into(),
            subjects: vec![subject.into()],
            max_age: std::time::Duration::from_secs(3600),
            max_messages: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    js.publish("chat.dlq.x", "dead".into())
        .await
        .unwrap()
        .await
        .unwrap();
    persisted(&app).await;

    let reports = streams::report(&app.ops_bus().await).await.unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["CHAT_IN", "CHAT_EVENTS", "CHAT_DLQ"]);
    let (commands, events, dead) = (&reports[0], &reports[1], &reports[2]);
    assert!(commands.messages >= 1 && commands.first_seq == 1);
    let (first, last) = (commands.first_time.unwrap(), commands.last_time.unwrap());
    assert!(first <= last && last <= chrono::Utc::now());
    // CHAT_IN is kept for ever by default; CHAT_EVENTS for EVENTS_MAX_AGE.
    assert_eq!(commands.limits.max_age_secs, None);
    assert_eq!(commands.limits.max_bytes, None);
    assert_eq!(commands.limits.max_messages, None);
    assert_eq!(commands.limits.storage, "file");
    assert_eq!(events.limits.max_age_secs, Some(7 * 24 * 3600));
    assert_eq!(dead.messages, 1);
    assert_eq!(
        dead.limits.max_age_secs, None,
        "dead letters wait for an operator"
    );
    assert_eq!(dead.limits.max_messages, None);
    assert!(dead.consumers.is_empty());

    let table = streams::render(&reports);
    assert!(table.contains("CHAT_DLQ"), "{table}");
    assert!(
        table.contains("limits: age unlimited, bytes unlimited, msgs unlimited"),
        "{table}"
    );
    assert!(!table.contains("BILLING_IN"), "{table}");
    let json = serde_json::to_value(&reports).unwrap();
    assert!(json[0]["first_time"].is_string(), "{json}");
    assert!(json[0]["limits"]["max_age_secs"].is_null(), "{json}");
}

#[tokio::test]
async fn after_a_snapshot_and_a_trim_reproject_rebuilds_from_the_snapshot_and_the_rest() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    for i in 0..4 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("before {i}")}))
            .await;
    }
    persisted(&app).await;
    // The snapshot: a database holding everything the persister acked, up to `snapshot_seq`
    // (made here with reproject; pg_dump or SQLite's backup in production).
    let bus = app.ops_bus().await;
    let snapshot_seq = streams::report(&bus).await.unwrap()[0].consumers[0].ack_floor;
    let snapshot = crate::helpers::fresh_database_url(app.dir()).await;
    reproject::run(&bus, &snapshot, None, 2, &Default::default())
        .await
        .unwrap();

    let mut bob = app.connect(2).await;
    for i in 0..3 {
        bob.send_message(json!({"chat_id": group, "content": format!("after {i}")}))
            .await;
    }
    publish_command(
        &app,
        &format!("chat.in.{group}.rename"),
        json!({"command_id": "n", "name": "later"}),
    )
    .await;
    persisted(&app).await;

    // Trim CHAT_IN, keeping the snapshot's last two commands: replaying them again is harmless.
    let keep_from = snapshot_seq - 1;
    let js = async_nats::jetstream::new(app.nats().await);
    js.get_stream("CHAT_IN")
        .await
        .unwrap()
        .purge()
        .sequence(keep_from)
        .await
        .unwrap();
    let reports = streams::report(&bus).await.unwrap();
    assert_eq!(reports[0].first_seq, keep_from);

    // A rebuild from the trimmed stream alone would silently lose history: refused.
    let empty = crate::helpers::fresh_database_url(app.dir()).await;
    let error = reproject::run(&bus, &empty, None, 2, &Default::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("purged"), "{error}");
    let error = reproject::run(&bus, &snapshot, Some(keep_from - 1), 2, &Default::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("purged"), "{error}");

    reproject::run(&bus, &snapshot, Some(keep_from), 2, &Default::default())
        .await
        .unwrap();
    let live = dump(&Database::connect(&app.database_url).await.unwrap()).await;
    let rebuilt = dump(&Database::connect(&snapshot).await.unwrap()).await;
    assert_eq!(rebuilt.2.len(), 7);
    assert_eq!(rebuilt.0, live.0, "chats (renamed after the snapshot)");
    assert_eq!(rebuilt.1, live.1, "members and their receipts");
    assert_eq!(rebuilt.2, live.2, "messages, ids and stream sequences");
}

/// `jetchat <args>` as an operator runs it on the embedded defaults of `dir` (no `NATS_URL`).
fn embedded_ops(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(args)
        .env_remove("NATS_URL")
        .env("DATA_DIR", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("jetchat.db").display()),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("jetchat runs")
}

#[tokio::test]
async fn with_jetchat_stopped_the_operator_commands_start_its_nats_server_for_their_run() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let mut jetchat = start_embedded(embedded_command(dir.path(), address), address, dir).await;
    let dir = jetchat.dir.clone();
    let nats_dir = dir.path().join("nats");
    connect_at(address, 1)
        .await
        .send_message(json!({"receiver_id": 2, "content": "before the outage"}))
        .await;
    let server = jetchat.nats_pid();
    jetchat.signal(Signal::SIGTERM);
    assert!(jetchat.exited().await.success());
    gone("jetchat's nats-server", server).await;
    assert!(
        !jetchat::bus::embedded::url_file(&nats_dir).exists(),
        "a clean stop removes the URL nothing answers at"
    );
    // A crash leaves its URL behind.
    std::fs::write(
        jetchat::bus::embedded::url_file(&nats_dir),
        format!("nats://{}", free_address()),
    )
    .unwrap();

    let output = embedded_ops(dir.path(), &["replay", "--stream", "in", "--json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    assert!(stderr.contains("jetchat is not running"), "{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["payload"]["content"], "before the outage");
    // Its server ended with it, and the next command starts one again.
    let pid_file = jetchat::bus::embedded::pid_file(&nats_dir);
    assert!(!pid_file.exists(), "the command's nats-server stopped");
    let output = embedded_ops(dir.path(), &["streams", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[0]["name"], "CHAT_IN");
    assert_eq!(reports[0]["messages"], 1);

    // Elsewhere than jetchat's directory: no store to start a server on, and it says so.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = embedded_ops(elsewhere.path(), &["streams"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("set DATA_DIR"), "{stderr}");
    assert!(
        !elsewhere.path().join("nats").exists(),
        "no store made up: {stderr}"
    );
}

#[tokio::test]
async fn reproject_into_a_sqlite_file_that_does_not_exist_creates_it() {
    let app = spawn_app().await;
    app.connect(1)
        .await
        .send_message(json!({"receiver_id": 2, "content": "kept"}))
        .await;
    persisted(&app).await;
    let file = app.dir().join("rebuilt").join("new.db");

    // The URL an operator writes, without `?mode=rwc`.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args([
            "reproject",
            "--into",
            &format!("sqlite://{}", file.display()),
        ])
        .env("NATS_URL", &app.nats_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["messages"], 1, "{report}");
    let rebuilt = Database::connect(format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let messages = message::Entity::find().all(&rebuilt).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "kept");
}

#[tokio::test]
async fn replay_into_a_pipe_closed_early_or_matching_nothing_ends_well() {
    let app = spawn_app().await;
    // Far more than a pipe buffers, so the writes after `head` left fail.
    let js = async_nats::jetstream::new(app.nats().await);
    let padding = "x".repeat(400);
    for n in 0..500 {
        js.publish(
            format!("chat.events.7.note_{n}"),
            json!({ "n": n, "padding": padding }).to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let replay = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"));
        command
            .args(["replay", "--stream", "events"])
            .args(extra)
            .env("NATS_URL", &app.nats_url)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };

    // `jetchat replay … | head -n 1`: the reader goes after the first line.
    let mut child = replay(&[]).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("chat.events.7.note_0"), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");

    // A filter that matches nothing: nothing on stdout, and stderr says so.
    let output = replay(&["--subject", "chat.events.424242.>"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "no messages\n");

    // Neither left a consumer on the stream.
    let reports = streams::report(&app.ops_bus().await).await.unwrap();
    assert!(
        reports[1].consumers.is_empty(),
        "{:?}",
        reports[1].consumers
    );
}

#[tokio::test]
async fn trim_stream_removes_only_what_the_database_applied_and_a_snapshot_of_it_holds() {
    let mut app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    for i in 0..3 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("before {i}")}))
            .await;
    }
    persisted(&app).await;
    let bus = app.ops_bus().await;
    let live = Database::connect(&app.database_url).await.unwrap();
    // Step 1: N, read before the snapshot; step 2: the snapshot.
    let n = trim_stream::applied_through(&bus).await.unwrap().unwrap();
    assert_eq!(n, streams::report(&bus).await.unwrap()[0].last_seq);
    let snapshot = Snapshot::take(&app.database_url, app.dir()).await;
    let snapshot_db = Database::connect(snapshot.restore(app.dir()).await)
        .await
        .unwrap();
    for i in 0..2 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("after {i}")}))
            .await;
    }
    persisted(&app).await;
    let applied = trim_stream::applied_through(&bus).await.unwrap().unwrap();
    let first_seq = || async { streams::report(&bus).await.unwrap()[0].first_seq };
    let refused = |error: anyhow::Error, why: &str| {
        let error = format!("{error:#}");
        assert!(error.contains(why), "{why:?} in {error}");
        assert!(error.contains("nothing was removed"), "{error}");
    };

    // Past what the snapshot holds: the messages sent after it are not in it.
    let error = trim_stream::run(&bus, &live, &snapshot_db, applied)
        .await
        .unwrap_err();
    refused(error, &format!("does not hold message {applied}"));
    // Not a copy of this database: a rebuild numbers its journal under another epoch.
    let rebuilt_url = crate::helpers::fresh_database_url(app.dir()).await;
    reproject::run(&bus, &rebuilt_url, None, 100, &Default::default())
        .await
        .unwrap();
    let rebuilt = Database::connect(&rebuilt_url).await.unwrap();
    let error = trim_stream::run(&bus, &live, &rebuilt, n)
        .await
        .unwrap_err();
    refused(error, "not a copy of DATABASE_URL");
    // Persister consumers of partitions: one whose commands wait, unacked, holds the trim
    // back to its ack floor; one whose partition had no traffic (nothing pending, nothing
    // acked) holds nothing back. (The first takes the whole stream, whatever subjects the
    // commands are stored under: partitions store them as `chat.part.<p>.…`.)
    let stream = bus.jetstream.get_stream("CHAT_IN").await.unwrap();
    for (durable, filter) in [("persister-12", ""), ("persister-13", "chat.in.999.>")] {
        stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(durable.into()),
                filter_subject: filter.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let error = trim_stream::run(&bus, &live, &snapshot_db, n)
        .await
        .unwrap_err();
    refused(error, "acked CHAT_IN up to 0");
    stream.delete_consumer("persister-12").await.unwrap();
    assert_eq!(
        trim_stream::applied_through(&bus).await.unwrap(),
        Some(applied),
        "the idle partition holds nothing back"
    );
    stream.delete_consumer("persister-13").await.unwrap();
    // Past what the database applied: a command published while jetchat is stopped.
    app.stop().await;
    publish_command(
        &app,
        &format!("chat.in.{group}.rename"),
        json!({"command_id": "r", "name": "later"}),
    )
    .await;
    let last = streams::report(&bus).await.unwrap()[0].last_seq;
    let error = trim_stream::run(&bus, &live, &snapshot_db, last)
        .await
        .unwrap_err();
    refused(error, &format!("acked CHAT_IN up to {applied}"));
    assert_eq!(first_seq().await, 1, "nothing removed");

    // Up to N, as the operator types it, with jetchat stopped.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["trim-stream", "--through", &n.to_string(), "--snapshot"])
        .arg(snapshot.restore(app.dir()).await)
        .env("NATS_URL", &app.nats_url)
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stderr.contains(&format!(
            "removed {n} commands, CHAT_IN sequences 1..={n}; it now starts at {} (rebuild: \
             the snapshot, then reproject --from-seq {})",
            n + 1,
            n + 1
        )),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["removed"], n, "{report}");
    assert_eq!(report["first_seq"], n + 1, "{report}");
    assert_eq!(first_seq().await, n + 1);
    // Again: nothing left to remove up to N.
    let again = trim_stream::run(&bus, &live, &snapshot_db, n)
        .await
        .unwrap();
    assert_eq!(again.removed, 0);

    // The snapshot plus the rest is the live database.
    app.start_again().await;
    persisted(&app).await;
    let rebuilt_url = snapshot.restore(app.dir()).await;
    reproject::run(&bus, &rebuilt_url, Some(n + 1), 100, &Default::default())
        .await
        .unwrap();
    let live = dump(&live).await;
    let rebuilt = dump(&Database::connect(&rebuilt_url).await.unwrap()).await;
    assert_eq!(rebuilt.0, live.0, "chats (renamed after the trim)");
    assert_eq!(rebuilt.1, live.1, "members");
    assert_eq!(rebuilt.2, live.2, "messages");
}
