//! jetchat as a process in the embedded mode: signals always stop it, its nats-server never
//! outlives it, and start-up errors print no password.

use std::{io::Write as _, net::TcpStream};

use nix::sys::signal::Signal;

use crate::helpers::{
    EmbeddedProcess, SECRET, alive, embedded_command, free_address, gone, proc_stat,
    start_embedded, token,
};

/// A fresh embedded jetchat with `settings`.
async fn embedded(settings: &[(&str, &str)]) -> EmbeddedProcess {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let mut command = embedded_command(dir.path(), address);
    command.envs(settings.iter().copied());
    start_embedded(command, address, dir).await
}

/// An upload that sends its headers and the start of its body, then nothing: the graceful
/// shutdown waits for it, so it cannot finish while the connection stays open.
fn stalled_upload(process: &EmbeddedProcess) -> TcpStream {
    let mut stream = TcpStream::connect(process.address).unwrap();
    write!(
        stream,
        "POST /upload HTTP/1.1\r\nHost: jetchat\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.ogg\"\r\n\r\nOggS",
        token(1)
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

/// [`stalled_upload`], once jetchat is reading it (its staging file exists): a signal sent
/// earlier could find the request not yet accepted, and nothing to wait for.
async fn upload_in_progress(process: &EmbeddedProcess) -> TcpStream {
    let stream = stalled_upload(process);
    let staging = process.dir.path().join("media").join("tmp");
    crate::helpers::eventually("the upload is being staged", || async {
        match std::fs::read_dir(&staging).map(|d| d.count()) {
            Ok(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    stream
}

/// Waits until jetchat stopped accepting connections: its shutdown has begun.
async fn shutdown_begun(process: &EmbeddedProcess) {
    crate::helpers::eventually("the listener is closed", || async {
        match TcpStream::connect(process.address) {
            Err(_) => Ok(()),
            Ok(_) => Err("still accepting".to_owned()),
        }
    })
    .await
}

#[tokio::test]
async fn kill_9_of_jetchat_takes_its_nats_server_along() {
    let mut jetchat = embedded(&[]).await;
    let nats = jetchat.nats_pid();
    assert!(alive(nats));
    jetchat.signal(Signal::SIGKILL);
    jetchat.exited().await;
    gone("the nats-server of a killed jetchat exits", nats).await;
}

#[tokio::test]
async fn sigint_stops_jetchat_whose_stderr_reader_died() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let mut command = embedded_command(dir.path(), address);
    // As `jetchat 2>&1 | tee log` after Ctrl-C killed tee: every log write fails (EPIPE).
    command.stderr(std::process::Stdio::piped());
    let mut jetchat = start_embedded(command, address, dir).await;
    let nats = jetchat.nats_pid();
    drop(jetchat.child.stderr.take());
    // Something logs into the dead pipe before the signal too.
    let _ = reqwest::get(format!("http://{address}/chats/")).await;
    jetchat.signal(Signal::SIGINT);
    let status = jetchat.exited().await;
    assert!(status.success(), "a graceful exit: {status}");
    gone("the nats-server is stopped", nats).await;
}

#[tokio::test]
async fn a_second_signal_exits_at_once_when_the_shutdown_cannot_finish() {
    let mut jetchat = embedded(&[("SHUTDOWN_TIMEOUT", "10m")]).await;
    let nats = jetchat.nats_pid();
    let _upload = upload_in_progress(&jetchat).await;
    jetchat.signal(Signal::SIGINT);
    shutdown_begun(&jetchat).await;
    assert!(
        jetchat.child.try_wait().unwrap().is_none(),
        "the stalled upload holds the shutdown"
    );
    jetchat.signal(Signal::SIGINT);
    let status = jetchat.exited().await;
    assert_eq!(status.code(), Some(130), "128 + SIGINT: {status}");
    gone("the nats-server dies with jetchat", nats).await;
}

#[tokio::test]
async fn a_shutdown_that_cannot_finish_ends_at_its_deadline() {
    let mut jetchat = embedded(&[("SHUTDOWN_TIMEOUT", "1s")]).await;
    let nats = jetchat.nats_pid();
    let _upload = upload_in_progress(&jetchat).await;
    jetchat.signal(Signal::SIGTERM);
    let status = jetchat.exited().await;
    assert_eq!(status.code(), Some(1), "the deadline's exit: {status}");
    gone("the nats-server dies with jetchat", nats).await;
}

#[tokio::test]
async fn a_shutdown_with_its_nats_server_frozen_still_ends() {
    let mut jetchat = embedded(&[("SHUTDOWN_TIMEOUT", "20s")]).await;
    let nats = jetchat.nats_pid();
    // NATS gone without a word: the server stops answering but its connections stay open.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(nats as i32), Signal::SIGSTOP).unwrap();
    jetchat.signal(Signal::SIGINT);
    let status = jetchat.exited().await;
    assert!(
        status.code().is_some(),
        "jetchat exited by itself: {status}"
    );
    gone("the frozen nats-server dies with jetchat", nats).await;
}

#[tokio::test]
async fn ctrl_c_in_a_terminal_reaches_jetchat_which_stops_its_nats_server() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let log = dir.path().join("stderr.log");
    let mut command = embedded_command(dir.path(), address);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.stderr(std::fs::File::create(&log).unwrap());
    let mut jetchat = start_embedded(command, address, dir).await;
    let nats = jetchat.nats_pid();
    let group = proc_stat(jetchat.child.id()).unwrap().process_group;
    assert_eq!(group, jetchat.child.id(), "jetchat leads its job's group");
    assert_ne!(
        proc_stat(nats).unwrap().process_group,
        group,
        "the nats-server is outside the terminal's group"
    );
    // The terminal signals the whole foreground group.
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group as i32), Signal::SIGINT).unwrap();
    let status = jetchat.exited().await;
    assert!(status.success(), "a graceful exit: {status}");
    gone("the nats-server is stopped", nats).await;
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("jetchat stopped"), "{log}");
    assert!(
        !log.contains("embedded nats-server exited"),
        "the nats-server ran until jetchat stopped it: {log}"
    );
}

#[tokio::test]
async fn a_nats_server_left_on_the_store_is_stopped_and_a_stranger_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).unwrap();
    // What a crashed jetchat of old left behind: a nats-server on the store, its pid recorded.
    let bin = std::env::var_os("NATS_SERVER_BIN").map(std::path::PathBuf::from);
    let bin = jetchat::bus::embedded::find_binary(bin.as_deref()).unwrap();
    let mut orphan = std::process::Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
        .arg(nats_dir.join("store"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = jetchat::bus::embedded::pid_file(&nats_dir);
    std::fs::write(&pid_file, orphan.id().to_string()).unwrap();

    let address = free_address();
    let jetchat = start_embedded(embedded_command(dir.path(), address), address, dir).await;
    gone("the nats-server left on the store is stopped", orphan.id()).await;
    orphan.wait().unwrap();
    let nats = jetchat.nats_pid();
    assert_ne!(nats, orphan.id());
    let mut jetchat = jetchat;
    jetchat.signal(Signal::SIGTERM);
    assert!(jetchat.exited().await.success());
    gone("the nats-server is stopped", nats).await;

    // A pid file whose pid now belongs to another program: that program is left alone, and
    // jetchat starts again on the same store.
    let mut stranger = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, stranger.id().to_string()).unwrap();
    let dir = jetchat.dir.clone();
    drop(jetchat);
    let address = free_address();
    let jetchat = start_embedded(embedded_command(dir.path(), address), address, dir).await;
    assert!(alive(stranger.id()), "sleep was not killed");
    assert_ne!(jetchat.nats_pid(), stranger.id());
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

/// The stderr of an embedded jetchat started with `settings`, which must fail to start.
fn failed_start_up(settings: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = embedded_command(dir.path(), free_address())
        .envs(settings.iter().copied())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    stderr
}

#[tokio::test]
async fn start_up_errors_name_the_variable_but_not_the_password() {
    let stderr = failed_start_up(&[("DATABASE_URL", "postgres://user:s3cret@127.0.0.1:1/db")]);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(
        stderr.contains("postgres://user:***@127.0.0.1:1/db"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // The operator commands too.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .arg("streams")
        .env("NATS_URL", "nats://jetchat:s3cret@127.0.0.1:1")
        .env("JWT_SECRET", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("NATS_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test]
async fn a_topology_the_nats_server_refuses_ends_start_up_with_its_reason_and_no_retry() {
    // One nats-server cannot hold three replicas: no wait can fix that, so start-up ends with
    // the server's reason instead of waiting as it does for a cluster that is still forming.
    let stderr = failed_start_up(&[("NATS_STREAM_REPLICAS", "3")]);
    assert!(stderr.contains("creating stream CHAT_IN"), "{stderr}");
    assert!(stderr.contains("replicas"), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[tokio::test]
async fn the_log_in_a_file_has_no_colour_codes_and_a_clean_stop_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("jetchat.log");
    let address = free_address();
    let mut command = embedded_command(dir.path(), address);
    command.stderr(std::fs::File::create(&log_path).unwrap());
    let mut jetchat = start_embedded(command, address, dir).await;
    jetchat.signal(Signal::SIGTERM);
    assert!(jetchat.exited().await.success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("jetchat stopped"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(warnings.is_empty(), "a clean stop warns: {warnings:?}");
}
