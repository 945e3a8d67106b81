//! Operator tools: read the streams without changing them (`replay`, `streams`), rebuild a
//! database from the command log (`reproject`), and read or replay the dead letters (`dlq`).

pub mod continue_stream;
pub mod dead_letters;
pub mod replay;
pub mod reproject;
pub mod streams;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{Consumer, pull::OrderedConfig};

use crate::{
    bus::{self, Bus, Subjects, embedded},
    config::OpsConfig,
};

/// Connects to `NATS_URL`, or to the embedded nats-server of a running `jetchat serve`.
pub async fn connect(config: &OpsConfig) -> anyhow::Result<Bus> {
    let url = match &config.nats_url {
        Some(url) => url.expose().to_owned(),
        None => {
            let file = embedded::url_file(&config.data_dir.join("nats"));
            std::fs::read_to_string(&file)
                .map(|u| u.trim().to_owned())
                .with_context(|| {
                    format!(
                        "NATS_URL is not set and {} does not exist: set NATS_URL, or run this \
                         while `jetchat serve` runs its embedded nats-server",
                        file.display()
                    )
                })?
        }
    };
    let client = bus::options(&url, "jetchat-ops")
        .connect(bus::server_list(&url).as_slice())
        .await
        .with_context(|| {
            format!(
                "NATS_URL: cannot connect to {}",
                crate::config::redact_url(&url)
            )
        })?;
    Ok(Bus::new(client, Subjects::new(&config.subject_prefix)))
}

/// An ordered consumer on the stream `name`: reads it from `config`'s start without changing
/// anything (it is ephemeral and acks nothing).
async fn ordered_consumer(
    bus: &Bus,
    name: &str,
    config: OrderedConfig,
) -> anyhow::Result<Consumer<OrderedConfig>> {
    let stream = bus
        .jetstream
        .get_stream(name)
        .await
        .with_context(|| format!("stream {name}"))?;
    stream
        .create_consumer(config)
        .await
        .context("creating an ordered consumer")
}
