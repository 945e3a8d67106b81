//! Nothing jetchat prints shows a password, even with every library's logs on
//! (`RUST_LOG=trace`, which includes `debug`): not async-nats' connection attempts, not
//! sea-orm's or sqlx's connection spans.

use std::{path::Path, process::Stdio};

use nix::sys::signal::Signal;
use serde_json::json;

use crate::helpers::{
    SECRET, connect_at, embedded_command, eventually, free_address, fresh_database_url,
    start_embedded, token,
};

const NATS_PASSWORD: &str = "nats-pw-4f9c2e81";
const DATABASE_PASSWORD: &str = "db-pw-7d1a3b56";

/// A nats-server with JetStream on `port` that lets in only `jetchat` with [`NATS_PASSWORD`].
fn nats_with_password(port: u16, store: &Path) -> std::process::Child {
    let bin = std::env::var_os("NATS_SERVER_BIN").map(std::path::PathBuf::from);
    let bin = jetchat::bus::embedded::find_binary(bin.as_deref()).unwrap();
    std::process::Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .args(["--user", "jetchat", "--pass", NATS_PASSWORD])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts")
}

/// The suite's database URL with a password in it, and that password: on PostgreSQL the
/// server's own (when `TEST_DATABASE_URL` has one) or [`DATABASE_PASSWORD`] (a server that
/// trusts loopback never asks for it, but jetchat still holds and parses it); SQLite has none.
async fn database_url_with_password(dir: &Path) -> (String, Option<String>) {
    let url = fresh_database_url(dir).await;
    if !url.starts_with("postgres") {
        return (url, None);
    }
    let mut url = url::Url::parse(&url).expect("TEST_DATABASE_URL is a URL");
    if url.password().is_none() {
        url.set_password(Some(DATABASE_PASSWORD)).unwrap();
    }
    let password = url.password().map(str::to_owned);
    (url.to_string(), password)
}

#[tokio::test]
async fn no_password_appears_in_the_logs_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let nats_port = free_address().port();
    let store = dir.path().join("nats-store");
    let mut nats = nats_with_password(nats_port, &store);
    let (database_url, database_password) = database_url_with_password(dir.path()).await;
    let log_path = dir.path().join("jetchat.log");
    let log = std::fs::File::create(&log_path).unwrap();

    let jetchat_dir = dir.path().join("jetchat");
    let address = free_address();
    let mut command = embedded_command(&jetchat_dir, address);
    command
        .env(
            "NATS_URL",
            format!("nats://jetchat:{NATS_PASSWORD}@127.0.0.1:{nats_port}"),
        )
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut jetchat = start_embedded(command, address, tempfile::tempdir().unwrap()).await;

    // Some work: REST, a socket, a message through the whole pipeline.
    let http = reqwest::Client::new();
    let created = http
        .post(format!("http://{address}/chats/"))
        .bearer_auth(token(1))
        .json(&json!({"name": "secrets", "is_group": true, "member_ids": [2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let chat_id = created.json::<serde_json::Value>().await.unwrap()["chat_id"].clone();
    let mut socket = connect_at(address, 1).await;
    socket
        .send_message(json!({"chat_id": chat_id, "content": "hi"}))
        .await;

    // The nats-server goes away and comes back: async-nats logs every reconnect attempt.
    nats.kill().unwrap();
    nats.wait().unwrap();
    let mut nats = nats_with_password(nats_port, &store);
    let connections = || {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .matches("NATS connected")
            .count()
    };
    eventually("jetchat reconnects to NATS", || async {
        match connections() {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} connections")),
        }
    })
    .await;
    socket
        .send_message(json!({"chat_id": chat_id, "content": "again"}))
        .await;
    drop(socket);

    jetchat.signal(Signal::SIGTERM);
    assert!(jetchat.exited().await.success());
    nats.kill().unwrap();
    nats.wait().unwrap();

    let printed = std::fs::read_to_string(&log_path).unwrap();
    // The libraries' own logs were on: async-nats names the server of each attempt.
    assert!(
        printed.contains("attempting connection"),
        "async-nats logged its connection attempts"
    );
    let mut secrets = vec![NATS_PASSWORD.to_owned(), SECRET.to_owned()];
    secrets.extend(database_password);
    for secret in secrets {
        if let Some(at) = printed.find(&secret) {
            let line = printed[..at].rsplit('\n').next().unwrap_or_default();
            panic!("{secret:?} printed, in the line starting {line:.300}");
        }
    }
}
