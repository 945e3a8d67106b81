//! `jetchat reproject --into DATABASE_URL`: rebuilds the database from `CHAT_IN` into an empty
//! database, through the persister's own write path, and reports what it wrote. After
//! `CHAT_IN` was trimmed, `--from-seq N+1` replays the rest onto a database restored from a
//! snapshot taken when everything up to `N` was persisted (docs/operations.md).

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

/// Replays the commands of `CHAT_IN` into the database at `url`: all of them into an empty
/// database (`from_seq: None`; a SQLite file that does not exist is created), or those from `from_seq` on into one restored from a snapshot
/// that holds everything before it. Commands the snapshot holds already are harmless, as
/// redeliveries are to the persister. `rules` must be the live persister's
/// (`MAX_CONTENT_CHARS`) for an identical result.
pub async fn run(
    bus: &Bus,
    url: &str,
    from_seq: Option<u64>,
    batch_size: usize,
    rules: &persister::batch::Rules,
) -> anyhow::Result<Report> {
    let shown = crate::config::redact_url(url);
    let mut stream = bus
        .jetstream
        .get_stream(bus.subjects.in_stream())
        .await
        .with_context(|| format!("stream {}", bus.subjects.in_stream()))?;
    let first = stream.info().await?.state.first_sequence.max(1);
    let deliver_policy = match from_seq {
        None if first > 1 => bail!(
            "{} starts at sequence {first}: the commands before it were purged. Restore the \
             database snapshot taken at sequence {} and reproject --from-seq {first} into it",
            bus.subjects.in_stream(),
            first - 1
        ),
        None => DeliverPolicy::All,
        Some(seq) if seq < first => bail!(
            "--from-seq {seq}: {} starts at {first}, the commands before it were purged; this \
             needs a snapshot taken at sequence {} or later",
            bus.subjects.in_stream(),
            first - 1
        ),
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
    };
    let db = store::connect(&store::creating_sqlite_file(url))
        .await
        .with_context(|| format!("--into: cannot open {shown}"))?;
    store::migrate(&db)
        .await
        .context("migrating the target database")?;
    let empty = chat::Entity::find().count(&db).await? == 0
        && message::Entity::find().count(&db).await? == 0;
    if from_seq.is_none() && !empty {
        bail!(
            "--into: {shown} is not empty; reproject only into an empty database (or onto a snapshot with --from-seq)"
        );
    }
    let config = OrderedConfig {
        deliver_policy,
        ..Default::default()
    };
    let consumer = super::ordered_consumer(bus, bus.subjects.in_stream(), config).await?;
    let consumer_name = consumer.cached_info().name.clone();
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
    super::delete_consumer(bus, bus.subjects.in_stream(), &consumer_name).await;
    count(&db, &mut report).await?;
    Ok(report)
}

async fn count(db: &DatabaseConnection, report: &mut Report) -> anyhow::Result<()> {
    report.chats = chat::Entity::find().count(db).await?;
    report.members = chat_member::Entity::find().count(db).await?;
    report.messages = message::Entity::find().count(db).await?;
    Ok(())
}
