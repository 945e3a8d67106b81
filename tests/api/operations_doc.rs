//! docs/operations.md, walked as an operator would at 3 a.m.: every procedure it gives with
//! jetchat's own commands, run as typed (the binary, `NATS_URL` and `DATABASE_URL` in its
//! environment), with jetchat stopped where the procedure says so, each step's outcome checked.
//! The doc cannot drift from the walk: every `jetchat <subcommand> --flag…` it names must have
//! been run here, and it may name no tool that nothing installs (the `nats` CLI).

use std::collections::BTreeSet;

use sea_orm::{Database, EntityTrait, QueryOrder};
use serde_json::{Value, json};

use jetchat::store::{chat, chat_member, message};

use nix::sys::signal::Signal;

use crate::helpers::{
    Snapshot, TestApp, connect_at, embedded_command, eventually, free_address, history_field,
    pipeline_drained, publish_command, spawn_app, start_embedded,
};

const DOC: &str = include_str!("../../docs/operations.md");

/// The shape of a `jetchat` command line: the subcommand and its flags, values left out
/// (`jetchat dlq --replay 3 4` is `dlq --replay`).
fn shape(line: &str) -> String {
    let line = line.split(" #").next().unwrap_or(line);
    let mut words = line
        .split_whitespace()
        .skip_while(|w| *w != "jetchat")
        .skip(1);
    let Some(subcommand) = words.next() else {
        return String::new();
    };
    let flags: BTreeSet<&str> = words.filter(|w| w.starts_with("--")).collect();
    std::iter::once(subcommand)
        .chain(flags)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every `jetchat …` command the doc names: the lines of its `sh` blocks and its inline code.
fn documented_commands() -> BTreeSet<String> {
    let mut commands = BTreeSet::new();
    let mut in_sh = false;
    for line in DOC.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if in_sh && trimmed.starts_with("jetchat ") {
            commands.insert(shape(trimmed));
        }
    }
    for (i, code) in DOC.split('`').enumerate() {
        if i % 2 == 1 && code.starts_with("jetchat ") {
            commands.insert(shape(code));
        }
    }
    commands
}

/// Shell commands of the doc's `sh` blocks that are not jetchat's.
fn other_tools() -> Vec<String> {
    let mut in_sh = false;
    let mut others = Vec::new();
    for line in DOC.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if in_sh && !trimmed.is_empty() && !trimmed.starts_with("jetchat ") {
            others.push(trimmed.to_owned());
        }
    }
    others
}

/// The operator at the keyboard: runs `jetchat` command lines against one app and remembers
/// their shapes.
struct Operator {
    /// `NATS_URL`, `DATABASE_URL`, `DATA_DIR` as the operator's shell has them.
    env: Vec<(&'static str, String)>,
    ran: BTreeSet<String>,
}

impl Operator {
    fn new(app: &TestApp) -> Self {
        Operator {
            env: vec![
                ("NATS_URL", app.nats_url.clone()),
                ("DATABASE_URL", app.database_url.clone()),
            ],
            ran: BTreeSet::new(),
        }
    }

    /// In the directory of an embedded jetchat (no `NATS_URL`): the commands use its
    /// nats-server, or start one on its store when jetchat is not running.
    fn embedded(dir: &std::path::Path) -> Self {
        Operator {
            env: vec![
                ("DATA_DIR", dir.display().to_string()),
                (
                    "DATABASE_URL",
                    format!("sqlite://{}", dir.join("jetchat.db").display()),
                ),
            ],
            ran: BTreeSet::new(),
        }
    }

    /// Runs `line` (`jetchat dlq --replay 3`; no quoting needed) as typed.
    fn run(&mut self, line: &str) -> std::process::Output {
        self.ran.insert(shape(line));
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("jetchat"), "{line}");
        std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
            .args(words)
            .env_remove("NATS_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("jetchat runs")
    }

    /// Runs `line`, which must succeed; its stdout.
    fn ok(&mut self, line: &str) -> String {
        self.ok_with_stderr(line).0
    }

    /// Runs `line`, which must succeed; its stdout and stderr.
    fn ok_with_stderr(&mut self, line: &str) -> (String, String) {
        let output = self.run(line);
        assert!(
            output.status.success(),
            "{line}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Runs `line`, which must fail; its stderr.
    fn refused(&mut self, line: &str) -> String {
        let output = self.run(line);
        assert!(
            !output.status.success(),
            "{line} must be refused: {output:?}"
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// `jetchat dlq --json`.
    fn letters(&mut self) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&self.ok("jetchat dlq --json")).unwrap()
    }

    /// `jetchat streams --json`'s `CHAT_IN`.
    fn chat_in(&mut self) -> Value {
        let streams: Value = serde_json::from_str(&self.ok("jetchat streams --json")).unwrap();
        streams[0].clone()
    }
}

/// Chats, members and messages of the database at `url`, in key order.
async fn contents(
    url: &str,
) -> (
    Vec<chat::Model>,
    Vec<chat_member::Model>,
    Vec<message::Model>,
) {
    let db = Database::connect(url).await.unwrap();
    (
        chat::Entity::find()
            .order_by_asc(chat::Column::Id)
            .all(&db)
            .await
            .unwrap(),
        chat_member::Entity::find()
            .order_by_asc(chat_member::Column::ChatId)
            .order_by_asc(chat_member::Column::UserId)
            .all(&db)
            .await
            .unwrap(),
        message::Entity::find()
            .order_by_asc(message::Column::Id)
            .all(&db)
            .await
            .unwrap(),
    )
}

async fn send(app: &TestApp, chat_id: i64, content: &str) {
    publish_command(
        app,
        &format!("chat.in.{chat_id}.message"),
        json!({"sender_id": 1, "content": content, "client_msg_id": content}),
    )
    .await;
}

#[tokio::test]
async fn every_procedure_of_operations_md_works_as_written() {
    let mut app = spawn_app().await;
    let mut operator = Operator::new(&app);
    let group = app.create_chat(1, true, &[2]).await;
    for content in ["one", "two", "three"] {
        send(&app, group, content).await;
    }

    // ## Dead letters. A publisher's garbage and two commands the database refuses.
    crate::poison::refuse_poison_in_the_database(&app).await;
    publish_command(&app, "chat.in.7.message", json!(["not", "a", "command"])).await;
    send(&app, group, "poison").await;
    publish_command(
        &app,
        &format!("chat.in.{group}.message"),
        json!({"sender_id": 2, "content": "poison", "client_msg_id": "poison-2"}),
    )
    .await;
    eventually("three dead letters", || async {
        let letters = jetchat::ops::dead_letters::list(&app.ops_bus().await)
            .await
            .map_err(|e| e.to_string())?;
        match letters.len() {
            3 => Ok(()),
            n => Err(format!("{n} dead letters")),
        }
    })
    .await;
    pipeline_drained(&app).await;
    // First look: /healthz reports them and stays 200.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["dead_letters"], 3);

    let letters = operator.letters();
    let seq_of = |code: &str| -> Vec<String> {
        letters
            .iter()
            .filter(|l| l["code"] == code)
            .map(|l| l["seq"].to_string())
            .collect()
    };
    let (garbage, poisons) = (seq_of("invalid_command"), seq_of("invalid_data"));
    assert_eq!((garbage.len(), poisons.len()), (1, 2), "{letters:?}");
    let table = operator.ok("jetchat dlq");
    for letter in &letters {
        assert!(
            table.contains(&format!("#{}", letter["seq"])),
            "{letter} in {table}"
        );
    }
    let streams = operator.ok("jetchat streams");
    assert!(streams.contains("CHAT_DLQ"), "{streams}");
    // An invalid_command letter is no command: --replay-all refuses, naming it.
    let refused = operator.refused("jetchat dlq --replay-all");
    assert!(
        refused.contains(&format!("jetchat dlq --remove {}", garbage[0])),
        "{refused}"
    );
    assert_eq!(operator.letters().len(), 3, "nothing replayed");
    // ... so the operator removes it.
    let removed = operator.ok(&format!("jetchat dlq --remove {}", garbage[0]));
    assert_eq!(removed, format!("dead letter {} removed\n", garbage[0]));
    // `replay --stream in --from-seq` shows a refused command.
    let original = letters
        .iter()
        .find(|l| l["code"] == "invalid_data")
        .unwrap()["original_seq"]
        .to_string();
    let shown = operator.ok(&format!("jetchat replay --stream in --from-seq {original}"));
    assert!(shown.contains("poison"), "{shown}");
    // ... and one chat's commands.
    let chat_traffic = operator.ok(&format!(
        "jetchat replay --stream in --subject chat.in.{group}.>"
    ));
    assert_eq!(
        chat_traffic.matches(r#""content":"poison""#).count(),
        2,
        "{chat_traffic}"
    );
    assert!(
        !chat_traffic.contains("not"),
        "chat 7's garbage is not chat {group}'s"
    );
    // The cause fixed, the poisons are replayed: one by its sequence, then the rest.
    crate::poison::accept_poison_again(&app).await;
    let replayed = operator.ok(&format!("jetchat dlq --replay {}", poisons[0]));
    assert!(
        replayed.starts_with(&format!("dead letter {} published again", poisons[0])),
        "{replayed}"
    );
    let replayed = operator.ok("jetchat dlq --replay-all");
    assert!(
        replayed.starts_with(&format!("dead letter {} published again", poisons[1])),
        "{replayed}"
    );
    assert!(operator.letters().is_empty());
    pipeline_drained(&app).await;
    assert_eq!(
        history_field(&app, 1, group, 5, "content").await,
        ["one", "two", "three", "poison", "poison"]
    );

    // ## Snapshot, then trim. 1: N, read before the snapshot; 2: the snapshot.
    let chat_in = operator.chat_in();
    let n = chat_in["applied_through"].as_u64().unwrap();
    assert_eq!(n, chat_in["last_seq"].as_u64().unwrap(), "all applied");
    let table = operator.ok("jetchat streams");
    assert!(
        table.contains(&format!("applied to the database up to {n}\n")),
        "{table}"
    );
    let snapshot = Snapshot::take(&app.database_url, app.dir()).await;
    // Traffic goes on meanwhile.
    send(&app, group, "after the snapshot").await;
    pipeline_drained(&app).await;
    // 3: the trim, behind the snapshot (its SQLite file, or the dump restored).
    let snapshot_url = snapshot.restore(app.dir()).await;
    let trimmed = operator.ok(&format!(
        "jetchat trim-stream --through {n} --snapshot {snapshot_url}"
    ));
    let trimmed: Value = serde_json::from_str(&trimmed).unwrap();
    assert_eq!(trimmed["first_seq"], n + 1, "{trimmed}");
    assert_eq!(operator.chat_in()["first_seq"], n + 1);
    // A rebuild from the trimmed stream alone is refused, naming the snapshot it needs.
    let empty = crate::helpers::fresh_database_url(app.dir()).await;
    let refused = operator.refused(&format!("jetchat reproject --into {empty}"));
    assert!(
        refused.contains(&format!("reproject --from-seq {}", n + 1)),
        "{refused}"
    );
    // 4: a rebuild is the snapshot restored plus the rest.
    let restored = snapshot.restore(app.dir()).await;
    let report = operator.ok(&format!(
        "jetchat reproject --into {restored} --from-seq {}",
        n + 1
    ));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["refused"], 0, "{report}");
    assert_eq!(
        contents(&restored).await,
        contents(&app.database_url).await,
        "snapshot + the rest = the live database"
    );

    // ## A lost command stream, with jetchat stopped: CHAT_IN is lost with its volume.
    app.stop().await;
    let bus = app.ops_bus().await;
    bus.jetstream.delete_stream("CHAT_IN").await.unwrap();
    let error = format!(
        "{:#}",
        app.try_start_again().await.expect_err("start-up refuses")
    );
    // 2: the start-up error prints the exact command.
    let command = error
        .split('`')
        .find(|code| code.starts_with("jetchat continue-stream --after "))
        .unwrap_or_else(|| panic!("a command in {error}"))
        .to_owned();
    let newest: u64 = command.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        error.contains(&format!("holds messages up to id {newest}")),
        "{error}"
    );
    // One below the database's newest message is refused, naming it.
    let refused = operator.refused(&format!("jetchat continue-stream --after {}", newest - 1));
    assert!(
        refused.contains(&format!("newest message id {newest}")),
        "{refused}"
    );
    let continued: Value = serde_json::from_str(&operator.ok(&command)).unwrap();
    assert_eq!(continued["next_sequence"], newest + 1, "{continued}");
    // 3: jetchat starts (`jetchat serve`, here in the test's process), then the messages
    // refused meanwhile are replayed (none here).
    app.try_start_again().await.expect("starts again");
    operator.ran.insert("serve".into());
    operator.ok("jetchat dlq --replay-all");
    let mut alice = app.connect(1).await;
    let ack = alice
        .send_message(json!({"chat_id": group, "content": "continued"}))
        .await;
    assert!(ack["message_id"].as_u64().unwrap() > newest);

    // ## Partitions: the count changes with every instance stopped and nothing waiting.
    drop(alice);
    app.stop().await;
    let changed = operator.ok("jetchat partitions 8");
    assert!(
        changed.contains("CHAT_IN: 8 partitions, was 4"),
        "{changed}"
    );
    assert!(changed.contains("persister-7"), "{changed}");
    app.try_start_again()
        .await
        .expect("starts on eight partitions");
    send(&app, group, "on eight partitions").await;
    assert!(
        operator.ok("jetchat streams").contains("persister-7"),
        "every partition has its consumer"
    );

    // Every command the doc names was run above, and it names no other tool.
    let missing: Vec<String> = documented_commands()
        .difference(&operator.ran)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md names commands this walk does not run: {missing:?}"
    );
    assert_eq!(
        other_tools(),
        Vec::<String>::new(),
        "only jetchat's commands"
    );
}

#[tokio::test]
async fn with_the_embedded_defaults_and_jetchat_stopped_snapshot_and_trim_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let mut jetchat = start_embedded(embedded_command(dir.path(), address), address, dir).await;
    let dir = jetchat.dir.clone();
    let mut alice = connect_at(address, 1).await;
    for content in ["one", "two"] {
        alice
            .send_message(json!({"receiver_id": 2, "content": content}))
            .await;
    }
    drop(alice);
    jetchat.signal(Signal::SIGTERM);
    assert!(jetchat.exited().await.success());

    // jetchat is stopped (its nats-server with it): each command runs one of its own.
    let mut operator = Operator::embedded(dir.path());
    let own_server = "jetchat is not running: this command started the embedded nats-server";
    let (streams, stderr) = operator.ok_with_stderr("jetchat streams --json");
    assert!(stderr.contains(own_server), "{stderr}");
    let streams: Value = serde_json::from_str(&streams).unwrap();
    let n = streams[0]["applied_through"].as_u64().unwrap();
    assert_eq!(n, streams[0]["last_seq"].as_u64().unwrap(), "{streams}");
    assert_eq!(operator.ok("jetchat dlq"), "no dead letters\n");
    let live = format!("sqlite://{}", dir.path().join("jetchat.db").display());
    let snapshot = Snapshot::take(&live, dir.path()).await;
    let snapshot_url = snapshot.restore(dir.path()).await;
    let (trimmed, stderr) = operator.ok_with_stderr(&format!(
        "jetchat trim-stream --through {n} --snapshot {snapshot_url}"
    ));
    assert!(stderr.contains(own_server), "{stderr}");
    assert!(
        stderr.contains(&format!("CHAT_IN sequences 1..={n}")),
        "{stderr}"
    );
    let trimmed: Value = serde_json::from_str(&trimmed).unwrap();
    assert_eq!(trimmed["first_seq"], n + 1, "{trimmed}");
    let restored = snapshot.restore(dir.path()).await;
    let report: Value = serde_json::from_str(&operator.ok(&format!(
        "jetchat reproject --into {restored} --from-seq {}",
        n + 1
    )))
    .unwrap();
    assert_eq!(report["messages"], 2, "{report}");
    assert_eq!(contents(&restored).await, contents(&live).await);

    // jetchat starts again on the trimmed stream, and messages go on after it.
    let jetchat = start_embedded(embedded_command(dir.path(), address), address, dir).await;
    let ack = connect_at(jetchat.address, 1)
        .await
        .send_message(json!({"receiver_id": 2, "content": "three"}))
        .await;
    assert!(ack["message_id"].as_u64().unwrap() > n, "{ack}");
}

#[test]
fn the_walk_reads_the_docs_commands_by_their_shape() {
    assert_eq!(
        shape("jetchat dlq --replay 3 4    # once fixed"),
        "dlq --replay"
    );
    assert_eq!(
        shape("   jetchat reproject --into <url> --from-seq <N+1>"),
        "reproject --from-seq --into"
    );
    let documented = documented_commands();
    for expected in [
        "dlq",
        "dlq --remove",
        "streams --json",
        "trim-stream --snapshot --through",
        "replay --from-seq --stream",
    ] {
        assert!(
            documented.contains(expected),
            "{expected} in {documented:?}"
        );
    }
}
