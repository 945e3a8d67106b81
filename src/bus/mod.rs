//! NATS: subject names, stream topology, the typed payloads and the embedded nats-server.

pub mod embedded;
pub mod live;
pub mod messages;
pub mod schemas;
pub mod streams;
pub mod subjects;

use async_nats::{Client, jetstream};
use tokio_util::sync::CancellationToken;

pub use subjects::Subjects;

/// Publishes of the sockets and REST awaiting JetStream's acknowledgement, at most: far more
/// than sockets hold (each at most 256), so reaching it means the server is overwhelmed.
pub const SHARED_ACKS_IN_FLIGHT: usize = 1 << 20;

/// The NATS handles every part of jetchat shares; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    /// Core NATS: live event subscriptions and replies.
    pub client: Client,
    /// JetStream: commands in, events out.
    pub jetstream: jetstream::Context,
    /// Every subject and stream name.
    pub subjects: Subjects,
}

impl Bus {
    /// Wraps a connected client. Its JetStream context is the sockets' and REST's: a publish
    /// that finds [`SHARED_ACKS_IN_FLIGHT`] others awaiting their acknowledgement fails at once
    /// (the client hears `unavailable` and retries) instead of waiting. Waiting would deadlock:
    /// a socket waiting there does not poll its own publishes, whose finished acknowledgements
    /// keep their places until polled.
    pub fn new(client: Client, subjects: Subjects) -> Self {
        let jetstream = jetstream::ContextBuilder::new()
            .max_ack_inflight(SHARED_ACKS_IN_FLIGHT)
            .backpressure_on_inflight(false)
            .build(client.clone());
        Bus {
            client,
            jetstream,
            subjects,
        }
    }

    /// The same connection with a JetStream context of its own, for the server's own publishers
    /// (the persister, the delivered marks, the push scanner): its publishes never compete with
    /// the sockets' for acknowledgement room (async-nats bounds them per context; 5,000 here,
    /// and a publish over it waits: each publisher keeps fewer in flight). Shared, the sockets'
    /// commands of an overloaded instance took every place and stalled the persister for good.
    pub fn with_own_acks(&self) -> Self {
        Bus {
            client: self.client.clone(),
            jetstream: jetstream::new(self.client.clone()),
            subjects: self.subjects.clone(),
        }
    }

    /// Connects to `urls` (one URL, or a comma-separated list of a cluster's servers),
    /// retrying in the background if the server goes away later. A disconnection is a warning
    /// until `shutdown` is cancelled; after, it is the expected end (the embedded nats-server
    /// stops last).
    pub async fn connect(
        urls: &str,
        subjects: Subjects,
        shutdown: CancellationToken,
    ) -> Result<Self, async_nats::ConnectError> {
        let client = options(urls, "jetchat")
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let shutting_down = shutdown.is_cancelled();
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        async_nats::Event::Disconnected if shutting_down => {
                            tracing::debug!("NATS disconnected at shutdown")
                        }
                        async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                        other => tracing::debug!(%other, "NATS event"),
                    }
                }
            })
            .connect(server_list(urls).as_slice())
            .await?;
        Ok(Bus::new(client, subjects))
    }
}

/// Publishes awaiting their acknowledgement at once in [`publish_all`], at most: below the
/// 5,000 a context of [`Bus::with_own_acks`] has room for, where a publish over it waits.
const PUBLISHES_IN_FLIGHT: usize = 1_000;

/// Publishes every `(subject, message)` in order, many in flight at once but at most
/// [`PUBLISHES_IN_FLIGHT`] (a batch of many events, a large group's members added, awaits its
/// oldest acknowledgements before going on), and returns once JetStream stored them all.
pub async fn publish_all(
    jetstream: &jetstream::Context,
    messages: Vec<(String, jetstream::message::PublishMessage)>,
) -> Result<(), async_nats::Error> {
    let mut acks = std::collections::VecDeque::with_capacity(PUBLISHES_IN_FLIGHT);
    for (subject, message) in messages {
        if acks.len() >= PUBLISHES_IN_FLIGHT
            && let Some(oldest) = acks.pop_front()
        {
            oldest.await?;
        }
        acks.push_back(jetstream.send_publish(subject, message).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}

/// Connection options for `urls` under the client name `name`, with the credentials a URL
/// carries (`user:password@` or a bare `token@`; async-nats ignores them in a URL, and a server
/// with users needs them). Connect to [`server_list`], which leaves them out.
pub fn options(urls: &str, name: &str) -> async_nats::ConnectOptions {
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(std::time::Duration::from_secs(5));
    let credentials = urls
        .split(',')
        .find_map(|url| split_userinfo(url.trim()).0.and_then(credentials));
    match credentials {
        Some(Credentials::UserAndPassword(user, password)) => {
            options.user_and_password(user, password)
        }
        Some(Credentials::Token(token)) => options.token(token),
        None => options,
    }
}

/// What a NATS URL's user information gives the server.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    UserAndPassword(String, String),
    Token(String),
}

/// The credentials of a URL's user information (`jetchat:secret`, or a token), percent-decoded.
fn credentials(userinfo: &str) -> Option<Credentials> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    match userinfo.split_once(':') {
        Some((user, password)) => {
            Some(Credentials::UserAndPassword(decode(user), decode(password)))
        }
        None if userinfo.is_empty() => None,
        None => Some(Credentials::Token(decode(userinfo))),
    }
}

/// A URL's user information (what precedes the authority's last '@', as the URL parser reads
/// it: a password may hold a raw '@') and the URL without it.
fn split_userinfo(url: &str) -> (Option<&str>, String) {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), format!("{scheme}{host}{tail}")),
        None => (None, url.to_owned()),
    }
}

/// The servers of a `NATS_URL` that may list several, comma-separated, without the credentials
/// a URL may carry: async-nats logs the address of every connection attempt, and [`options`]
/// passes the credentials on their own.
pub fn server_list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| split_userinfo(url).1)
        .collect()
}

/// Pause between attempts to publish a command that JetStream refused.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a command sent with [`Bus::command`] has no outcome.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// NATS or JetStream refused or dropped the command.
    #[error("command not accepted: {0}")]
    NotAccepted(String),
    /// Accepted, but no outcome arrived in time (it will still be applied).
    #[error("no outcome in time")]
    Timeout,
}

impl Bus {
    /// Publishes a command whose `reply_to` is a fresh inbox and waits for its outcome.
    /// `command` gets the inbox subject to put in its `reply_to` field.
    pub async fn command(
        &self,
        subject: String,
        dedupe_id: String,
        command: impl FnOnce(String) -> messages::Command,
        timeout: std::time::Duration,
    ) -> Result<messages::Outcome, CommandError> {
        use futures_util::StreamExt;
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| CommandError::NotAccepted(e.to_string()))?;
        let payload = serde_json::to_vec(&command(inbox))
            .map_err(|e| CommandError::NotAccepted(e.to_string()))?;
        let mut publish = jetstream::message::PublishMessage::build().payload(payload.into());
        // The calling handler's span is the root of the command's trace.
        if let Some(headers) = crate::telemetry::current_context_headers() {
            publish = publish.headers(headers);
        }
        let publish = publish.message_id(dedupe_id);
        // A stream whose leader is being elected (a new or failed-over replicated stream)
        // refuses for a moment: retry within the timeout; Nats-Msg-Id makes retries safe.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let attempt = async {
                let publish = publish.clone();
                self.jetstream
                    .send_publish(subject.clone(), publish)
                    .await?
                    .await?;
                Ok::<_, async_nats::Error>(())
            };
            match attempt.await {
                Ok(()) => break,
                Err(error) if tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(%error, "command not accepted yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(error) => return Err(CommandError::NotAccepted(error.to_string())),
            }
        }
        let reply = tokio::time::timeout(timeout, replies.next())
            .await
            .map_err(|_| CommandError::Timeout)?
            .ok_or(CommandError::Timeout)?;
        serde_json::from_slice(&reply.payload).map_err(|e| CommandError::NotAccepted(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_list_servers_without_their_credentials() {
        assert_eq!(
            server_list("nats://a:4222, nats://u:p@b:4222/,n3:4222,tok@n4"),
            ["nats://a:4222", "nats://b:4222/", "n3:4222", "n4"]
        );
        assert_eq!(
            server_list("nats://u:p@ss@host:4222"),
            ["nats://host:4222"],
            "a raw '@' in the password"
        );
    }

    #[test]
    fn userinfo_becomes_credentials() {
        let userinfo = |url| split_userinfo(url).0.and_then(credentials);
        assert_eq!(
            userinfo("nats://jetchat:s%40cret@host:4222"),
            Some(Credentials::UserAndPassword(
                "jetchat".into(),
                "s@cret".into()
            ))
        );
        assert_eq!(
            userinfo("nats://u:p@ss@host"),
            Some(Credentials::UserAndPassword("u".into(), "p@ss".into()))
        );
        assert_eq!(
            userinfo("nats://s3cr3t-token@host:4222"),
            Some(Credentials::Token("s3cr3t-token".into()))
        );
        assert_eq!(userinfo("nats://host:4222"), None);
        assert_eq!(userinfo("nats://@host:4222"), None);
    }
}
