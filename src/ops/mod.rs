//! Operator tools: read the streams without changing them (`replay`, `streams`), rebuild a
//! database from the command log (`reproject`), read or replay the dead letters (`dlq`), and
//! repair or bound the command log (`continue-stream`, `trim-stream`).

pub mod continue_stream;
pub mod dead_letters;
pub mod partitions;
pub mod replay;
pub mod reproject;
pub mod streams;
pub mod trim_stream;

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{Consumer, pull::OrderedConfig};

use crate::{
    bus::{
        self, Bus, Subjects,
        embedded::{self, EmbeddedNats},
    },
    config::OpsConfig,
};

/// The operator commands' NATS: `NATS_URL`, the embedded nats-server of a running `jetchat
/// serve`, or, when jetchat is not running, an embedded nats-server of the command's own on the
/// same store (`DATA_DIR/nats`), stopped by [`Connection::close`].
pub struct Connection {
    pub bus: Bus,
    embedded: Option<EmbeddedNats>,
}

impl Connection {
    /// True when the command runs a nats-server of its own (jetchat was not running).
    pub fn runs_own_server(&self) -> bool {
        self.embedded.is_some()
    }

    /// Closes the connection and stops the command's own nats-server gracefully (its store
    /// is then closed cleanly for the next `jetchat serve`).
    pub async fn close(self) {
        drop(self.bus);
        if let Some(server) = self.embedded {
            server.stop().await;
        }
    }
}

/// Connects as [`Connection`] says.
pub async fn connect(config: &OpsConfig) -> anyhow::Result<Connection> {
    if let Some(url) = &config.nats_url {
        let bus = dial(url.expose(), &config.subject_prefix).await?;
        return Ok(Connection {
            bus,
            embedded: None,
        });
    }
    let dir = config.data_dir.join("nats");
    let written = std::fs::read_to_string(embedded::url_file(&dir))
        .ok()
        .map(|u| u.trim().to_owned());
    let mut unanswered = None;
    if let Some(url) = written {
        match dial(&url, &config.subject_prefix).await {
            Ok(bus) => {
                return Ok(Connection {
                    bus,
                    embedded: None,
                });
            }
            Err(error) => unanswered = Some(format!("{error:#}")),
        }
    }
    if let Some(pid) = embedded::running_server(&dir) {
        bail!(
            "the embedded nats-server of {} runs (pid {pid}) but does not answer ({}): \
             jetchat may be starting or stopping; try again, or set NATS_URL",
            dir.display(),
            unanswered.as_deref().unwrap_or("no URL written")
        );
    }
    if !embedded::has_store(&dir) {
        bail!(
            "NATS_URL is not set and {} holds no embedded nats-server store: run this in the \
             directory jetchat runs in, or set DATA_DIR to jetchat's (or NATS_URL)",
            dir.display()
        );
    }
    // jetchat is not running (a URL left by a crash answers no more): the command reads and
    // writes the store through a nats-server of its own, as `serve` would.
    let server = EmbeddedNats::start(config.nats_server_bin.as_deref(), &dir)
        .await
        .with_context(|| {
            format!(
                "NATS_URL is not set and jetchat is not running: starting the embedded \
                 nats-server on {}",
                dir.display()
            )
        })?;
    let bus = dial(server.url(), &config.subject_prefix).await?;
    Ok(Connection {
        bus,
        embedded: Some(server),
    })
}

async fn dial(url: &str, subject_prefix: &str) -> anyhow::Result<Bus> {
    let client = bus::options(url, "jetchat-ops")
        .connect(bus::server_list(url).as_slice())
        .await
        .with_context(|| {
            format!(
                "NATS_URL: cannot connect to {}",
                crate::config::redact_url(url)
            )
        })?;
    Ok(Bus::new(client, Subjects::new(subject_prefix)))
}

/// The stream `name`, or an error naming it.
async fn stream(bus: &Bus, name: &str) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    bus.jetstream
        .get_stream(name)
        .await
        .with_context(|| format!("stream {name}"))
}

/// An ordered consumer on the stream `name`: reads it from `config`'s start without changing
/// anything (it is ephemeral and acks nothing).
async fn ordered_consumer(
    bus: &Bus,
    name: &str,
    config: OrderedConfig,
) -> anyhow::Result<Consumer<OrderedConfig>> {
    stream(bus, name)
        .await?
        .create_consumer(config)
        .await
        .context("creating an ordered consumer")
}

/// Deletes the ordered consumer `name` the command is done with (its messages dropped first:
/// a running ordered stream would create it again), so that it is not listed under its stream
/// until the server's inactivity threshold removes it. Best effort: one already gone is what
/// was wanted.
async fn delete_consumer(bus: &Bus, stream: &str, name: &str) {
    let deleted = match bus.jetstream.get_stream(stream).await {
        Ok(stream) => stream
            .delete_consumer(name)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = deleted {
        tracing::debug!(%error, consumer = %name, "the ordered consumer was not deleted");
    }
}
