//! Where the load goes (loopback only) and who it comes from: users with tokens minted the way
//! Django's SimpleJWT mints them.

use std::{
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};
use url::Url;

/// The development `JWT_SECRET` from jetchat's `.env`.
pub const DEV_SECRET: &str = "dev-insecure-django-secret-key-change-me";

/// How long minted tokens stay valid: longer than any run.
const TOKEN_MINUTES: i64 = 24 * 60;

/// The jetchat under load and the identities used against it.
#[derive(clap::Args, Clone, Debug)]
pub struct TargetArgs {
    /// jetchat's base URL; only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed.
    #[arg(long, env = "JETCHAT_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The HS256 secret jetchat verifies tokens with (its JWT_SECRET).
    #[arg(long, env = "JWT_SECRET", default_value = DEV_SECRET, hide_env_values = true)]
    pub jwt_secret: String,
    /// The claim that carries the user id (jetchat's JWT_USER_ID_CLAIM).
    #[arg(long, default_value = "user_id")]
    pub user_id_claim: String,
    /// First user id of the run (users are consecutive). Default: taken from the clock, so
    /// that runs against the same database never share users or chats.
    #[arg(long)]
    pub first_user: Option<i64>,
}

/// A resolved, checked target.
pub struct Target {
    /// Base URL for REST calls.
    pub base: Url,
    /// The socket address WebSockets connect to.
    pub addr: SocketAddr,
    /// `host:port` as it goes into the WebSocket URL.
    authority: String,
    key: EncodingKey,
    user_id_claim: String,
    /// The first user id of this run.
    pub first_user: i64,
}

impl Target {
    /// Parses and checks the URL; refuses anything that is not on this machine's loopback.
    pub fn resolve(args: &TargetArgs) -> anyhow::Result<Target> {
        let base = Url::parse(&args.url).with_context(|| format!("--url {}", args.url))?;
        if base.scheme() != "http" {
            bail!("--url must be http://… (TLS is not supported by the load generator)");
        }
        let addr = loopback_addr(&base)?;
        let authority = match base.port() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        let first_user = args.first_user.unwrap_or_else(clock_user_base);
        if first_user <= 0 {
            bail!("--first-user must be positive");
        }
        Ok(Target {
            base,
            addr,
            authority,
            key: EncodingKey::from_secret(args.jwt_secret.as_bytes()),
            user_id_claim: args.user_id_claim.clone(),
            first_user,
        })
    }

    /// The `n`-th user of this run.
    pub fn user(&self, n: usize) -> i64 {
        self.first_user + n as i64
    }

    /// A SimpleJWT-shaped access token for `user_id`.
    pub fn token(&self, user_id: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let mut claims = Map::new();
        claims.insert("token_type".into(), "access".into());
        claims.insert("exp".into(), (now + TOKEN_MINUTES * 60).into());
        claims.insert("iat".into(), now.into());
        claims.insert("jti".into(), format!("load{now:x}u{user_id:x}").into());
        claims.insert(self.user_id_claim.clone(), Value::from(user_id));
        jsonwebtoken::encode(&Header::default(), &claims, &self.key)
            .expect("HS256 signing with a byte secret cannot fail")
    }

    /// The WebSocket URL for a socket of the holder of `token`.
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws/chat?token={token}", self.authority)
    }
}

/// The address behind `url`, which must be loopback.
pub fn loopback_addr(url: &Url) -> anyhow::Result<SocketAddr> {
    let addrs = url
        .socket_addrs(|| None)
        .with_context(|| format!("cannot resolve {url}"))?;
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        bail!("{url} is not a loopback address: load is only ever sent to this machine");
    }
    Ok(addrs
        .iter()
        .find(|a| a.is_ipv4())
        .copied()
        .unwrap_or(addrs[0]))
}

/// A user id base that differs from run to run: seconds since the epoch × 100,000 leaves room
/// for 100,000 users per run and stays below 2^53 (exact in any JSON reader).
fn clock_user_base() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    (secs % 50_000_000) * 100_000 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> TargetArgs {
        TargetArgs {
            url: url.into(),
            jwt_secret: DEV_SECRET.into(),
            user_id_claim: "user_id".into(),
            first_user: Some(10),
        }
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(Target::resolve(&args("http://127.0.0.1:8000")).is_ok());
        assert!(Target::resolve(&args("http://127.0.0.9:1")).is_ok());
        assert!(Target::resolve(&args("http://[::1]:8000")).is_ok());
        assert!(Target::resolve(&args("http://10.0.0.1:8000")).is_err());
        assert!(Target::resolve(&args("http://192.168.1.1:8000")).is_err());
        assert!(Target::resolve(&args("https://127.0.0.1:8000")).is_err());
    }

    #[test]
    fn tokens_carry_simplejwt_claims() {
        let target = Target::resolve(&args("http://127.0.0.1:8000")).unwrap();
        let token = target.token(42);
        let mut validation = jsonwebtoken::Validation::default();
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(DEV_SECRET.as_bytes()),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["user_id"], 42);
        assert_eq!(data.claims["token_type"], "access");
        assert!(data.claims.contains_key("jti"));
        assert_eq!(target.ws_url("t"), "ws://127.0.0.1:8000/ws/chat?token=t");
    }
}
