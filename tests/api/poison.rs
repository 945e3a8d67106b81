//! No command stops the log: a command the database refuses is refused with a code, kept in
//! the dead-letter stream and replayable; the known poisons (a private chat listed with its
//! creator, NUL characters) are refused or normalised where they enter; a stream recreated
//! under a kept database is caught at start-up and at run time; a persister that cannot write
//! turns `/healthz` to 503.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, eventually, history_field, persister_consumer, pipeline_drained, publish_command,
    spawn_app, spawn_app_with, stream_messages,
};

/// Makes the database itself refuse messages whose content is `poison`, as a check
/// constraint would: a refusal no retry can get past.
pub(crate) async fn refuse_poison_in_the_database(app: &TestApp) {
    let db = app.database().await;
    let statements: &[&str] = match db.get_database_backend() {
        DatabaseBackend::Postgres => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.content = 'poison' THEN \
             RAISE EXCEPTION 'poison refused' USING ERRCODE = 'check_violation'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages FOR EACH ROW \
             EXECUTE FUNCTION refuse_poison()",
        ],
        _ => &["CREATE TRIGGER refuse_poison BEFORE INSERT ON messages \
                WHEN NEW.content = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END"],
    };
    for sql in statements {
        db.execute_unprepared(sql)
            .await
            .expect("the check installs");
    }
}

pub(crate) async fn accept_poison_again(app: &TestApp) {
    let db = app.database().await;
    db.execute_unprepared("DROP TRIGGER refuse_poison ON messages")
        .await
        .or(db.execute_unprepared("DROP TRIGGER refuse_poison").await)
        .expect("the check is removed");
}

#[tokio::test]
async fn creating_an_existing_private_chat_with_both_members_listed_answers_it() {
    let app = spawn_app().await;
    let first = app
        .post(1, "/chats/", json!({"is_group": false, "member_ids": [2]}))
        .await;
    assert_eq!(first.status(), 201);
    let chat: Value = first.json().await.unwrap();

    // The body that used to stop the persister for everyone: the creator listed too.
    for members in [json!([1, 2]), json!([2, 1, 2]), json!([2])] {
        let again = app
            .post(
                1,
                "/chats/",
                json!({"is_group": false, "member_ids": members}),
            )
            .await;
        assert_eq!(again.status(), 200, "members {members}");
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["chat_id"], chat["chat_id"], "members {members}");
        assert_eq!(body["member_ids"], json!([1, 2]));
    }
    // The same from Django, straight on NATS.
    publish_command(
        &app,
        "chat.in.chats.create",
        json!({"type":"create_chat","command_id":"django-1","creator_id":2,
               "is_group":false,"member_ids":[2,1]}),
    )
    .await;
    let alone = app
        .post(1, "/chats/", json!({"is_group": false, "member_ids": [1]}))
        .await;
    assert_eq!(alone.status(), 422, "a private chat with nobody else");

    let chat_id = chat["chat_id"].as_i64().unwrap();
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    alice
        .send_message(json!({"chat_id": chat_id, "content": "still flowing"}))
        .await;
    assert_eq!(bob.expect("new_message").await["content"], "still flowing");
    pipeline_drained(&app).await;
}

#[tokio::test]
async fn nul_is_refused_at_every_entry_and_everyone_keeps_chatting() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;

    // A socket hears at once; nothing is accepted.
    alice
        .send(json!({"action":"send_message","chat_id":chat_id,"content":"a\u{0}b","client_msg_id":"nul-1"}))
        .await;
    let error = alice.expect_error("invalid_field").await;
    assert_eq!(error["client_msg_id"], "nul-1");
    assert!(error["detail"].as_str().unwrap().contains("NUL"), "{error}");

    // REST refuses it in a name.
    let named = app
        .post(
            1,
            "/chats/",
            json!({"name":"te\u{0}am","is_group":true,"member_ids":[2]}),
        )
        .await;
    assert_eq!(named.status(), 422);

    // Django's commands are refused by the persister, with the same codes.
    let client = app.nats().await;
    let mut rejected = client
        .subscribe("chat.events.*.command_rejected")
        .await
        .unwrap();
    client.flush().await.unwrap();
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.message"),
        json!({"sender_id":1,"content":"x\u{0}y","client_msg_id":"nul-2"}),
    )
    .await;
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.rename"),
        json!({"command_id":"nul-3","name":"n\u{0}"}),
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut rejected),
        )
        .await
        .expect("a rejection in time")
        .unwrap();
        let event: Value = serde_json::from_slice(&event.payload).unwrap();
        codes.push((
            event["command_id"].as_str().unwrap().to_owned(),
            event["code"].as_str().unwrap().to_owned(),
        ));
    }
    codes.sort();
    assert_eq!(
        codes,
        [
            ("nul-2".to_owned(), "invalid_field".to_owned()),
            ("nul-3".to_owned(), "invalid_name".to_owned())
        ]
    );

    alice
        .send_message(json!({"chat_id": chat_id, "content": "after the NULs"}))
        .await;
    assert_eq!(bob.expect("new_message").await["content"], "after the NULs");
    assert_eq!(
        history_field(&app, 1, chat_id, 1, "content").await,
        ["after the NULs"]
    );
    pipeline_drained(&app).await;
}

#[tokio::test]
async fn a_command_the_database_refuses_is_dead_lettered_and_the_rest_is_stored_in_order() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    refuse_poison_in_the_database(&app).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;

    // Sent back to back, so the poison shares a batch with valid messages.
    for (id, content) in [
        ("m1", "one"),
        ("m2", "poison"),
        ("m3", "two"),
        ("m4", "three"),
    ] {
        alice
            .send(json!({"action":"send_message","chat_id":chat_id,"content":content,"client_msg_id":id}))
            .await;
    }
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    while acked.len() + refused.len() < 4 {
        let frame = alice.next().await;
        match frame["action"].as_str().unwrap() {
            "message_ack" => acked.push(frame["client_msg_id"].as_str().unwrap().to_owned()),
            "error" => refused.push(frame),
            _ => {}
        }
    }
    assert_eq!(acked, ["m1", "m3", "m4"], "the valid messages, in order");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["client_msg_id"], "m2");
    assert_eq!(refused[0]["code"], "invalid_data");
    let detail = refused[0]["detail"].as_str().unwrap();
    assert!(
        !detail.contains("poison refused") && !detail.contains("error returned from database"),
        "the client gets a plain sentence, not the database's text: {detail}"
    );
    for expected in ["one", "two", "three"] {
        assert_eq!(bob.expect("new_message").await["content"], expected);
    }
    assert_eq!(
        history_field(&app, 2, chat_id, 3, "content").await,
        ["one", "two", "three"]
    );

    // Kept for operators with where it came from and why.
    let letters = jetchat::ops::dead_letters::list(&app.ops_bus().await)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].subject, format!("chat.in.{chat_id}.message"));
    assert_eq!(letters[0].code, "invalid_data");
    assert!(
        letters[0].error.contains("poison refused"),
        "{:?}",
        letters[0]
    );
    assert!(letters[0].payload.contains("\"m2\""));
    assert!(letters[0].original_seq > 0);
    pipeline_drained(&app).await;

    // A rebuild (into a database that would take the poison) skips what the persister
    // dead-lettered: it has the same messages as the live database.
    let (live, rebuilt, report) = live_and_rebuilt_messages(&app).await;
    assert_eq!(live.len(), 3);
    assert_eq!(
        rebuilt, live,
        "the dead letter is not in the rebuild either"
    );
    assert_eq!(report.dead_letters_skipped, 1);

    // Fixed: the operator replays it, and it is stored after everything before the replay.
    accept_poison_again(&app).await;
    let replayed = jetchat::ops::dead_letters::replay(&app.ops_bus().await, None, false)
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(bob.expect("new_message").await["content"], "poison");
    assert_eq!(
        history_field(&app, 2, chat_id, 4, "content").await,
        ["one", "two", "three", "poison"]
    );
    assert!(
        stream_messages(&app, "CHAT_DLQ").await.is_empty(),
        "no dead letter left"
    );

    // A rebuild applies the replay where the live persister did: the same id (the replay's
    // CHAT_IN sequence), not the dead-lettered command's.
    pipeline_drained(&app).await;
    let (live, rebuilt, report) = live_and_rebuilt_messages(&app).await;
    assert_eq!(live.len(), 4);
    let poison = live.iter().find(|m| m.content == "poison").unwrap();
    assert!(poison.id > letters[0].original_seq as i64, "{poison:?}");
    assert_eq!(rebuilt, live, "messages, ids and stream sequences");
    assert_eq!(report.dead_letters_skipped, 1);
}

#[tokio::test]
async fn a_dead_letter_removed_is_not_applied_by_a_rebuild() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    refuse_poison_in_the_database(&app).await;
    for (id, content) in [("dj-1", "one"), ("dj-2", "poison"), ("dj-3", "two")] {
        publish_command(
            &app,
            &format!("chat.in.{chat_id}.message"),
            json!({"sender_id": 1, "content": content, "client_msg_id": id}),
        )
        .await;
    }
    let bus = app.ops_bus().await;
    let letter = eventually("the poison is dead-lettered", || async {
        let mut letters = jetchat::ops::dead_letters::list(&bus)
            .await
            .map_err(|e| e.to_string())?;
        match letters.len() {
            1 => Ok(letters.remove(0)),
            _ => Err(format!("{letters:?}")),
        }
    })
    .await;
    pipeline_drained(&app).await;

    // The database would take it now, and so would a rebuild's; the operator decides that
    // it must not run, and removes it.
    accept_poison_again(&app).await;
    let removed = jetchat_ops(&app, &["dlq", "--remove", &letter.seq.to_string()]);
    assert!(removed.status.success(), "{removed:?}");
    assert!(
        jetchat::ops::dead_letters::list(&bus)
            .await
            .unwrap()
            .is_empty()
    );
    let health: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["dead_letters"], 0,
        "the removal's record is no letter: {health}"
    );

    // The rebuild does not apply it either: the same messages as the live database.
    let (live, rebuilt, report) = live_and_rebuilt_messages(&app).await;
    let contents: Vec<&str> = live.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["one", "two"]);
    assert_eq!(rebuilt, live, "messages, ids and stream sequences");
    assert_eq!(report.dead_letters_skipped, 1, "{report:?}");
    assert_eq!(report.refused, 0, "{report:?}");
}

/// The live messages, those `reproject` rebuilds into a fresh database, and its report.
async fn live_and_rebuilt_messages(
    app: &TestApp,
) -> (
    Vec<jetchat::store::message::Model>,
    Vec<jetchat::store::message::Model>,
    jetchat::ops::reproject::Report,
) {
    use jetchat::store::message;
    use sea_orm::{EntityTrait, QueryOrder};
    let target = crate::helpers::fresh_database_url(app.dir()).await;
    let report = jetchat::ops::reproject::run(
        &app.ops_bus().await,
        &target,
        None,
        500,
        &Default::default(),
    )
    .await
    .unwrap();
    let messages = |db: sea_orm::DatabaseConnection| async move {
        message::Entity::find()
            .order_by_asc(message::Column::Id)
            .all(&db)
            .await
            .unwrap()
    };
    let live = messages(app.database().await).await;
    let rebuilt = messages(sea_orm::Database::connect(&target).await.unwrap()).await;
    (live, rebuilt, report)
}

/// `(client_msg_id, "stored" or the error code)` for a send of `id` as content.
async fn send_and_see(alice: &mut crate::helpers::WsClient, chat_id: i64, id: &str) -> String {
    alice
        .send(json!({"action":"send_message","chat_id":chat_id,"content":id,"client_msg_id":id}))
        .await;
    loop {
        let frame = alice.next().await;
        if frame["client_msg_id"] != id {
            continue;
        }
        match frame["action"].as_str().unwrap() {
            "message_accepted" => continue,
            "message_ack" => return "stored".into(),
            _ => return frame["code"].as_str().unwrap().to_owned(),
        }
    }
}

#[tokio::test]
async fn a_chat_in_recreated_under_a_kept_database_is_caught_and_can_be_continued() {
    let mut app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    for n in 0..3 {
        alice
            .send_message(json!({"chat_id": chat_id, "content": format!("before {n}")}))
            .await;
    }
    pipeline_drained(&app).await;
    let db = app.database().await;
    let newest = jetchat::store::queries::newest_stream_seq(&db)
        .await
        .unwrap();

    // An operator's mistake: CHAT_IN deleted and created again while jetchat runs.
    let bus = app.ops_bus().await;
    let topology = jetchat::bus::streams::Topology {
        replicas: 1,
        events_max_age: Duration::from_secs(3600),
        ack_wait: Duration::from_secs(30),
        // As the instance made it: four partitions where NATS is not embedded.
        partitions: 4,
        handover: Duration::from_secs(10),
    };
    bus.jetstream.delete_stream("CHAT_IN").await.unwrap();
    jetchat::bus::streams::ensure(&bus, topology).await.unwrap();
    // The persister's pull on the deleted consumer ends; once it pulls again, it waits here.
    eventually("the persister pulls from the new consumer", || async {
        match persister_consumer(&bus.jetstream).await {
            Ok(info) if info.num_waiting > 0 => Ok(()),
            Ok(info) => Err(format!("{} waiting", info.num_waiting)),
            Err(e) => Err(e),
        }
    })
    .await;

    // New messages get ids that are taken: refused with a code, never silently dropped.
    let mut outcomes = Vec::new();
    for n in 0..=newest {
        let id = format!("after-{n}");
        outcomes.push((id.clone(), send_and_see(&mut alice, chat_id, &id).await));
    }
    let conflicts = outcomes.iter().filter(|(_, o)| o == "id_conflict").count();
    assert!(conflicts > 0, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o == "id_conflict" || o == "stored"),
        "{outcomes:?}"
    );
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert!(
        health["problems"].to_string().contains("CHAT_IN"),
        "{health}"
    );
    pipeline_drained(&app).await;
    assert_eq!(stream_messages(&app, "CHAT_DLQ").await.len(), conflicts);

    // Lost again before a restart: jetchat refuses to start and says what to do.
    app.stop().await;
    let newest = jetchat::store::queries::newest_stream_seq(&db)
        .await
        .unwrap();
    bus.jetstream.delete_stream("CHAT_IN").await.unwrap();
    let error = app.try_start_again().await.expect_err("start-up refuses");
    let error = format!("{error:#}");
    assert!(
        error.contains(&format!("continue-stream --after {newest}")),
        "{error}"
    );

    // A number below the database's newest id would bring the conflicts back: refused, and
    // the stream is left as it was.
    let last_sequence = |bus: jetchat::bus::Bus| async move {
        let mut stream = bus.jetstream.get_stream("CHAT_IN").await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    };
    let before = last_sequence(bus.clone()).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["continue-stream", "--after", &(newest - 1).to_string()])
        .env("NATS_URL", &app.nats_url)
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        stderr.contains(&format!("newest message id {newest}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("continue-stream --after {newest}")),
        "{stderr}"
    );
    assert_eq!(last_sequence(bus.clone()).await, before);

    // The operator continues the numbering after the database and replays the refused ones.
    let report = jetchat::ops::continue_stream::run(&bus, &db, newest, false)
        .await
        .unwrap();
    assert_eq!(report.next_sequence, newest + 1, "{report:?}");
    app.try_start_again()
        .await
        .expect("starts once the stream is ahead");
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // A message first (its socket would otherwise see the replayed ones' frames before its ack).
    let mut alice = app.connect(1).await;
    let ack = alice
        .send_message(json!({"chat_id": chat_id, "content": "continued"}))
        .await;
    assert!(ack["message_id"].as_i64().unwrap() > newest as i64);
    let replayed = jetchat::ops::dead_letters::replay(&bus, None, false)
        .await
        .unwrap();
    assert_eq!(replayed.len(), conflicts);
    pipeline_drained(&app).await;
    let total = 3 + outcomes.len() + 1;
    let contents = history_field(&app, 1, chat_id, total, "content").await;
    assert_eq!(contents.len(), total, "{contents:?}");
    for (id, _) in &outcomes {
        assert_eq!(
            contents.iter().filter(|c| *c == id).count(),
            1,
            "{id} stored once: {contents:?}"
        );
    }
}

#[tokio::test]
async fn a_persister_that_cannot_write_turns_healthz_to_503_until_it_can() {
    let app = spawn_app_with(&[("PERSIST_STALL", "1s")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Another writer holds the messages table: the persister's writes wait and fail as busy.
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).min_connections(1);
    let blocker = sea_orm::Database::connect(options).await.unwrap();
    let lock: &[&str] = match blocker.get_database_backend() {
        DatabaseBackend::Postgres => &["BEGIN", "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"],
        _ => &["BEGIN EXCLUSIVE"],
    };
    for sql in lock {
        blocker.execute_unprepared(sql).await.unwrap();
    }
    publish_command(
        &app,
        &format!("chat.in.{chat_id}.message"),
        json!({"sender_id":1,"content":"waiting","client_msg_id":"w1"}),
    )
    .await;
    let health = eventually("healthz reports the stalled persister", || async {
        let response = app
            .http
            .get(app.url("/healthz"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if status == 503 {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    assert_eq!(health["persister"], false, "{health}");
    assert!(
        health["problems"].to_string().contains("no progress"),
        "{health}"
    );

    blocker.execute_unprepared("COMMIT").await.unwrap();
    assert_eq!(
        history_field(&app, 1, chat_id, 1, "content").await,
        ["waiting"]
    );
    eventually("healthz is ok again", || async {
        let status = app
            .http
            .get(app.url("/healthz"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status();
        if status == 200 {
            Ok(())
        } else {
            Err(status.to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn an_operator_removes_dead_letters_that_are_no_command_to_replay() {
    let started = chrono::Utc::now();
    let app = spawn_app().await;
    let js = async_nats::jetstream::new(app.nats().await);
    for garbage in ["not json", "{\"nor\": \"a command\"}", "[1, 2]"] {
        js.publish("chat.in.7.message", garbage.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let bus = app.ops_bus().await;
    let seqs: Vec<u64> = eventually("three dead letters", || async {
        let letters = jetchat::ops::dead_letters::list(&bus)
            .await
            .map_err(|e| e.to_string())?;
        if letters.len() == 3 {
            Ok(letters.iter().map(|l| l.seq).collect())
        } else {
            Err(format!("{letters:?}"))
        }
    })
    .await;
    let commands = stream_messages(&app, "CHAT_IN").await.len();
    let left = || async {
        jetchat::ops::dead_letters::list(&bus)
            .await
            .unwrap()
            .iter()
            .map(|l| l.seq)
            .collect::<Vec<_>>()
    };

    // A sequence that is no dead letter: refused, and nothing is removed.
    let unknown = seqs[2] + 100;
    let error = jetchat::ops::dead_letters::remove(&bus, &[seqs[0], unknown])
        .await
        .expect_err("an unknown sequence is refused");
    assert!(
        error.to_string().contains(&format!("sequence {unknown}")),
        "{error}"
    );
    assert_eq!(left().await, seqs);

    let removed = jetchat::ops::dead_letters::remove(&bus, &[seqs[0]])
        .await
        .unwrap();
    assert_eq!(removed, [seqs[0]]);
    assert_eq!(left().await, seqs[1..]);

    // The command an operator types.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["dlq", "--remove", &seqs[1].to_string()])
        .env("NATS_URL", &app.nats_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("dead letter {} removed\n", seqs[1])
    );
    assert_eq!(left().await, [seqs[2]]);
    // Removing is not replaying: nothing reached CHAT_IN again.
    assert_eq!(stream_messages(&app, "CHAT_IN").await.len(), commands);

    let both = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["dlq", "--remove", &seqs[2].to_string(), "--replay-all"])
        .env("NATS_URL", &app.nats_url)
        .output()
        .unwrap();
    assert!(
        !both.status.success(),
        "remove and replay at once: {both:?}"
    );
    assert_eq!(left().await, [seqs[2]]);

    // The listing says when each letter was dead-lettered.
    let listed = jetchat_ops(&app, &["dlq", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["code"], "invalid_command", "{listed}");
    let time = chrono::DateTime::parse_from_rfc3339(listed[0]["time"].as_str().unwrap()).unwrap();
    assert!(started <= time && time <= chrono::Utc::now(), "{listed}");
    let table = jetchat_ops(&app, &["dlq"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let shown = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(table.contains(&shown), "{shown} in {table}");

    // A letter that is no command is not replayed by mistake: refused, with the way out.
    let refused = jetchat_ops(&app, &["dlq", "--replay", &seqs[2].to_string()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(stderr.contains("invalid_command"), "{stderr}");
    assert!(
        stderr.contains(&format!("jetchat dlq --remove {}", seqs[2])),
        "{stderr}"
    );
    assert!(!jetchat_ops(&app, &["dlq", "--replay-all"]).status.success());
    assert_eq!(left().await, [seqs[2]]);
    assert_eq!(stream_messages(&app, "CHAT_IN").await.len(), commands);
    // --force is about replaying: alone (or with --remove) it is refused, not ignored.
    let last = seqs[2].to_string();
    for args in [
        &["dlq", "--force"][..],
        &["dlq", "--remove", &last, "--force"][..],
    ] {
        let alone = jetchat_ops(&app, args);
        let stderr = String::from_utf8_lossy(&alone.stderr);
        assert_eq!(alone.status.code(), Some(2), "{args:?}: {alone:?}");
        assert!(stderr.contains("--replay"), "{stderr}");
    }
    assert_eq!(left().await, [seqs[2]]);
    // --force replays it anyway.
    let forced = jetchat_ops(&app, &["dlq", "--replay", &seqs[2].to_string(), "--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(stream_messages(&app, "CHAT_IN").await.len(), commands + 1);
}

/// `jetchat <args>` as an operator runs it against `app`'s NATS.
fn jetchat_ops(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(args)
        .env("NATS_URL", &app.nats_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The commands of blocks, pins and erasure refuse a NUL in their `command_id` (the one string
/// each carries) like every other command: rejected once, never retried, nothing changed,
/// and a message still flows.
#[tokio::test]
async fn nul_in_the_new_commands_ids_is_refused_and_everyone_keeps_chatting() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let message_id = alice
        .send_message(json!({"chat_id": chat_id, "content": "before"}))
        .await["message_id"]
        .as_i64()
        .unwrap();
    bob.expect("new_message").await;

    let client = app.nats().await;
    let mut rejected = client
        .subscribe("chat.events.*.command_rejected")
        .await
        .unwrap();
    client.flush().await.unwrap();
    for (subject, command) in [
        (
            "chat.in.users.block".to_owned(),
            json!({"type":"set_block","command_id":"b\u{0}","user_id":2,"blocked_id":1,"blocked":true}),
        ),
        (
            format!("chat.in.{chat_id}.pin_message"),
            json!({"type":"pin_message","command_id":"p\u{0}","chat_id":chat_id,"message_id":message_id,"pinned":true}),
        ),
        (
            "chat.in.users.erase".to_owned(),
            json!({"type":"erase_user","command_id":"e\u{0}","user_id":1}),
        ),
    ] {
        publish_command(&app, &subject, command).await;
    }
    let mut refused = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut rejected),
        )
        .await
        .expect("a rejection in time")
        .unwrap();
        let event: Value = serde_json::from_slice(&event.payload).unwrap();
        refused.push((
            event["command_id"].as_str().unwrap().to_owned(),
            event["code"].as_str().unwrap().to_owned(),
        ));
    }
    refused.sort();
    let invalid = "invalid_field".to_owned();
    assert_eq!(
        refused,
        [
            ("b\u{0}".to_owned(), invalid.clone()),
            ("e\u{0}".to_owned(), invalid.clone()),
            ("p\u{0}".to_owned(), invalid)
        ]
    );

    // Alice was not erased: she and Bob keep chatting.
    alice
        .send_message(json!({"chat_id": chat_id, "content": "after the NULs"}))
        .await;
    assert_eq!(bob.expect("new_message").await["content"], "after the NULs");
    assert_eq!(
        history_field(&app, 1, chat_id, 2, "content").await,
        ["before", "after the NULs"]
    );
    pipeline_drained(&app).await;
}
