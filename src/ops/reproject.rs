//! `jetchat reproject --into DATABASE_URL`: rebuilds the database from `CHAT_IN` into an empty
//! database, through the persister's own write path, and reports what it wrote. After
//! `CHAT_IN` was trimmed, `--from-seq N+1` replays the rest onto a database restored from a
//! snapshot taken when everything up to `N` was persisted (docs/operations.md).

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures_util::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde::Serialize;

use crate::{
    bus::{Bus, messages::Event},
    domain::ErrorCode,
    persister::{self, dead_letters::HEADER_REPLAY_OF},
    store::{self, chat, chat_member, message},
};

/// Refused commands the report lists one by one (the rest are only counted).
pub const LISTED_REFUSALS: usize = 10;

/// What a reprojection did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Commands read from the stream.
    pub commands: u64,
    /// Commands no version of jetchat can read (skipped, as the persister does).
    pub undecodable: u64,
    /// Commands refused, as the persister refused them: by a rule (a `command_rejected`
    /// event live) or because the database cannot apply them (`dead_lettered`).
    pub refused: u64,
    /// Of `refused`, those the database could not apply: live, they are in the dead-letter
    /// stream.
    pub dead_lettered: u64,
    /// `refused` by error code.
    pub refused_by_code: BTreeMap<String, u64>,
    /// The first [`LISTED_REFUSALS`] refused commands, in stream order.
    pub first_refused: Vec<RefusedCommand>,
    /// Commands skipped because the live persister dead-lettered them: still dead letters,
    /// removed by `jetchat dlq --remove`, or published again by `jetchat dlq --replay` (the
    /// replay is applied in their stead).
    pub dead_letters_skipped: u64,
    pub chats: u64,
    pub members: u64,
    pub messages: u64,
}

/// A command the rebuild refused, with what the persister told about it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RefusedCommand {
    /// Its `CHAT_IN` sequence (`jetchat replay --stream in --from-seq` shows it).
    pub seq: u64,
    /// Its `type`.
    pub command: String,
    pub code: ErrorCode,
    pub detail: String,
}

impl Report {
    /// Counts the refusals among a written batch's events (their `command_rejected`).
    fn note_refusals(&mut self, events: &[Event]) {
        for event in events {
            let Event::CommandRejected(rejected) = event else {
                continue;
            };
            self.refused += 1;
            *self
                .refused_by_code
                .entry(rejected.code.to_string())
                .or_default() += 1;
            if self.first_refused.len() < LISTED_REFUSALS {
                self.first_refused.push(RefusedCommand {
                    seq: rejected.stream_seq,
                    command: rejected.command.clone(),
                    code: rejected.code,
                    detail: rejected.detail.clone(),
                });
            }
        }
    }
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
    let mut stream = super::stream(bus, bus.subjects.in_stream()).await?;
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
    let refused_live = refused_live(bus, deliver_policy).await?;
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
                Ok(incoming) if refused_live.contains(&incoming.seq) => {
                    report.dead_letters_skipped += 1;
                }
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
                report.dead_lettered += written.poisoned.len() as u64;
                report.note_refusals(&written.applied.events);
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

/// The `CHAT_IN` sequences of the commands the live persister dead-lettered and did not
/// apply: those still in the dead-letter stream or removed from it (`dlq --remove` leaves a
/// record), and those a `dlq --replay` published again (read from the replays'
/// `Jetchat-Replay-Of` headers, headers only).
async fn refused_live(bus: &Bus, deliver_policy: DeliverPolicy) -> anyhow::Result<HashSet<u64>> {
    let mut seqs = super::dead_letters::not_replayed(bus)
        .await
        .context("reading the dead letters")?;
    let config = OrderedConfig {
        deliver_policy,
        headers_only: true,
        ..Default::default()
    };
    let consumer = super::ordered_consumer(bus, bus.subjects.in_stream(), config).await?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(seqs);
    }
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let last = message.info().map(|i| i.pending == 0).unwrap_or(true);
        let replay_of = message
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_REPLAY_OF))
            .and_then(|v| v.as_str().parse::<u64>().ok());
        seqs.extend(replay_of);
        if last {
            break;
        }
    }
    Ok(seqs)
}

async fn count(db: &DatabaseConnection, report: &mut Report) -> anyhow::Result<()> {
    report.chats = chat::Entity::find().count(db).await?;
    report.members = chat_member::Entity::find().count(db).await?;
    report.messages = message::Entity::find().count(db).await?;
    Ok(())
}
