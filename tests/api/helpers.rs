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
    pub database_url: String,
    pub dir: tempfile::TempDir,
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
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("jetchat.db").display()
    );
    let mut vars: HashMap<String, String> = HashMap::from([
        ("JWT_SECRET".into(), SECRET.into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("DATABASE_URL".into(), database_url.clone()),
        ("NATS_URL".into(), nats.url().into()),
        ("DATA_DIR".into(), dir.path().display().to_string()),
        (
            "MEDIA_DIR".into(),
            dir.path().join("media").display().to_string(),
        ),
    ]);
    for (k, v) in settings {
        vars.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test config");
    let shutdown = CancellationToken::new();
    let app = App::build(config, shutdown.clone())
        .await
        .expect("app builds");
    let address = app.address();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        nats_url: nats.url().to_owned(),
        database_url,
        dir,
        shutdown,
        server: Some(server),
        nats: Some(nats),
    }
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
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url(&token(user_id)))
            .await
            .expect("WebSocket handshake succeeds");
        WsClient { stream }
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

    /// The next frame, which must have `action`.
    pub async fn expect(&mut self, action: &str) -> Value {
        let frame = self.next().await;
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
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(wait, self.stream.next()).await
        {
            panic!("expected no frame, got {text}");
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
