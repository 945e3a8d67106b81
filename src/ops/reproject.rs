//! `jetchat reproject --into DATABASE_URL`: rebuilds the database from `CHAT_IN` into an empty
//! database, through the persister's own write path, and reports what it wrote.

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures_util::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde::Serialize;

use crate::{
    bus::Bus,
    persister,
    store::{self, chat, chat_member, message},
};

/// What a reprojection did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Commands read from the stream.
    pub commands: u64,
    /// Commands no version of jetchat can read (skipped, as the persister does).
    pub undecodable: u64,
    /// Commands the database refused (refused, as the persister does: they are in the
    /// dead-letter stream).
    pub refused: u64,
    pub chats: u64,
    pub members: u64,
    pub messages: u64,
}

/// Replays every command of `CHAT_IN` into the empty database at `url`.
/// `rules` must be the live persister's (`MAX_CONTENT_CHARS`) for an identical result.
pub async fn run(
    bus: &Bus,
    url: &str,
    batch_size: usize,
    rules: &persister::batch::Rules,
) -> anyhow::Result<Report> {
    let db = store::connect(url)
        .await
        .with_context(|| format!("--into: cannot open {url}"))?;
    store::migrate(&db)
        .await
        .context("migrating the target database")?;
    if chat::Entity::find().count(&db).await? > 0 || message::Entity::find().count(&db).await? > 0 {
        bail!("--into: {url} is not empty; reproject only into an empty database");
    }
    let config = OrderedConfig {
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    };
    let consumer = super::ordered_consumer(bus, bus.subjects.in_stream(), config).await?;
    let mut report = Report::default();
    if consumer.cached_info().num_pending > 0 {
        let mut messages = consumer.messages().await?;
        let mut batch = Vec::with_capacity(batch_size);
        while let Some(message) = messages.next().await {
            let message = message?;
            let last = message.info().map(|i| i.pending == 0).unwrap_or(true);
            report.commands += 1;
            match persister::read(&message) {
                Ok(incoming) => batch.push(incoming),
                Err(error) => {
                    tracing::warn!(%error, subject = %message.subject, "undecodable command skipped");
                    report.undecodable += 1;
                }
            }
            if batch.len() >= batch_size || last {
                let written = persister::write(&db, &batch, rules)
                    .await
                    .context("writing a batch")?;
                report.refused += written.poisoned.len() as u64;
                batch.clear();
            }
            if last {
                break;
            }
        }
    }
    count(&db, &mut report).await?;
    Ok(report)
}

async fn count(db: &DatabaseConnection, report: &mut Report) -> anyhow::Result<()> {
    report.chats = chat::Entity::find().count(db).await?;
    report.members = chat_member::Entity::find().count(db).await?;
    report.messages = message::Entity::find().count(db).await?;
    Ok(())
}
