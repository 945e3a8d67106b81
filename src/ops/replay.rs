//! `jetchat replay`: prints a stream's messages with an ordered consumer (nothing is acked or
//! changed), readable by default or one JSON object a line.

use anyhow::{Context as _, bail};
use async_nats::jetstream::{
    self,
    consumer::{Consumer, DeliverPolicy, pull::OrderedConfig},
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::bus::Bus;

/// Which stream to read.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum StreamName {
    /// `CHAT_IN`: commands.
    In,
    /// `CHAT_EVENTS`: events.
    Events,
}

/// What to print.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The stream.
    #[arg(long, value_enum)]
    pub stream: StreamName,
    /// Only subjects matching this filter, e.g. `chat.events.7.>`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Start this long ago (`2h`, `30m`) or at this time (RFC 3339).
    #[arg(long, conflicts_with = "from_seq")]
    pub since: Option<String>,
    /// Start at this stream sequence.
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Stop at this time (RFC 3339) or this long ago (`10m`).
    #[arg(long)]
    pub until: Option<String>,
    /// Keep printing new messages as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object a line.
    #[arg(long)]
    pub json: bool,
}

/// A point in time given as a duration ago or an RFC 3339 time.
pub fn parse_time(value: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(ago) = humantime::parse_duration(value) {
        return Ok(now - chrono::Duration::from_std(ago)?);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{value:?} is neither a duration (2h, 30m) nor an RFC 3339 time"))
}

/// Prints the selected messages to `out` and returns how many matched; a reader that closes
/// the pipe (`| head`) ends it as the end of the messages would.
pub async fn run(
    bus: &Bus,
    args: &ReplayArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let name = match args.stream {
        StreamName::In => bus.subjects.in_stream(),
        StreamName::Events => bus.subjects.events_stream(),
    };
    let deliver_policy = match (&args.since, args.from_seq) {
        (Some(since), _) => {
            let start = parse_time(since, now)?;
            DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp(start.timestamp())?,
            }
        }
        (None, Some(seq)) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        (None, None) => DeliverPolicy::All,
    };
    let until = args
        .until
        .as_deref()
        .map(|u| parse_time(u, now))
        .transpose()?;
    let config = OrderedConfig {
        // A partitioned CHAT_IN stores `chat.in.7.message` as `chat.part.<p>.7.message`.
        filter_subjects: match (&args.subject, args.stream) {
            (Some(subject), StreamName::In) => bus.subjects.stored_filters(subject),
            (Some(subject), StreamName::Events) => vec![subject.clone()],
            (None, _) => Vec::new(),
        },
        deliver_policy,
        ..Default::default()
    };
    let consumer = super::ordered_consumer(bus, name, config).await?;
    let consumer_name = consumer.cached_info().name.clone();
    let mut count = 0;
    let printed = print_all(consumer, &bus.subjects, args, until, now, out, &mut count).await;
    super::delete_consumer(bus, name, &consumer_name).await;
    match printed {
        // The reader went away (`| head`): what it wanted is printed.
        Err(error) if is_closed_pipe(&error) => Ok(count),
        result => result.map(|()| count),
    }
}

/// Prints the consumer's messages, counting each in `count` before it is printed.
async fn print_all(
    consumer: Consumer<OrderedConfig>,
    subjects: &crate::bus::Subjects,
    args: &ReplayArgs,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    out: &mut impl std::io::Write,
    count: &mut u64,
) -> anyhow::Result<()> {
    if !args.follow && consumer.cached_info().num_pending == 0 {
        return Ok(());
    }
    let mut messages = consumer.messages().await.context("reading the stream")?;
    while let Some(message) = messages.next().await {
        let message = message.context("reading the stream")?;
        let info = match message.info() {
            Ok(info) => info,
            Err(error) => bail!("message without JetStream metadata: {error}"),
        };
        let published =
            DateTime::from_timestamp(info.published.unix_timestamp(), info.published.nanosecond())
                .unwrap_or(now);
        if until.is_some_and(|u| published > u) {
            break;
        }
        *count += 1;
        // A command as it was published (a partitioned CHAT_IN stores it under another name).
        let subject = subjects.published_as(&message.subject);
        print(
            out,
            &message,
            &subject,
            info.stream_sequence,
            published,
            args.json,
        )?;
        if !args.follow && info.pending == 0 {
            break;
        }
    }
    out.flush()?;
    Ok(())
}

/// True when `error` is a write to a pipe whose reader has closed it.
fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn print(
    out: &mut impl std::io::Write,
    message: &jetstream::Message,
    subject: &str,
    seq: u64,
    published: DateTime<Utc>,
    as_json: bool,
) -> std::io::Result<()> {
    let payload: Value = serde_json::from_slice(&message.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.payload).into_owned()));
    let headers: serde_json::Map<String, Value> = message
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .map(|(name, values)| {
            let values: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
            (name.to_string(), Value::String(values.join(", ")))
        })
        .collect();
    let time = published.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    if as_json {
        let line = json!({"seq": seq, "subject": subject, "time": time, "headers": headers, "payload": payload});
        writeln!(out, "{line}")
    } else {
        let headers: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        writeln!(out, "#{seq}  {time}  {subject}  {}", headers.join(" "))?;
        writeln!(out, "    {payload}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_ago_or_rfc3339() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("2h", now).unwrap().to_rfc3339(),
            "2026-11-24T10:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-24T11:30:00+00:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T11:30:00+00:00"
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }
}
