//! `spawn_app()` and the clients tests talk to it with.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Once, time::Duration};

use futures_util::{SinkExt, StreamExt};
use jetchat::{app::App, bus::embedded::EmbeddedNats, config::Config};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use tokio_util::sync::CancellationToken;

/// The Django `SECRET_KEY` of the test apps.
pub const SECRET: &str = "test-django-secret";

/// How long a test waits for a frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

static TRACING: Once = Once::new();

/// A running jetchat with everything it needs, stopped on drop.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub nats_url: String,
    /// Holds the database, the NATS store and media until the test ends.
    _dir: tempfile::TempDir,
    /// The app's database.
    pub database_url: String,
    vars: HashMap<String, String>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    nats: Option<EmbeddedNats>,
}

/// Starts a nats-server, a fresh SQLite database and jetchat on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with extra settings.
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info,jetchat=debug")
                .with_test_writer()
                .init();
        }
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let bin = std::env::var_os("NATS_SERVER_BIN").map(PathBuf::from);
    let nats = EmbeddedNats::start(bin.as_deref(), &dir.path().join("nats"))
        .await
        .expect("nats-server starts");
    let database_url = fresh_database_url(dir.path()).await;
    let mut vars: HashMap<String, String> = HashMap::from([
        ("JWT_SECRET".into(), SECRET.into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("DATABASE_URL".into(), database_url.clone()),
        ("NATS_URL".into(), nats.url().into()),
        // Receipts only when a test sends them; `auto_delivered` tests turn this on.
        ("AUTO_DELIVERED".into(), "false".into()),
        // Presence frames only in the tests about presence (they turn it on).
        ("PRESENCE".into(), "off".into()),
        // Push scans only in the tests about pushes (they set a short PUSH_AFTER).
        ("PUSH_AFTER".into(), "0".into()),
        ("DATA_DIR".into(), dir.path().display().to_string()),
        (
            "MEDIA_DIR".into(),
            dir.path().join("media").display().to_string(),
        ),
    ]);
    for (k, v) in settings {
        vars.insert(k.to_string(), v.to_string());
    }
    let (address, shutdown, server) = start(&vars).await;
    TestApp {
        address,
        http: reqwest::Client::new(),
        nats_url: nats.url().to_owned(),
        _dir: dir,
        database_url,
        vars,
        shutdown,
        server: Some(server),
        nats: Some(nats),
    }
}

/// An empty database of the kind the suite runs on: a SQLite file under `dir`, or a new
/// database on the `TEST_DATABASE_URL` server.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) => fresh_postgres_database(&server).await,
        Err(_) => format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()))
                .display()
        ),
    }
}

/// Creates an empty database on the PostgreSQL server at `server_url` and returns its URL.
async fn fresh_postgres_database(server_url: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("jetchat_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL connects");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("test database created");
    admin.close().await.ok();
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends with /<database>");
    format!("{base}/{name}")
}

async fn start(
    vars: &HashMap<String, String>,
) -> (
    SocketAddr,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test config");
    let shutdown = CancellationToken::new();
    let app = App::build(config, shutdown.clone())
        .await
        .expect("app builds");
    let address = app.address();
    (address, shutdown, tokio::spawn(app.run_until_stopped()))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        drop(self.nats.take());
    }
}

impl TestApp {
    /// A second jetchat instance on the same NATS and database (its own port and media
    /// directory), as in a deployment of several instances behind a load balancer.
    pub async fn sibling(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut vars = self.vars.clone();
        vars.insert("DATA_DIR".into(), dir.path().display().to_string());
        vars.insert(
            "MEDIA_DIR".into(),
            dir.path().join("media").display().to_string(),
        );
        let (address, shutdown, server) = start(&vars).await;
        TestApp {
            address,
            http: reqwest::Client::new(),
            nats_url: self.nats_url.clone(),
            _dir: dir,
            database_url: self.database_url.clone(),
            vars,
            shutdown,
            server: Some(server),
            nats: None,
        }
    }

    /// The process id of this app's nats-server.
    pub fn nats_pid(&self) -> u32 {
        self.nats
            .as_ref()
            .expect("this app owns its nats-server")
            .pid()
    }

    /// Kills the nats-server with SIGKILL; its supervisor starts it again on the same port
    /// and store half a second later.
    pub fn kill_nats(&self) {
        let pid = self.nats_pid();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("nats-server killed");
    }

    /// Shuts jetchat down gracefully (the nats-server and the database stay) and waits.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("clean shutdown");
        }
    }

    /// Starts jetchat again, with some settings changed, on the same database and NATS.
    pub async fn start_again_with(&mut self, settings: &[(&str, &str)]) {
        for (name, value) in settings {
            self.vars.insert((*name).to_owned(), (*value).to_owned());
        }
        self.start_again().await;
    }

    /// Starts jetchat again on the same database and NATS (on a new port).
    pub async fn start_again(&mut self) {
        let (address, shutdown, server) = start(&self.vars).await;
        self.address = address;
        self.shutdown = shutdown;
        self.server = Some(server);
    }

    /// The operator tools' view of this app's NATS.
    pub async fn ops_bus(&self) -> jetchat::bus::Bus {
        jetchat::bus::Bus::new(self.nats().await, jetchat::bus::Subjects::new("chat"))
    }

    /// A directory that lives as long as the app.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A plain NATS client on the test's server, as Django would use.
    pub async fn nats(&self) -> async_nats::Client {
        async_nats::connect(&self.nats_url)
            .await
            .expect("NATS connects")
    }
}

/// A Django SimpleJWT access token for `user_id`.
pub fn token(user_id: i64) -> String {
    token_with(json!({
        "token_type": "access",
        "exp": chrono::Utc::now().timestamp() + 300,
        "iat": chrono::Utc::now().timestamp(),
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "user_id": user_id,
    }))
}

/// A token with any claims, signed with the test secret (HS256).
pub fn token_with(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

impl TestApp {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// The WebSocket URL with `?token=`.
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws/chat?token={}", self.address, token)
    }

    /// Opens a socket as `user_id`.
    pub async fn connect(&self, user_id: i64) -> WsClient {
        connect_at(self.address, user_id).await
    }

    /// Starts a jetchat process (the `jetchat` binary) on this app's NATS and database, for
    /// tests that kill an instance for real.
    pub async fn spawn_process(&self) -> JetchatProcess {
        self.spawn_process_with(&[]).await
    }

    /// [`TestApp::spawn_process`] with some settings changed.
    pub async fn spawn_process_with(&self, settings: &[(&str, &str)]) -> JetchatProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = tempfile::tempdir().expect("temporary directory");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
            .arg("serve")
            .envs(&self.vars)
            .envs(settings.iter().copied())
            .env("BIND_ADDR", address.to_string())
            .env("DATA_DIR", dir.path())
            .env("MEDIA_DIR", dir.path().join("media"))
            .env(
                "RUST_LOG",
                if std::env::var_os("TEST_LOG").is_some() {
                    "info"
                } else {
                    "warn"
                },
            )
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("jetchat starts");
        let process = JetchatProcess {
            child,
            address,
            _dir: dir,
        };
        let health = format!("http://{address}/healthz");
        eventually("the jetchat process is healthy", || async {
            match self.http.get(&health).send().await {
                Ok(r) if r.status() == 200 => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        process
    }

    /// GET with `user_id`'s bearer token.
    pub async fn get(&self, user_id: i64, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token(user_id))
            .send()
            .await
            .expect("request sent")
    }

    /// POST JSON with `user_id`'s bearer token.
    pub async fn post(&self, user_id: i64, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token(user_id))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a chat through REST and returns its id.
    pub async fn create_chat(&self, user_id: i64, is_group: bool, members: &[i64]) -> i64 {
        let response = self
            .post(
                user_id,
                "/chats/",
                json!({"name": "test", "is_group": is_group, "member_ids": members}),
            )
            .await;
        assert!(
            response.status().is_success(),
            "create chat: {}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        body["chat_id"].as_i64().expect("chat_id in the answer")
    }
}

/// Opens a socket as `user_id` on the jetchat at `address`.
pub async fn connect_at(address: SocketAddr, user_id: i64) -> WsClient {
    let url = format!("ws://{address}/ws/chat?token={}", token(user_id));
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake succeeds");
    let mut client = WsClient { stream };
    client.expect("unread").await;
    client
}

/// A jetchat running as a process of its own; killed (SIGKILL) on drop if still running.
pub struct JetchatProcess {
    child: std::process::Child,
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl JetchatProcess {
    /// `kill -9`: no shutdown, no last batch, no goodbye to the sockets.
    pub fn kill(&mut self) {
        self.child.kill().expect("jetchat killed");
        self.child.wait().expect("jetchat reaped");
    }

    /// SIGTERM, then waits for the graceful shutdown to end the process.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM sent");
        let deadline = tokio::time::Instant::now() + POLL_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("jetchat waited for") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jetchat still running {POLL_TIMEOUT:?} after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for JetchatProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket client speaking JSON frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Sends a JSON text frame.
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame (control frames skipped); fails the test after [`FRAME_TIMEOUT`].
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("a frame arrives in time")
                .expect("socket still open")
                .expect("frame reads");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("frames are JSON");
                }
                Message::Close(frame) => panic!("socket closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame, which must have `action`. A `chat_created` frame before it is passed
    /// over (a first message to a user creates their private chat, and both sockets are told
    /// before the message): tests of `chat_created` itself expect it by name.
    pub async fn expect(&mut self, action: &str) -> Value {
        // `chat_created` may come before any frame; `command_applied` answers a named
        // change after its own frames: each is skipped unless it is the one expected.
        let mut frame = self.next().await;
        while frame["action"] != action
            && (frame["action"] == "chat_created" || frame["action"] == "command_applied")
        {
            frame = self.next().await;
        }
        assert_eq!(frame["action"], action, "expected {action}, got {frame}");
        frame
    }

    /// Sends a message and waits for `message_accepted` then `message_ack`; returns the ack.
    pub async fn send_message(&mut self, target: Value) -> Value {
        let mut frame = json!({"action": "send_message", "content_type": "text"});
        frame
            .as_object_mut()
            .unwrap()
            .extend(target.as_object().unwrap().clone());
        self.send(frame).await;
        self.expect("message_accepted").await;
        self.expect("message_ack").await
    }

    /// Asserts nothing arrives for `wait`.
    /// (A `command_applied`, the answer to the client's own named request, is no news.)
    pub async fn expect_silence(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout_at(until, self.stream.next()).await
        {
            if !text.contains("\"action\":\"command_applied\"") {
                panic!("expected no frame, got {text}");
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Err(e)) => panic!("socket failed before closing: {e}"),
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Publishes a command to `CHAT_IN` as Django would and waits for JetStream's ack.
/// The next `n` events on a core NATS subscription, as (subject, payload); fails the test when
/// one does not come within [`FRAME_TIMEOUT`].
pub async fn next_events(events: &mut async_nats::Subscriber, n: usize) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, events.next())
            .await
            .expect("an event in time")
            .expect("subscription open");
        let event: Value = serde_json::from_slice(&msg.payload).expect("events are JSON");
        seen.push((msg.subject.to_string(), event));
    }
    seen
}

pub async fn publish_command(app: &TestApp, subject: &str, payload: Value) {
    let js = async_nats::jetstream::new(app.nats().await);
    js.publish(subject.to_owned(), payload.to_string().into())
        .await
        .expect("published")
        .await
        .expect("JetStream acknowledges the command");
}

/// The persister's durable consumer on `CHAT_IN` as JetStream reports it now (for
/// [`eventually`]: an error is the text of what failed).
pub async fn persister_consumer(
    js: &async_nats::jetstream::Context,
) -> Result<PersisterState, String> {
    use futures_util::StreamExt;
    let stream = js.get_stream("CHAT_IN").await.map_err(|e| e.to_string())?;
    let mut infos = stream.consumers();
    let mut state = PersisterState::default();
    while let Some(info) = infos.next().await {
        let info = info.map_err(|e| e.to_string())?;
        if info.name == "persister" || info.name.starts_with("persister-") {
            state.partitions += 1;
            state.num_pending += info.num_pending;
            state.num_ack_pending += info.num_ack_pending;
            state.num_waiting += info.num_waiting;
        }
    }
    if state.partitions == 0 {
        return Err("no persister consumer".into());
    }
    Ok(state)
}

/// The persisters' consumers on `CHAT_IN`, one per partition, summed.
#[derive(Debug, Default)]
pub struct PersisterState {
    pub partitions: usize,
    pub num_pending: u64,
    pub num_ack_pending: usize,
    pub num_waiting: usize,
}

/// `field` of the chat's messages as `user_id` reads them in history, oldest first, once there
/// are at least `count` (fails the test after [`POLL_TIMEOUT`]).
pub async fn history_field(
    app: &TestApp,
    user_id: i64,
    chat_id: i64,
    count: usize,
    field: &str,
) -> Vec<String> {
    let path = format!("/chats/{chat_id}/messages?limit=100");
    let page = eventually("the messages are in history", || async {
        let page = app.get_json(user_id, &path).await;
        match page.as_array() {
            Some(messages) if messages.len() >= count => Ok(messages.clone()),
            _ => Err(page.to_string()),
        }
    })
    .await;
    page.iter()
        .rev()
        .map(|m| m[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Where a bounded poll gives up (receipts are persisted asynchronously).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls `check` until it returns `Some`, for at most [`POLL_TIMEOUT`]; fails the test with
/// `what` and the last observed value otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + POLL_TIMEOUT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not reached within {POLL_TIMEOUT:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Base64url without padding, as JWTs encode their parts.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWT built by hand from any header and claims, with `signature` as its third part.
pub fn raw_token(header: Value, claims: Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes()),
        signature
    )
}

/// The claims of a valid access token for `user_id` (any JSON value).
pub fn access_claims(user_id: Value) -> Value {
    json!({
        "token_type": "access",
        "exp": chrono::Utc::now().timestamp() + 300,
        "iat": chrono::Utc::now().timestamp(),
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "user_id": user_id,
    })
}

impl TestApp {
    /// `ws://127.0.0.1:<port>/ws/chat` without a token.
    pub fn ws_base_url(&self) -> String {
        format!("ws://{}/ws/chat", self.address)
    }

    /// Tries a WebSocket handshake with `?token=` (or no token at all).
    pub async fn try_connect(
        &self,
        token: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let url = match token {
            Some(token) => self.ws_url(token),
            None => self.ws_base_url(),
        };
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        let mut client = WsClient { stream };
        client.expect("unread").await;
        Ok(client)
    }

    /// Tries a WebSocket handshake with the token in `Authorization: Bearer`.
    pub async fn try_connect_bearer(
        &self,
        token: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::{
            client::IntoClientRequest,
            http::{HeaderValue, header::AUTHORIZATION},
        };
        let mut request = self
            .ws_base_url()
            .into_client_request()
            .expect("valid WebSocket URL");
        request.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token fits a header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        let mut client = WsClient { stream };
        client.expect("unread").await;
        Ok(client)
    }

    /// GET with a given bearer token (`None`: no `Authorization` header).
    pub async fn get_with_token(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// POST any body (with its content type) with `user_id`'s bearer token.
    pub async fn post_raw(&self, user_id: i64, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token(user_id))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// The OpenAPI document the service serves (no token needed).
    pub async fn openapi(&self) -> Value {
        let response = self.get_with_token(None, "/openapi.json").await;
        assert_eq!(response.status(), 200, "GET /openapi.json");
        response.json().await.expect("JSON body")
    }

    /// GET as `user_id` that must answer 200; returns the JSON body.
    pub async fn get_json(&self, user_id: i64, path: &str) -> Value {
        let response = self.get(user_id, path).await;
        assert_eq!(response.status(), 200, "GET {path} as user {user_id}");
        response.json().await.expect("JSON body")
    }

    /// The entry of `message_id` in `user_id`'s history of `chat_id` (its newest page).
    pub async fn history_entry(&self, user_id: i64, chat_id: i64, message_id: &Value) -> Value {
        let history = self
            .get_json(user_id, &format!("/chats/{chat_id}/messages"))
            .await;
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|m| &m["message_id"] == message_id)
            .cloned()
            .unwrap_or_else(|| panic!("message {message_id} in history: {history}"))
    }
}

impl WsClient {
    /// Sends any WebSocket message (binary, raw text).
    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("frame sent");
    }

    /// The next frame, which must be an `error` with `code`, `detail` and `error` (equal to
    /// `detail`, for the Python service's clients); returns it.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.expect("error").await;
        assert_eq!(frame["code"], code, "error code of {frame}");
        let detail = frame["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "detail is a non-empty string: {frame}");
        assert_eq!(
            frame["error"], frame["detail"],
            "error repeats detail: {frame}"
        );
        frame
    }
}

impl TestApp {
    /// [`TestApp::try_start_again`] with some settings changed.
    pub async fn try_start_again_with(&mut self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        for (name, value) in settings {
            self.vars.insert((*name).to_owned(), (*value).to_owned());
        }
        self.try_start_again().await
    }

    /// Tries to start jetchat again on the same database and NATS; the start-up error if it
    /// refuses.
    pub async fn try_start_again(&mut self) -> anyhow::Result<()> {
        let config = Config::from_lookup(|k| self.vars.get(k).cloned()).expect("valid config");
        let shutdown = CancellationToken::new();
        let app = App::build(config, shutdown.clone()).await?;
        self.address = app.address();
        self.shutdown = shutdown;
        self.server = Some(tokio::spawn(app.run_until_stopped()));
        Ok(())
    }

    /// A connection of its own to the app's database.
    pub async fn database(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(&self.database_url)
            .await
            .expect("the app's database connects")
    }
}

/// The messages of the stream `name` (e.g. `CHAT_DLQ`), oldest first: subject, headers and
/// payload.
pub async fn stream_messages(
    app: &TestApp,
    name: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let js = async_nats::jetstream::new(app.nats().await);
    let stream = js.get_stream(name).await.expect("the stream exists");
    let info = stream.cached_info().state.clone();
    let mut messages = Vec::new();
    for seq in info.first_sequence..=info.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            messages.push(message);
        }
    }
    messages
}

/// A jetchat process in the embedded mode, as `scripts/run.sh` starts it: no `NATS_URL`, so
/// it starts and supervises its own nats-server under its own `DATA_DIR`.
pub struct EmbeddedProcess {
    pub child: std::process::Child,
    pub address: SocketAddr,
    /// `DATA_DIR`: the SQLite file and the nats-server's store and pid file (shared with a
    /// later process on the same directory).
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

/// The command that starts the `jetchat` binary in the embedded mode on `dir` and `address`
/// (tests add their own settings, pipes or process group before [`start_embedded`]).
pub fn embedded_command(dir: &std::path::Path, address: SocketAddr) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"));
    command
        .arg("serve")
        .env_remove("NATS_URL")
        .env("JWT_SECRET", SECRET)
        .env("BIND_ADDR", address.to_string())
        .env("DATA_DIR", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("jetchat.db").display()),
        )
        .env("MEDIA_DIR", dir.join("media"))
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null());
    if std::env::var_os("TEST_LOG").is_none() {
        command.stderr(std::process::Stdio::null());
    }
    command
}

/// A free loopback address for a process to listen on.
pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `command` (from [`embedded_command`]) and waits until it answers `/healthz`.
pub async fn start_embedded(
    mut command: std::process::Command,
    address: SocketAddr,
    dir: impl Into<std::sync::Arc<tempfile::TempDir>>,
) -> EmbeddedProcess {
    let child = command.spawn().expect("jetchat starts");
    let mut process = EmbeddedProcess {
        child,
        address,
        dir: dir.into(),
    };
    let health = format!("http://{address}/healthz");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + POLL_TIMEOUT;
    loop {
        if let Some(status) = process.child.try_wait().expect("child status") {
            panic!("jetchat exited at start-up: {status}");
        }
        match http.get(&health).send().await {
            Ok(r) if r.status() == 200 => return process,
            last => assert!(
                tokio::time::Instant::now() < deadline,
                "jetchat not healthy within {POLL_TIMEOUT:?}: {last:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl EmbeddedProcess {
    /// The pid of its nats-server, from the pid file, checked to be jetchat's child.
    pub fn nats_pid(&self) -> u32 {
        let file = self.dir.path().join("nats").join("nats-server.pid");
        let pid: u32 = std::fs::read_to_string(&file)
            .expect("the pid file exists")
            .trim()
            .parse()
            .expect("a pid");
        assert_eq!(
            proc_stat(pid).expect("nats-server runs").parent,
            self.child.id(),
            "the nats-server is jetchat's child"
        );
        pid
    }

    /// Sends `signal` to jetchat.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("signal sent");
    }

    /// Waits (bounded) for jetchat to exit and returns its status.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + POLL_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jetchat did not exit within {POLL_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for EmbeddedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc/<pid>/stat` says of a process.
pub struct ProcStat {
    /// One letter: `R`, `S`, `T` (stopped), `Z` (zombie)…
    pub state: char,
    pub parent: u32,
    pub process_group: u32,
}

/// The process's state, or `None` when there is no such process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let process_group = fields.next()?.parse().ok()?;
    Some(ProcStat {
        state,
        parent,
        process_group,
    })
}

/// True while `pid` is a process that has not exited (a zombie has).
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Waits (bounded) until `pid` has exited.
pub async fn gone(what: &str, pid: u32) {
    eventually(what, || async {
        if alive(pid) {
            Err(format!("process {pid} still runs"))
        } else {
            Ok(())
        }
    })
    .await
}

/// Waits until the persister has finished every command of `CHAT_IN`.
pub async fn pipeline_drained(app: &TestApp) {
    let js = async_nats::jetstream::new(app.nats().await);
    eventually("the persister has finished every command", || async {
        let info = persister_consumer(&js).await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} pending, {} unacked",
                info.num_pending, info.num_ack_pending
            ))
        }
    })
    .await;
}

/// A frame of a stored change without its `cursor`, which must be a positive integer (for
/// comparing whole frames).
pub fn without_cursor(mut frame: Value) -> Value {
    let cursor = frame
        .as_object_mut()
        .and_then(|f| f.remove("cursor"))
        .unwrap_or_else(|| panic!("a change's frame carries a cursor: {frame}"));
    assert!(cursor.as_u64().is_some_and(|c| c > 0), "cursor {cursor}");
    frame
}

/// A consistent copy of a database, as an operator takes it before trimming `CHAT_IN`:
/// SQLite's `VACUUM INTO`, or PostgreSQL's `pg_dump` (`TEST_PG_BIN`).
pub struct Snapshot {
    /// The SQLite file, or the `pg_dump` script.
    file: PathBuf,
    postgres: bool,
}

impl Snapshot {
    /// Takes a snapshot of the database at `url` into `dir`.
    pub async fn take(url: &str, dir: &std::path::Path) -> Snapshot {
        use sea_orm::ConnectionTrait;
        let name = uuid::Uuid::new_v4().simple().to_string();
        if url.starts_with("sqlite:") {
            let file = dir.join(format!("snapshot-{name}.db"));
            let db = sea_orm::Database::connect(url).await.unwrap();
            db.execute_unprepared(&format!("VACUUM INTO '{}'", file.display()))
                .await
                .expect("VACUUM INTO");
            db.close().await.ok();
            return Snapshot {
                file,
                postgres: false,
            };
        }
        let file = dir.join(format!("snapshot-{name}.sql"));
        let status = std::process::Command::new(pg_bin().join("pg_dump"))
            .args(["--no-owner", "-f"])
            .arg(&file)
            .arg(format!("--dbname={url}"))
            .status()
            .expect("pg_dump runs");
        assert!(status.success(), "pg_dump: {status}");
        Snapshot {
            file,
            postgres: true,
        }
    }

    /// The snapshot restored into a database of its own (a copy of the file on SQLite, a
    /// new database on the `TEST_DATABASE_URL` server): its URL.
    pub async fn restore(&self, dir: &std::path::Path) -> String {
        if !self.postgres {
            let copy = dir.join(format!("restored-{}.db", uuid::Uuid::new_v4().simple()));
            std::fs::copy(&self.file, &copy).expect("the snapshot is copied");
            return format!("sqlite://{}", copy.display());
        }
        let url = fresh_database_url(dir).await;
        let output = std::process::Command::new(pg_bin().join("psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&self.file)
            .arg(format!("--dbname={url}"))
            .output()
            .expect("psql runs");
        assert!(output.status.success(), "psql: {output:?}");
        url
    }
}

/// PostgreSQL's binaries, for `pg_dump` and `psql` (scripts/test.sh sets `TEST_PG_BIN`).
fn pg_bin() -> PathBuf {
    std::env::var_os("TEST_PG_BIN").map(PathBuf::from).expect(
        "TEST_PG_BIN: snapshots of PostgreSQL need pg_dump and psql (scripts/test.sh sets it)",
    )
}
