//! The database check after a run: every message that got `message_accepted` is stored exactly
//! once, by the right sender, in the right chat. The database is opened read-only.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde::Serialize;

use crate::msg_id::{MsgKey, parse_msg_id};

/// Missing messages listed by name in the report, at most.
const EXAMPLES: usize = 5;

/// The database check's settings, shared by the message scenarios.
#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// jetchat's database (a sea-orm URL such as sqlite://data/jetchat.db), opened read-only.
    /// When given, every accepted message must be stored exactly once, or the run fails with
    /// exit code 2.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Seconds to wait for the persister to store every accepted message.
    #[arg(long, default_value_t = 30.0)]
    pub db_wait: f64,
}

impl CheckArgs {
    /// Checks the database when `--database-url` was given; `expected` is built only then.
    pub async fn run(
        &self,
        expected: impl FnOnce() -> Expected,
    ) -> anyhow::Result<Option<Integrity>> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        let wait = Duration::try_from_secs_f64(self.db_wait).context("--db-wait")?;
        crate::progress::note("checking the database");
        Ok(Some(check(url, &expected(), wait).await?))
    }
}

/// What the run expects in the database.
pub struct Expected {
    pub run: String,
    /// The sender and chat of each sending connection.
    pub senders: HashMap<u32, (i64, i64)>,
    /// The messages that got `message_accepted`.
    pub accepted: HashSet<MsgKey>,
}

/// The verdict.
#[derive(Debug, Serialize)]
pub struct Integrity {
    pub ok: bool,
    pub accepted: u64,
    /// Rows with this run's `client_msg_id`s.
    pub stored_rows: u64,
    /// Accepted but not stored.
    pub missing: u64,
    /// Stored more than once.
    pub duplicated: u64,
    /// Stored with another sender or chat than the one it was sent by or to.
    pub misattributed: u64,
    /// Stored although the run never saw `message_accepted` for it (e.g. still in flight when
    /// the run ended): allowed.
    pub stored_unaccepted: u64,
    pub waited_s: f64,
    /// Some of the missing, doubled or misattributed messages.
    pub examples: Vec<String>,
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database check: {} — {} accepted, {} rows, {} missing, {} doubled, {} misattributed, {} stored without accept (waited {:.1} s)",
            if self.ok { "OK" } else { "FAILED" },
            self.accepted,
            self.stored_rows,
            self.missing,
            self.duplicated,
            self.misattributed,
            self.stored_unaccepted,
            self.waited_s
        )?;
        if !self.examples.is_empty() {
            write!(f, "\n  e.g. {}", self.examples.join(", "))?;
        }
        Ok(())
    }
}

/// Polls the database until every accepted message is there (at most `wait`), then judges.
pub async fn check(url: &str, expected: &Expected, wait: Duration) -> anyhow::Result<Integrity> {
    let db = open_read_only(url)
        .await
        .with_context(|| format!("--database-url {url}: cannot open"))?;
    let started = Instant::now();
    loop {
        let rows = stored(&db, &expected.run).await?;
        let verdict = judge(expected, &rows, started.elapsed());
        if verdict.missing == 0 || started.elapsed() >= wait {
            return Ok(verdict);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A stored message of the run and the chat it is in: what each member must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub key: MsgKey,
    pub chat_id: i64,
}

/// Every message of run `run` in the database (rows of other shapes are skipped).
pub async fn stored_messages(url: &str, run: &str) -> anyhow::Result<Vec<StoredMessage>> {
    let db = open_read_only(url)
        .await
        .with_context(|| format!("--database-url {url}: cannot open"))?;
    let rows = stored(&db, run).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(StoredMessage {
                key: row.key?,
                chat_id: row.chat_id,
            })
        })
        .collect())
}

/// A stored row of this run: its message and where it was stored.
struct Row {
    key: Option<MsgKey>,
    client_msg_id: String,
    sender_id: i64,
    chat_id: i64,
}

async fn open_read_only(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.read_only(true)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10))
        })
        .map_sqlx_postgres_opts(|o| o.options([("default_transaction_read_only", "on")]));
    Database::connect(options).await
}

async fn stored(db: &DatabaseConnection, run: &str) -> anyhow::Result<Vec<Row>> {
    let query = Query::select()
        .columns([
            Alias::new("client_msg_id"),
            Alias::new("sender_id"),
            Alias::new("chat_id"),
        ])
        .from(Alias::new("messages"))
        .and_where(Expr::col(Alias::new("client_msg_id")).like(format!("{run}-%")))
        .to_owned();
    let rows = db
        .query_all(&query)
        .await
        .context("reading the messages table")?;
    rows.into_iter()
        .map(|row| {
            let client_msg_id: String = row.try_get("", "client_msg_id")?;
            Ok(Row {
                key: parse_msg_id(run, &client_msg_id).map(|(key, _)| key),
                sender_id: row.try_get("", "sender_id")?,
                chat_id: row.try_get("", "chat_id")?,
                client_msg_id,
            })
        })
        .collect()
}

fn judge(expected: &Expected, rows: &[Row], waited: Duration) -> Integrity {
    let mut examples = Vec::new();
    let mut example = |text: String| {
        if examples.len() < EXAMPLES {
            examples.push(text);
        }
    };
    let mut copies: HashMap<MsgKey, u64> = HashMap::new();
    let mut misattributed = 0;
    for row in rows {
        let Some(key) = row.key else {
            continue; // a LIKE match of another shape: not this run's
        };
        *copies.entry(key).or_default() += 1;
        let right = expected.senders.get(&key.conn) == Some(&(row.sender_id, row.chat_id));
        if !right {
            misattributed += 1;
            example(format!(
                "{} stored as sender {} in chat {}",
                row.client_msg_id, row.sender_id, row.chat_id
            ));
        }
    }
    let mut missing = 0;
    for key in &expected.accepted {
        if !copies.contains_key(key) {
            missing += 1;
            example(format!("{key:?} missing"));
        }
    }
    let mut duplicated = 0;
    let mut stored_unaccepted = 0;
    for (key, n) in &copies {
        if *n > 1 {
            duplicated += 1;
            example(format!("{key:?} stored {n} times"));
        }
        if !expected.accepted.contains(key) {
            stored_unaccepted += 1;
        }
    }
    Integrity {
        ok: missing == 0 && duplicated == 0 && misattributed == 0,
        accepted: expected.accepted.len() as u64,
        stored_rows: rows.len() as u64,
        missing,
        duplicated,
        misattributed,
        stored_unaccepted,
        waited_s: waited.as_secs_f64(),
        examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u32) -> MsgKey {
        MsgKey {
            conn: 0,
            stage: 0,
            seq,
        }
    }

    fn row(seq: u32, sender_id: i64) -> Row {
        Row {
            key: Some(key(seq)),
            client_msg_id: format!("r-0-0-{seq}-1"),
            sender_id,
            chat_id: 7,
        }
    }

    fn expected(seqs: &[u32]) -> Expected {
        Expected {
            run: "r".into(),
            senders: HashMap::from([(0, (1, 7))]),
            accepted: seqs.iter().map(|s| key(*s)).collect(),
        }
    }

    #[test]
    fn exactly_once_passes() {
        let v = judge(
            &expected(&[0, 1]),
            &[row(0, 1), row(1, 1), row(2, 1)],
            Duration::ZERO,
        );
        assert!(v.ok, "{v}");
        assert_eq!(v.stored_unaccepted, 1);
    }

    #[test]
    fn missing_doubled_and_misattributed_fail() {
        let missing = judge(&expected(&[0, 1]), &[row(0, 1)], Duration::ZERO);
        assert!(!missing.ok && missing.missing == 1);
        let doubled = judge(&expected(&[0]), &[row(0, 1), row(0, 1)], Duration::ZERO);
        assert!(!doubled.ok && doubled.duplicated == 1);
        let wrong = judge(&expected(&[0]), &[row(0, 2)], Duration::ZERO);
        assert!(!wrong.ok && wrong.misattributed == 1);
    }
}
