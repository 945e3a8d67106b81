//! `jetchat continue-stream --after N`: after `CHAT_IN` was recreated or truncated under a
//! kept database (the start-up check refuses to run then), continues the stream's numbering
//! after the database's newest message, so new messages get ids that are free. Commands the
//! new stream already holds are kept: they are published again, in order, after the jump.

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::{bus::Bus, store};

/// What `continue-stream` did.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The stream's last sequence before.
    pub last_before: u64,
    /// Commands published again after the jump.
    pub republished: u64,
    /// The stream's first free sequence now.
    pub next_sequence: u64,
}

/// Moves `CHAT_IN` on so that its next sequence is `after + 1` or later. An `after` below the
/// newest message id in `db` is refused unless `force`: messages would again get ids that are
/// stored.
pub async fn run(
    bus: &Bus,
    db: &DatabaseConnection,
    after: u64,
    force: bool,
) -> anyhow::Result<Report> {
    let newest = store::queries::newest_stream_seq(db)
        .await
        .context("reading the newest message id of the database")?;
    if after < newest && !force {
        bail!(
            "--after {after} is below the database's newest message id {newest}: new messages \
             would get ids that are stored and be refused (id_conflict). Run \
             `jetchat continue-stream --after {newest}` (DATABASE_URL must be jetchat's \
             database; --force skips this check)"
        );
    }
    let name = bus.subjects.in_stream();
    let mut stream = super::stream(bus, name).await?;
    let state = stream.info().await?.state.clone();
    if state.last_sequence > after {
        bail!(
            "{name} is already at sequence {}, past {after}: nothing to do",
            state.last_sequence
        );
    }
    // Read what the stream holds before it is purged.
    let mut held = Vec::new();
    if state.messages > 0 {
        let config = OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        let consumer = super::ordered_consumer(bus, name, config).await?;
        let consumer_name = consumer.cached_info().name.clone();
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let last = message.info().map(|i| i.pending == 0).unwrap_or(true);
            held.push((
                bus.subjects.published_as(&message.subject),
                message.payload.clone(),
            ));
            if last {
                break;
            }
        }
        drop(messages);
        super::delete_consumer(bus, name, &consumer_name).await;
    }
    // Purging up to a sequence past the end moves the stream's next sequence there.
    stream
        .purge()
        .sequence(after + 1)
        .await
        .with_context(|| format!("moving {name} on to sequence {}", after + 1))?;
    for (subject, payload) in &held {
        bus.jetstream
            .publish(subject.clone(), payload.clone())
            .await?
            .await
            .context("publishing a held command again")?;
    }
    let next = stream.info().await?.state.last_sequence + 1;
    Ok(Report {
        last_before: state.last_sequence,
        republished: held.len() as u64,
        next_sequence: next,
    })
}
