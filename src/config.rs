//! Typed settings, read once from the environment (and `.env`) and validated at start-up.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use jsonwebtoken::Algorithm;
use secrecy::SecretSlice;

/// A setting that is missing or malformed; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// How JWTs are verified.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The signing algorithm; tokens with any other `alg` are refused.
    pub algorithm: Algorithm,
    /// HMAC secret (HS*) or PEM public key (RS*/ES*); `Debug` does not show it.
    pub key: SecretSlice<u8>,
    /// The claim that carries the user id (SimpleJWT's `USER_ID_CLAIM`).
    pub user_id_claim: String,
    /// `JWT_NAME_CLAIM`: the claim with the user's display name, recorded in the user
    /// directory when a socket opens or its token is refreshed; `None`: names come only from
    /// `upsert_user`.
    pub name_claim: Option<String>,
    /// `JWT_AVATAR_CLAIM`: the claim with the user's avatar URL, read with the name claim.
    pub avatar_claim: Option<String>,
    /// `JWT_ISSUER`: when set, tokens must carry this `iss` (SimpleJWT's `ISSUER`).
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, tokens must carry this `aud` (SimpleJWT's `AUDIENCE`).
    pub audience: Option<String>,
}

/// Everything jetchat needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the HTTP and WebSocket server listens.
    pub bind_addr: SocketAddr,
    /// How long a connection may take to send a whole request head (from when the server
    /// starts waiting for one, an idle keep-alive connection included) before it is closed.
    pub header_read_timeout: Duration,
    /// sea-orm connection string; SQLite by default.
    pub database_url: SecretUrl,
    /// An external NATS server; `None` starts the embedded one.
    pub nats_url: Option<SecretUrl>,
    /// The nats-server binary for the embedded mode.
    pub nats_server_bin: Option<PathBuf>,
    /// Root of the subjects and stream names (`chat` gives `chat.in.>` and `CHAT_IN`).
    pub subject_prefix: String,
    /// Replicas of the streams: 1 alone, 3 in a cluster.
    pub stream_replicas: usize,
    /// How long `CHAT_EVENTS` keeps events for consumers that were away.
    pub events_max_age: Duration,
    /// Local state of the embedded mode: the SQLite file and the nats-server store.
    pub data_dir: PathBuf,
    /// Where uploaded media lives: blobs named by their SHA-256 and a `tmp/` staging area
    /// (with an object store, only the staging area).
    pub media_dir: PathBuf,
    /// `MEDIA_STORE`: where finished blobs are kept.
    pub media_store: MediaStore,
    /// Largest file `POST /upload` takes, in bytes.
    pub max_upload_bytes: u64,
    /// Bytes one user may have uploaded in all (0: no quota).
    pub upload_quota_bytes: u64,
    /// How long a signed media URL stays valid.
    pub media_url_ttl: Duration,
    /// The key of signed media URLs; `None` derives it from the JWT secret.
    pub media_url_secret: Option<SecretSlice<u8>>,
    /// Token verification.
    pub jwt: JwtSettings,
    /// Largest WebSocket frame accepted; larger ones close the socket with 1009.
    pub max_frame_bytes: usize,
    /// Longest message content, in characters.
    pub max_content_chars: usize,
    /// How long after sending a message its author may edit it; `None` (the default): always.
    pub edit_window: Option<Duration>,
    /// Frames queued for one socket before it is closed as a slow consumer.
    pub socket_queue: usize,
    /// How long a kicked or shut-down socket may take to accept its close frame before the
    /// connection is dropped.
    pub socket_close_grace: Duration,
    /// Most commands the persister writes in one transaction.
    pub persist_batch: usize,
    /// How long the persister waits for more commands before it writes a batch that is not
    /// full: fewer, larger transactions for a little latency.
    pub persist_linger: Duration,
    /// How long a command may stay unacked before JetStream hands it to another persister
    /// (an instance that died mid-batch).
    pub persist_ack_wait: Duration,
    /// Partitions of `CHAT_IN` when jetchat creates it: each chat's commands are in one, and
    /// one persister at a time writes a partition. An existing stream keeps its own count.
    pub persist_partitions: u16,
    /// How long a partition's persister may stop pulling (its instance died) before
    /// JetStream hands the partition to another instance's persister.
    pub persist_handover: Duration,
    /// How long a REST call waits for the persister's outcome.
    pub command_timeout: Duration,
    /// Mark messages delivered when they are pushed to a socket (the Python service did);
    /// clients may still send `delivered` themselves.
    pub auto_delivered: bool,
    /// How long the persister may make no progress while commands wait before `/healthz`
    /// answers 503.
    pub persist_stall: Duration,
    /// Most changes a reconnecting client is caught up with; further behind, it is told to
    /// reload from history (`resync_required`).
    pub sync_max: u64,
    /// How far before a client's cursor a catch-up starts again, for changes that reached it
    /// out of order (they come again with the same cursor).
    pub sync_overlap: Duration,
    /// How long the change journal behind `sync` keeps a change.
    pub sync_retention: Duration,
    /// `PUSH_AFTER`: how long a message from others may reach none of a member's sockets
    /// before `push_needed` asks Django to notify the member's devices (zero: never).
    pub push_after: Duration,
    /// How long the graceful shutdown may take before the process exits with an error.
    pub shutdown_timeout: Duration,
    /// How long past its token's `exp` a socket may stay open (clock skew between Django and
    /// jetchat, a refresh on its way) before it is closed with 4001.
    pub token_expiry_grace: Duration,
    /// Sustained `send_message` frames per second per user (0: no limit).
    pub rate_messages_per_sec: u32,
    /// How many sends a user may make at once before the sustained rate applies.
    pub rate_messages_burst: u32,
    /// Sustained marks (`delivered`, `acknowledge`) per second per user (0: no limit).
    pub rate_marks_per_sec: u32,
    /// How many marks a user may send at once.
    pub rate_marks_burst: u32,
    /// Chats a user may create a minute through `POST /chats/` (0: no limit).
    pub rate_chats_per_min: u32,
    /// Files a user may upload a minute through `POST /upload` (0: no limit).
    pub rate_uploads_per_min: u32,
    /// Sockets one user may hold open on this instance (0: no limit).
    pub max_sockets_per_user: usize,
    /// `PRESENCE`: whether presence is tracked and told (`off` is the privacy switch).
    pub presence: bool,
    /// How long an instance's heartbeat counts after its last refresh: its users are offline
    /// this long after it dies (refreshed every third of it).
    pub presence_ttl: Duration,
    /// How long after a user's last socket closes they still count as online: a reconnect
    /// within it is no change at all.
    pub presence_grace: Duration,
    /// `PRESENCE_MAX_MEMBERS`: presence changes are pushed into chats of at most this many
    /// members (0: every chat). In a larger group every member's connect would be a frame to
    /// every other member; its members ask for presence instead (`GET /chats/{id}/presence`,
    /// the `presence` action).
    pub presence_max_members: u64,
    /// How long a `typing` lasts without a refresh before the server tells `stopped`.
    pub typing_timeout: Duration,
    /// Sustained `typing` frames per second per socket (0: no limit).
    pub rate_typing_per_sec: u32,
    /// How many `typing` frames a socket may send at once.
    pub rate_typing_burst: u32,
    /// Browser origins allowed to call REST (CORS) and open sockets (`Origin` check).
    pub cors_allowed_origins: crate::origins::AllowedOrigins,
    /// Whether `GET /metrics` answers (`METRICS=on`, the default) or 404s (`off`).
    pub metrics: bool,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP collector traces are sent to (its base
    /// URL; `/v1/traces` is appended); `None` (the default): no traces at all.
    pub otlp_endpoint: Option<url::Url>,
    /// This instance's id, fresh at every start: its presence entry, its reply inbox and the
    /// `service.instance.id` of its traces.
    pub instance_id: std::sync::Arc<str>,
    /// `WEB_APP`: whether the embedded web app is served at `/` (on by default).
    pub web_app: bool,
    /// `DEV_LOGIN`: whether `POST /dev/token` hands out a token for any user (development).
    pub dev_login: DevLogin,
}

/// `DEV_LOGIN`: a token for any user, for whoever asks: for development only, so refused on a
/// bind reachable from other machines unless forced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevLogin {
    /// No `/dev/token` (the default).
    #[default]
    Off,
    /// `true`: `/dev/token` exists; only on a loopback `BIND_ADDR`.
    On,
    /// `force`: `/dev/token` exists on any bind (a demo behind a private network).
    Force,
}

impl DevLogin {
    /// Whether `/dev/token` answers.
    pub fn enabled(self) -> bool {
        self != DevLogin::Off
    }
}

fn dev_login(
    var: &impl Fn(&'static str) -> Option<String>,
    bind_addr: SocketAddr,
) -> Result<DevLogin, ConfigError> {
    let name = "DEV_LOGIN";
    let value = match var(name) {
        None => return Ok(DevLogin::Off),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => DevLogin::On,
            "off" | "false" | "0" | "no" => DevLogin::Off,
            "force" => DevLogin::Force,
            _ => {
                return Err(ConfigError {
                    name,
                    problem: format!("{raw:?} is not valid: use true, false or force"),
                });
            }
        },
    };
    if value == DevLogin::On && !bind_addr.ip().is_loopback() {
        return Err(ConfigError {
            name,
            problem: format!(
                "refused with BIND_ADDR={bind_addr}, which other machines can reach: anyone \
                 could sign in as any user. Bind to 127.0.0.1, or set DEV_LOGIN=force"
            ),
        });
    }
    Ok(value)
}

impl Config {
    /// Reads `.env` (if present) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any variable source; tests pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = database_url(&var, &data_dir);
        let algorithm = match var("JWT_ALGORITHM").as_deref().unwrap_or("HS256") {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(ConfigError {
                    name: "JWT_ALGORITHM",
                    problem: format!("{other:?} is not one of HS256, HS384, HS512, RS256, ES256"),
                });
            }
        };
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => var("JWT_SECRET")
                .ok_or(ConfigError {
                    name: "JWT_SECRET",
                    problem: "required: the Django SECRET_KEY or SimpleJWT SIGNING_KEY".into(),
                })?
                .into_bytes()
                .into(),
            _ => {
                let value = var("JWT_PUBLIC_KEY").ok_or(ConfigError {
                    name: "JWT_PUBLIC_KEY",
                    problem: format!(
                        "required with JWT_ALGORITHM={algorithm:?}: a PEM key or a path"
                    ),
                })?;
                if value.contains("-----BEGIN") {
                    value.into_bytes().into()
                } else {
                    std::fs::read(&value)
                        .map_err(|e| ConfigError {
                            name: "JWT_PUBLIC_KEY",
                            problem: format!("cannot read {value}: {e}"),
                        })?
                        .into()
                }
            }
        };
        let subject_prefix = subject_prefix(&var)?;
        let bind_addr = parse(&var, "BIND_ADDR", "127.0.0.1:8000")?;
        Ok(Config {
            bind_addr,
            header_read_timeout: positive(
                parse::<humantime::Duration>(&var, "HEADER_READ_TIMEOUT", "30s")?.into(),
                "HEADER_READ_TIMEOUT",
            )?,
            database_url: SecretUrl(database_url),
            nats_url: var("NATS_URL").map(SecretUrl),
            nats_server_bin: var("NATS_SERVER_BIN").map(PathBuf::from),
            subject_prefix,
            stream_replicas: parse(&var, "NATS_STREAM_REPLICAS", "1")?,
            events_max_age: parse::<humantime::Duration>(&var, "EVENTS_MAX_AGE", "7d")?.into(),
            media_dir: PathBuf::from(var("MEDIA_DIR").unwrap_or_else(|| "media".into())),
            media_store: media_store(&var)?,
            max_upload_bytes: positive(
                parse(&var, "MAX_UPLOAD_BYTES", "104857600")?,
                "MAX_UPLOAD_BYTES",
            )?,
            upload_quota_bytes: parse(&var, "UPLOAD_QUOTA_BYTES", "1073741824")?,
            media_url_ttl: positive(
                parse::<humantime::Duration>(&var, "MEDIA_URL_TTL", "1h")?.into(),
                "MEDIA_URL_TTL",
            )?,
            media_url_secret: var("MEDIA_URL_SECRET").map(|s| s.into_bytes().into()),
            data_dir,
            jwt: JwtSettings {
                algorithm,
                key,
                user_id_claim: var("JWT_USER_ID_CLAIM").unwrap_or_else(|| "user_id".into()),
                name_claim: claim_name(&var, "JWT_NAME_CLAIM", "name"),
                avatar_claim: claim_name(&var, "JWT_AVATAR_CLAIM", "avatar"),
                issuer: var("JWT_ISSUER"),
                audience: var("JWT_AUDIENCE"),
            },
            max_frame_bytes: parse(&var, "MAX_FRAME_BYTES", "65536")?,
            max_content_chars: parse(&var, "MAX_CONTENT_CHARS", "10000")?,
            edit_window: edit_window(&var)?,
            socket_queue: at_least_one(parse(&var, "SOCKET_QUEUE", "1024")?, "SOCKET_QUEUE")?,
            socket_close_grace: parse::<humantime::Duration>(&var, "SOCKET_CLOSE_GRACE", "30s")?
                .into(),
            persist_batch: parse(&var, "PERSIST_BATCH", "500")?,
            persist_linger: parse::<humantime::Duration>(&var, "PERSIST_LINGER", "0s")?.into(),
            persist_ack_wait: parse::<humantime::Duration>(&var, "PERSIST_ACK_WAIT", "10s")?.into(),
            // One partition on the embedded set-up (one instance), four where instances share
            // a NATS.
            persist_partitions: partition_count(parse(
                &var,
                "PERSIST_PARTITIONS",
                if var("NATS_URL").is_some() { "4" } else { "1" },
            )?)?,
            // A persister renews its pull every second or so.
            persist_handover: at_least(
                parse::<humantime::Duration>(&var, "PERSIST_HANDOVER", "10s")?.into(),
                Duration::from_secs(2),
                "PERSIST_HANDOVER",
            )?,
            command_timeout: Duration::from_millis(parse(&var, "COMMAND_TIMEOUT_MS", "10000")?),
            auto_delivered: parse(&var, "AUTO_DELIVERED", "true")?,
            persist_stall: positive(
                parse::<humantime::Duration>(&var, "PERSIST_STALL", "30s")?.into(),
                "PERSIST_STALL",
            )?,
            sync_max: parse(&var, "SYNC_MAX", "5000")?,
            sync_overlap: parse::<humantime::Duration>(&var, "SYNC_OVERLAP", "2s")?.into(),
            sync_retention: positive(
                parse::<humantime::Duration>(&var, "SYNC_RETENTION", "7d")?.into(),
                "SYNC_RETENTION",
            )?,
            push_after: parse::<humantime::Duration>(&var, "PUSH_AFTER", "30s")?.into(),
            shutdown_timeout: positive(
                parse::<humantime::Duration>(&var, "SHUTDOWN_TIMEOUT", "60s")?.into(),
                "SHUTDOWN_TIMEOUT",
            )?,
            token_expiry_grace: parse::<humantime::Duration>(&var, "TOKEN_EXPIRY_GRACE", "5s")?
                .into(),
            rate_messages_per_sec: parse(&var, "RATE_MESSAGES_PER_SEC", "20")?,
            rate_messages_burst: burst(&var, "RATE_MESSAGES_BURST", "60", "RATE_MESSAGES_PER_SEC")?,
            rate_marks_per_sec: parse(&var, "RATE_MARKS_PER_SEC", "50")?,
            rate_marks_burst: burst(&var, "RATE_MARKS_BURST", "200", "RATE_MARKS_PER_SEC")?,
            rate_chats_per_min: parse(&var, "RATE_CHATS_PER_MIN", "30")?,
            rate_uploads_per_min: parse(&var, "RATE_UPLOADS_PER_MIN", "60")?,
            max_sockets_per_user: parse(&var, "MAX_SOCKETS_PER_USER", "20")?,
            presence: switch(&var, "PRESENCE", true)?,
            presence_ttl: at_least(
                parse::<humantime::Duration>(&var, "PRESENCE_TTL", "30s")?.into(),
                Duration::from_millis(300),
                "PRESENCE_TTL",
            )?,
            presence_grace: parse::<humantime::Duration>(&var, "PRESENCE_GRACE", "5s")?.into(),
            presence_max_members: parse(&var, "PRESENCE_MAX_MEMBERS", "250")?,
            typing_timeout: positive(
                parse::<humantime::Duration>(&var, "TYPING_TIMEOUT", "6s")?.into(),
                "TYPING_TIMEOUT",
            )?,
            rate_typing_per_sec: parse(&var, "RATE_TYPING_PER_SEC", "2")?,
            rate_typing_burst: burst(&var, "RATE_TYPING_BURST", "5", "RATE_TYPING_PER_SEC")?,
            cors_allowed_origins: crate::origins::AllowedOrigins::parse(
                &var("CORS_ALLOWED_ORIGINS").unwrap_or_default(),
            )
            .map_err(|e| ConfigError {
                name: "CORS_ALLOWED_ORIGINS",
                problem: e.to_string(),
            })?,
            metrics: switch(&var, "METRICS", true)?,
            web_app: switch(&var, "WEB_APP", true)?,
            dev_login: dev_login(&var, bind_addr)?,
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|raw| otlp_endpoint(&raw))
                .transpose()?,
            instance_id: uuid::Uuid::new_v4().simple().to_string().into(),
        })
    }
}

/// What the operator commands (`replay`, `streams`, `reproject`) need: where NATS is.
#[derive(Clone, Debug)]
pub struct OpsConfig {
    /// `NATS_URL`, else the URL the embedded nats-server of `serve` wrote under `DATA_DIR`.
    pub nats_url: Option<SecretUrl>,
    /// `NATS_SERVER_BIN`, for the embedded nats-server a command starts when jetchat is not
    /// running.
    pub nats_server_bin: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// `DATABASE_URL` as `serve` reads it: `continue-stream` checks its newest message.
    pub database_url: SecretUrl,
    pub subject_prefix: String,
    /// `MAX_CONTENT_CHARS`, which `reproject` applies as the persister did.
    pub max_content_chars: usize,
    /// `EDIT_WINDOW`, which `reproject` applies as the persister did.
    pub edit_window: Option<Duration>,
}

impl OpsConfig {
    /// Reads `.env` (if present) and the environment; no JWT settings needed.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let var = |name: &'static str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".into()));
        Ok(OpsConfig {
            nats_url: var("NATS_URL").map(SecretUrl),
            nats_server_bin: var("NATS_SERVER_BIN").map(PathBuf::from),
            database_url: SecretUrl(database_url(&var, &data_dir)),
            data_dir,
            subject_prefix: subject_prefix(&var)?,
            max_content_chars: parse(&var, "MAX_CONTENT_CHARS", "10000")?,
            edit_window: edit_window(&var)?,
        })
    }
}

/// `MEDIA_STORE`: where finished blobs are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaStore {
    /// `local` (the default): `<MEDIA_DIR>/blobs`.
    Local,
    /// `s3://bucket/prefix`: an S3-compatible bucket.
    S3(Box<S3Settings>),
}

/// An S3-compatible bucket (AWS, MinIO, Ceph, ...); `Debug` hides the secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Keys are written under this prefix (no leading or trailing `/`; empty: the root).
    pub prefix: String,
    /// `MEDIA_S3_ENDPOINT`, else `AWS_ENDPOINT_URL`: a MinIO or Ceph URL; `None`: AWS.
    pub endpoint: Option<url::Url>,
    /// `MEDIA_S3_REGION`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: String,
    /// `MEDIA_S3_PATH_STYLE`: `https://endpoint/bucket/key` instead of
    /// `https://bucket.endpoint/key`; on by default with a custom endpoint.
    pub path_style: bool,
    /// Plain `http://` to the endpoint: always on a loopback host, elsewhere only with
    /// `MEDIA_S3_ALLOW_HTTP=on`.
    pub allow_http: bool,
    /// `AWS_ACCESS_KEY_ID`; `None`: the SDK chain (web identity, container, instance role).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretText>,
    /// `AWS_SESSION_TOKEN`, with temporary keys.
    pub session_token: Option<SecretText>,
    /// `MEDIA_REDIRECT=presigned`: `GET /media/{id}` answers an authorized request with a 302
    /// to a presigned URL of the object, valid this long (`MEDIA_REDIRECT_TTL`), instead of
    /// streaming it; `None` (`MEDIA_REDIRECT=off`, the default): jetchat streams.
    pub redirect: Option<Duration>,
}

/// A secret setting: `Debug` prints `***`, [`SecretText::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        SecretText(value.into())
    }

    /// The value, to authenticate with; never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// `MEDIA_STORE` and, for a bucket, its `MEDIA_S3_*` and `AWS_*` settings.
fn media_store(var: &impl Fn(&'static str) -> Option<String>) -> Result<MediaStore, ConfigError> {
    let redirect = match var("MEDIA_REDIRECT").as_deref().map(str::trim) {
        None | Some("off") => None,
        Some("presigned") => {
            let ttl: Duration =
                parse::<humantime::Duration>(var, "MEDIA_REDIRECT_TTL", "5m")?.into();
            // SigV4 presigned URLs live at most seven days.
            if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(7 * 24 * 3600) {
                return Err(ConfigError {
                    name: "MEDIA_REDIRECT_TTL",
                    problem: "must be between 1s and 7d".into(),
                });
            }
            Some(ttl)
        }
        Some(other) => {
            return Err(ConfigError {
                name: "MEDIA_REDIRECT",
                problem: format!("{other:?} is not valid: use off or presigned"),
            });
        }
    };
    let raw = var("MEDIA_STORE").unwrap_or_else(|| "local".into());
    let raw = raw.trim();
    if raw == "local" {
        if redirect.is_some() {
            return Err(ConfigError {
                name: "MEDIA_REDIRECT",
                problem: "presigned needs an object store (MEDIA_STORE=s3://...)".into(),
            });
        }
        return Ok(MediaStore::Local);
    }
    let problem = |problem: String| ConfigError {
        name: "MEDIA_STORE",
        problem,
    };
    let Some(rest) = raw.strip_prefix("s3://") else {
        return Err(problem(format!(
            "{raw:?} is not valid: use local or s3://bucket/prefix"
        )));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // S3's bucket naming rules, which MinIO and Ceph share.
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(problem(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
        )));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..")
        || prefix.contains("//")
        || prefix.chars().any(char::is_control)
    {
        return Err(problem(format!("{prefix:?} is not a valid key prefix")));
    }
    let endpoint_name = if var("MEDIA_S3_ENDPOINT").is_some() {
        "MEDIA_S3_ENDPOINT"
    } else {
        "AWS_ENDPOINT_URL"
    };
    let endpoint = var(endpoint_name)
        .map(|raw| {
            let url = url::Url::parse(raw.trim()).map_err(|e| ConfigError {
                name: endpoint_name,
                problem: format!("not a URL: {e}"),
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(ConfigError {
                    name: endpoint_name,
                    problem: format!("{:?} is not an http(s) URL with a host", url.as_str()),
                });
            }
            Ok(url)
        })
        .transpose()?;
    let loopback = endpoint.as_ref().is_some_and(|url| match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    });
    let allow_http = switch(var, "MEDIA_S3_ALLOW_HTTP", false)? || loopback;
    if let Some(url) = &endpoint
        && url.scheme() == "http"
        && !allow_http
    {
        return Err(ConfigError {
            name: endpoint_name,
            problem: format!(
                "{:?} is plain http to another machine: use https, or set \
                 MEDIA_S3_ALLOW_HTTP=on for a private network",
                url.as_str()
            ),
        });
    }
    let access_key_id = var("AWS_ACCESS_KEY_ID").map(|v| v.trim().to_owned());
    let secret_access_key = var("AWS_SECRET_ACCESS_KEY").map(SecretText);
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(ConfigError {
            name: if access_key_id.is_some() {
                "AWS_SECRET_ACCESS_KEY"
            } else {
                "AWS_ACCESS_KEY_ID"
            },
            problem: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together".into(),
        });
    }
    Ok(MediaStore::S3(Box::new(S3Settings {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        path_style: switch(var, "MEDIA_S3_PATH_STYLE", endpoint.is_some())?,
        endpoint,
        region: var("MEDIA_S3_REGION")
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "us-east-1".into()),
        allow_http,
        access_key_id,
        secret_access_key,
        session_token: var("AWS_SESSION_TOKEN").map(SecretText),
        redirect,
    })))
}

/// `DATABASE_URL`, else the SQLite file under `DATA_DIR`.
fn database_url(var: &impl Fn(&'static str) -> Option<String>, data_dir: &Path) -> String {
    var("DATABASE_URL").unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("jetchat.db").display()
        )
    })
}

/// A connection URL that may carry a password (`DATABASE_URL`, `NATS_URL`): `Debug` and
/// `Display` show it through [`redact_url`]; [`SecretUrl::expose`] gives the real one to the
/// code that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its credentials, to connect with; never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// Query parameters whose values are secrets (libpq's `password` and `sslpassword`, a token).
const SECRET_PARAMETERS: [&str; 3] = ["password", "sslpassword", "token"];

/// `url` fit to print: the password of `user:password@` (or a bare `token@`, as NATS takes
/// one) and the values of `password`-like query parameters become `***`. A comma-separated
/// list (a NATS cluster's `NATS_URL`) is redacted server by server.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(redact_one_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    // As the WHATWG URL parser reads it: the authority ends at the first '/', '?' or '#', and
    // the user information at the authority's last '@' (a password may hold a raw '@').
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((query, fragment)) => (query, Some(fragment)),
                None => (query, None),
            };
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _))
                        if SECRET_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            match fragment {
                Some(fragment) => format!("{path}?{query}#{fragment}"),
                None => format!("{path}?{query}"),
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

fn subject_prefix(var: &impl Fn(&'static str) -> Option<String>) -> Result<String, ConfigError> {
    let prefix = var("NATS_SUBJECT_PREFIX").unwrap_or_else(|| "chat".into());
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !prefix.split('.').all(token_ok) {
        return Err(ConfigError {
            name: "NATS_SUBJECT_PREFIX",
            problem: format!(
                "{prefix:?} must be dot-separated tokens of letters, digits, '-' or '_'"
            ),
        });
    }
    Ok(prefix)
}

/// `EDIT_WINDOW`: a duration (`15m`), or unset / `unlimited` for no limit.
fn edit_window(
    var: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    match var("EDIT_WINDOW") {
        None => Ok(None),
        Some(v) if v.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
        Some(_) => parse::<humantime::Duration>(var, "EDIT_WINDOW", "").map(|d| Some(d.into())),
    }
}

/// Refuses a zero for settings where zero would disable the feature by accident.
/// A claim name setting: unset gives `default`, `off` turns the claim off.
fn claim_name(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Option<String> {
    match var(name) {
        None => Some(default.to_owned()),
        Some(value) if value.trim().eq_ignore_ascii_case("off") => None,
        Some(value) => Some(value.trim().to_owned()),
    }
}

fn positive<T: Default + PartialEq>(value: T, name: &'static str) -> Result<T, ConfigError> {
    if value == T::default() {
        return Err(ConfigError {
            name,
            problem: "must be greater than zero".into(),
        });
    }
    Ok(value)
}

/// A partition count: 1 to 1024.
fn partition_count(partitions: u16) -> Result<u16, ConfigError> {
    if !(1..=1024).contains(&partitions) {
        return Err(ConfigError {
            name: "PERSIST_PARTITIONS",
            problem: format!("{partitions} is not between 1 and 1024"),
        });
    }
    Ok(partitions)
}

/// Refuses a duration below `min` (a heartbeat refreshed every third of it must stay sane).
fn at_least(value: Duration, min: Duration, name: &'static str) -> Result<Duration, ConfigError> {
    if value < min {
        return Err(ConfigError {
            name,
            problem: format!("must be at least {}", humantime::format_duration(min)),
        });
    }
    Ok(value)
}

/// Refuses 0 where nothing could work with it (a socket's queue of no frames).
fn at_least_one(value: usize, name: &'static str) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError {
            name,
            problem: "must be at least 1".into(),
        });
    }
    Ok(value)
}

/// A burst size: at least 1 while its rate (`rate_name`) is on.
fn burst(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: &str,
    rate_name: &'static str,
) -> Result<u32, ConfigError> {
    let burst: u32 = parse(var, name, default)?;
    let rate: u32 = var(rate_name)
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(1);
    if burst == 0 && rate != 0 {
        return Err(ConfigError {
            name,
            problem: format!("must be at least 1 while {rate_name} is not 0"),
        });
    }
    Ok(burst)
}

/// An on/off setting: `on`/`off`, `true`/`false`, `1`/`0` (any case).
/// An OTLP/HTTP base URL: http or https, with a host.
fn otlp_endpoint(raw: &str) -> Result<url::Url, ConfigError> {
    let problem = |problem: String| ConfigError {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        problem,
    };
    let url = url::Url::parse(raw.trim()).map_err(|e| problem(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(problem(format!(
            "{:?} is not an http(s) URL with a host",
            url.as_str()
        )));
    }
    Ok(url)
}

fn switch(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError {
            name,
            problem: format!("{raw:?} is not valid: use on or off"),
        }),
    }
}

fn parse<T: std::str::FromStr>(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = var(name).unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(|e| ConfigError {
        name,
        problem: format!("{raw:?} is not valid: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn jwt_secret_is_required_and_named() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.name, "JWT_SECRET");
    }

    #[test]
    fn defaults_apply() {
        let c = config(&[("JWT_SECRET", "s")]).unwrap();
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.header_read_timeout, Duration::from_secs(30));
        assert_eq!(c.database_url.expose(), "sqlite://data/jetchat.db?mode=rwc");
        assert!(c.nats_url.is_none());
        assert_eq!(c.jwt.user_id_claim, "user_id");
        assert_eq!(c.subject_prefix, "chat");
        assert_eq!(c.max_upload_bytes, 100 * 1024 * 1024);
        assert_eq!(c.upload_quota_bytes, 1024 * 1024 * 1024);
        assert_eq!(c.media_url_ttl, Duration::from_secs(3600));
        assert!(c.media_url_secret.is_none());
        assert_eq!(c.token_expiry_grace, Duration::from_secs(5));
        assert_eq!((c.rate_messages_per_sec, c.rate_messages_burst), (20, 60));
        assert_eq!((c.rate_marks_per_sec, c.rate_marks_burst), (50, 200));
        assert_eq!((c.rate_chats_per_min, c.rate_uploads_per_min), (30, 60));
        assert_eq!(c.max_sockets_per_user, 20);
        assert!(c.cors_allowed_origins.is_none());
        assert!(c.metrics);
    }

    #[test]
    fn partitions_and_handover_default_by_set_up_and_refuse_what_cannot_work() {
        let c = config(&[("JWT_SECRET", "s")]).unwrap();
        assert_eq!(
            (c.persist_partitions, c.persist_handover),
            (1, Duration::from_secs(10))
        );
        let c = config(&[("JWT_SECRET", "s"), ("NATS_URL", "nats://n:4222")]).unwrap();
        assert_eq!(c.persist_partitions, 4);
        let c = config(&[("JWT_SECRET", "s"), ("PERSIST_PARTITIONS", "1024")]).unwrap();
        assert_eq!(c.persist_partitions, 1024);
        for bad in [
            "0",
            "1025",
            "-1",
            "65536",
            "abc",
            "4\0",
            "18446744073709551615",
        ] {
            let err = config(&[("JWT_SECRET", "s"), ("PERSIST_PARTITIONS", bad)]).unwrap_err();
            assert_eq!(err.name, "PERSIST_PARTITIONS", "{bad:?}");
        }
        for bad in ["0", "-1", "x"] {
            let err = config(&[("JWT_SECRET", "s"), ("SOCKET_QUEUE", bad)]).unwrap_err();
            assert_eq!(err.name, "SOCKET_QUEUE", "{bad:?}");
        }
        for bad in ["1s", "0s", "forever", "-5s"] {
            let err = config(&[("JWT_SECRET", "s"), ("PERSIST_HANDOVER", bad)]).unwrap_err();
            assert_eq!(err.name, "PERSIST_HANDOVER", "{bad:?}");
        }
    }

    #[test]
    fn web_app_and_dev_login_name_their_variable() {
        let c = config(&[("JWT_SECRET", "s")]).unwrap();
        assert!(c.web_app);
        assert_eq!(c.dev_login, DevLogin::Off);
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("WEB_APP", "off"),
            ("DEV_LOGIN", "TRUE"),
        ])
        .unwrap();
        assert!(!c.web_app);
        assert_eq!(c.dev_login, DevLogin::On);
        for (name, bad) in [
            ("WEB_APP", "maybe"),
            ("WEB_APP", "on\0"),
            ("DEV_LOGIN", "yes please"),
            ("DEV_LOGIN", "-1"),
            ("DEV_LOGIN", &"x".repeat(100_000)),
        ] {
            let err = config(&[("JWT_SECRET", "s"), (name, bad)]).unwrap_err();
            assert_eq!(err.name, name, "{bad:.20}");
        }
        // Any user's token for whoever asks: not on a bind other machines reach, unless forced.
        for bind in ["0.0.0.0:8000", "[::]:8000", "192.168.1.2:8000"] {
            let err = config(&[
                ("JWT_SECRET", "s"),
                ("BIND_ADDR", bind),
                ("DEV_LOGIN", "true"),
            ])
            .unwrap_err();
            assert_eq!(err.name, "DEV_LOGIN");
            assert!(err.problem.contains("DEV_LOGIN=force"), "{}", err.problem);
            let c = config(&[
                ("JWT_SECRET", "s"),
                ("BIND_ADDR", bind),
                ("DEV_LOGIN", "force"),
            ])
            .unwrap();
            assert_eq!(c.dev_login, DevLogin::Force);
        }
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("BIND_ADDR", "[::1]:0"),
            ("DEV_LOGIN", "on"),
        ]);
        assert_eq!(c.unwrap().dev_login, DevLogin::On);
    }

    #[test]
    fn origins_and_metrics_name_their_variable() {
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("CORS_ALLOWED_ORIGINS", "http://localhost:5173/"),
            ("METRICS", "OFF"),
        ])
        .unwrap();
        assert!(c.cors_allowed_origins.allows(b"http://localhost:5173"));
        assert!(!c.metrics);
        assert!(c.otlp_endpoint.is_none(), "traces are off by default");
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ])
        .unwrap();
        assert_eq!(
            c.otlp_endpoint.map(String::from).as_deref(),
            Some("http://collector:4318/")
        );
        for bad in [
            "collector:4318",
            "ftp://collector",
            "nonsense",
            "http://",
            "\0",
        ] {
            let err =
                config(&[("JWT_SECRET", "s"), ("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err();
            assert_eq!(err.name, "OTEL_EXPORTER_OTLP_ENDPOINT", "{bad}");
        }
        for bad in [
            "localhost:5173",
            "https://x.test/app",
            "null",
            "*,https://x.test",
        ] {
            let err = config(&[("JWT_SECRET", "s"), ("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert_eq!(err.name, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
        let err = config(&[("JWT_SECRET", "s"), ("METRICS", "maybe")]).unwrap_err();
        assert_eq!(err.name, "METRICS");
    }

    #[test]
    fn limits_turn_off_with_zero_and_a_burst_needs_its_rate() {
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("RATE_MESSAGES_PER_SEC", "0"),
            ("RATE_MESSAGES_BURST", "0"),
            ("MAX_SOCKETS_PER_USER", "0"),
        ])
        .unwrap();
        assert_eq!(c.rate_messages_per_sec, 0);
        assert_eq!(c.max_sockets_per_user, 0);
        let err = config(&[("JWT_SECRET", "s"), ("RATE_MARKS_BURST", "0")]).unwrap_err();
        assert_eq!(err.name, "RATE_MARKS_BURST");
        let err = config(&[("JWT_SECRET", "s"), ("RATE_CHATS_PER_MIN", "-1")]).unwrap_err();
        assert_eq!(err.name, "RATE_CHATS_PER_MIN");
        let err = config(&[("JWT_SECRET", "s"), ("TOKEN_EXPIRY_GRACE", "a bit")]).unwrap_err();
        assert_eq!(err.name, "TOKEN_EXPIRY_GRACE");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let err = config(&[("JWT_SECRET", "s"), ("BIND_ADDR", "nowhere")]).unwrap_err();
        assert_eq!(err.name, "BIND_ADDR");
        let err = config(&[("JWT_SECRET", "s"), ("JWT_ALGORITHM", "none")]).unwrap_err();
        assert_eq!(err.name, "JWT_ALGORITHM");
        let err = config(&[("JWT_SECRET", "s"), ("NATS_SUBJECT_PREFIX", "a..b")]).unwrap_err();
        assert_eq!(err.name, "NATS_SUBJECT_PREFIX");
        let err = config(&[("JWT_ALGORITHM", "RS256")]).unwrap_err();
        assert_eq!(err.name, "JWT_PUBLIC_KEY");
        let err = config(&[("JWT_SECRET", "s"), ("MAX_UPLOAD_BYTES", "100MB")]).unwrap_err();
        assert_eq!(err.name, "MAX_UPLOAD_BYTES");
        let err = config(&[("JWT_SECRET", "s"), ("MAX_UPLOAD_BYTES", "0")]).unwrap_err();
        assert_eq!(err.name, "MAX_UPLOAD_BYTES");
        let err = config(&[("JWT_SECRET", "s"), ("MEDIA_URL_TTL", "soon")]).unwrap_err();
        assert_eq!(err.name, "MEDIA_URL_TTL");
        let err = config(&[("JWT_SECRET", "s"), ("SHUTDOWN_TIMEOUT", "0s")]).unwrap_err();
        assert_eq!(err.name, "SHUTDOWN_TIMEOUT");
        for bad in ["0s", "soon", "-1s"] {
            let err = config(&[("JWT_SECRET", "s"), ("HEADER_READ_TIMEOUT", bad)]).unwrap_err();
            assert_eq!(err.name, "HEADER_READ_TIMEOUT", "{bad}");
        }
        for garbage in ["soon", "-5s", "30", "1e9999s"] {
            let err = config(&[("JWT_SECRET", "s"), ("PUSH_AFTER", garbage)]).unwrap_err();
            assert_eq!(err.name, "PUSH_AFTER", "{garbage}");
        }
        let c = config(&[("JWT_SECRET", "s")]).unwrap();
        assert_eq!(c.push_after, Duration::from_secs(30));
        let c = config(&[("JWT_SECRET", "s"), ("PUSH_AFTER", "0")]).unwrap();
        assert!(c.push_after.is_zero(), "0 turns pushes off");
    }

    #[test]
    fn presence_is_on_by_default_and_its_durations_are_checked() {
        let c = config(&[("JWT_SECRET", "s")]).unwrap();
        assert!(c.presence);
        assert_eq!(c.presence_ttl, Duration::from_secs(30));
        assert_eq!(c.presence_grace, Duration::from_secs(5));
        assert_eq!(c.presence_max_members, 250);
        assert_eq!(c.typing_timeout, Duration::from_secs(6));
        assert_eq!((c.rate_typing_per_sec, c.rate_typing_burst), (2, 5));
        for off in ["off", "OFF", "false", "0"] {
            assert!(
                !config(&[("JWT_SECRET", "s"), ("PRESENCE", off)])
                    .unwrap()
                    .presence
            );
        }
        for (name, value) in [
            ("PRESENCE", "maybe"),
            ("PRESENCE_TTL", "10ms"),
            ("PRESENCE_GRACE", "soon"),
            ("PRESENCE_MAX_MEMBERS", "-1"),
            ("PRESENCE_MAX_MEMBERS", "lots"),
            ("PRESENCE_MAX_MEMBERS", "99999999999999999999999"),
            ("PRESENCE_MAX_MEMBERS", "25\u{0}0"),
            ("TYPING_TIMEOUT", "0s"),
            ("RATE_TYPING_BURST", "0"),
        ] {
            let err = config(&[("JWT_SECRET", "s"), (name, value)]).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }

    #[test]
    fn urls_are_printed_without_passwords() {
        for (url, printed) in [
            (
                "postgres://jetchat:s3cret@db:5432/chat",
                "postgres://jetchat:***@db:5432/chat",
            ),
            // Percent-encoded, or a raw '@' that the URL parser takes as part of the password.
            (
                "postgres://u:p%40ss%3Aw@db/chat",
                "postgres://u:***@db/chat",
            ),
            ("postgres://u:p@ss@db/chat", "postgres://u:***@db/chat"),
            (
                "postgres://db/chat?user=u&password=s3cret&sslmode=require",
                "postgres://db/chat?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://db/chat?PassWord=s3cret#f",
                "postgres://db/chat?PassWord=***#f",
            ),
            (
                "nats://jetchat:s3cret@n1:4222, nats://jetchat:s3cret@n2:4222",
                "nats://jetchat:***@n1:4222, nats://jetchat:***@n2:4222",
            ),
            ("nats://s3cr3ttoken@n1:4222", "nats://***@n1:4222"),
            ("n1:4222,u:s3cret@n2", "n1:4222,u:***@n2"),
            // Nothing to hide: unchanged.
            (
                "sqlite://data/jetchat.db?mode=rwc",
                "sqlite://data/jetchat.db?mode=rwc",
            ),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ] {
            assert_eq!(redact_url(url), printed, "{url}");
        }
    }

    #[test]
    fn media_store_is_local_by_default_or_a_bucket() {
        assert_eq!(
            config(&[("JWT_SECRET", "s")]).unwrap().media_store,
            MediaStore::Local
        );
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("MEDIA_STORE", "s3://chat-media/prod/blobs/"),
            ("MEDIA_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3-s3cret"),
            ("AWS_REGION", "eu-west-1"),
            ("MEDIA_REDIRECT", "presigned"),
        ])
        .unwrap();
        let MediaStore::S3(s3) = &c.media_store else {
            panic!("{:?}", c.media_store)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("chat-media", "prod/blobs")
        );
        assert_eq!(s3.region, "eu-west-1");
        // A custom endpoint: path-style by default, and plain http on loopback.
        assert!(s3.path_style && s3.allow_http);
        assert_eq!(s3.redirect, Some(Duration::from_secs(300)));
        assert_eq!(s3.secret_access_key.as_ref().unwrap().expose(), "s3-s3cret");
        let on_aws = config(&[("JWT_SECRET", "s"), ("MEDIA_STORE", "s3://chat-media")]).unwrap();
        let MediaStore::S3(s3) = on_aws.media_store else {
            panic!()
        };
        assert_eq!((s3.prefix.as_str(), s3.region.as_str()), ("", "us-east-1"));
        assert!(!s3.path_style && !s3.allow_http && s3.endpoint.is_none());
        assert_eq!(s3.redirect, None, "jetchat streams by default");
    }

    #[test]
    fn bad_media_store_settings_name_their_variable() {
        for (vars, name) in [
            (vec![("MEDIA_STORE", "gcs://b")], "MEDIA_STORE"),
            (vec![("MEDIA_STORE", "s3://B_d")], "MEDIA_STORE"),
            (
                vec![("MEDIA_STORE", "s3://ok-bucket/a/../b")],
                "MEDIA_STORE",
            ),
            (vec![("MEDIA_REDIRECT", "presigned")], "MEDIA_REDIRECT"),
            (
                vec![("MEDIA_STORE", "s3://b-1"), ("MEDIA_REDIRECT", "yes")],
                "MEDIA_REDIRECT",
            ),
            (
                vec![
                    ("MEDIA_STORE", "s3://b-1"),
                    ("MEDIA_REDIRECT", "presigned"),
                    ("MEDIA_REDIRECT_TTL", "8d"),
                ],
                "MEDIA_REDIRECT_TTL",
            ),
            (
                vec![
                    ("MEDIA_STORE", "s3://b-1"),
                    ("MEDIA_S3_ENDPOINT", "minio:9000"),
                ],
                "MEDIA_S3_ENDPOINT",
            ),
            (
                vec![
                    ("MEDIA_STORE", "s3://b-1"),
                    ("AWS_ENDPOINT_URL", "http://minio:9000"),
                ],
                "AWS_ENDPOINT_URL",
            ),
            (
                vec![("MEDIA_STORE", "s3://b-1"), ("AWS_ACCESS_KEY_ID", "AKID")],
                "AWS_SECRET_ACCESS_KEY",
            ),
            (
                vec![
                    ("MEDIA_STORE", "s3://b-1"),
                    ("MEDIA_S3_PATH_STYLE", "maybe"),
                ],
                "MEDIA_S3_PATH_STYLE",
            ),
        ] {
            let mut vars = vars;
            vars.push(("JWT_SECRET", "s"));
            let err = config(&vars).unwrap_err();
            assert_eq!(err.name, name, "{vars:?}: {err}");
        }
        // Plain http to another machine, when allowed.
        let c = config(&[
            ("JWT_SECRET", "s"),
            ("MEDIA_STORE", "s3://b-1"),
            ("MEDIA_S3_ENDPOINT", "http://minio:9000"),
            ("MEDIA_S3_ALLOW_HTTP", "on"),
        ])
        .unwrap();
        assert!(matches!(c.media_store, MediaStore::S3(s3) if s3.allow_http));
    }

    #[test]
    fn debug_hides_every_secret() {
        let c = config(&[
            ("JWT_SECRET", "jwt-s3cret"),
            ("MEDIA_URL_SECRET", "media-s3cret"),
            ("DATABASE_URL", "postgres://u:db-s3cret@db/chat"),
            ("NATS_URL", "nats://u:nats-s3cret@n1:4222"),
            ("MEDIA_STORE", "s3://chat-media"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "aws-s3cret"),
            ("AWS_SESSION_TOKEN", "session-s3cret"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        for secret in [
            "jwt-s3cret",
            "media-s3cret",
            "db-s3cret",
            "nats-s3cret",
            "aws-s3cret",
            "session-s3cret",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("postgres://u:***@db/chat"), "{printed}");
        assert_eq!(c.database_url.expose(), "postgres://u:db-s3cret@db/chat");
    }
}
