//! The database: sea-orm entities and the queries jetchat runs. No HTTP or NATS types here.

pub mod blocks;
pub mod changes;
pub mod chat;
pub mod chat_member;
pub mod erased_user;
pub mod message;
pub mod message_reaction;
pub mod message_revision;
pub mod pinned_message;
pub mod pins;
pub mod push;
pub mod queries;
pub mod roles;
pub mod search;
pub mod upload;
pub mod uploads;
pub mod user_block;
pub mod user_profile;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens the database (creating a SQLite file's directory) and tunes SQLite for one writer
/// and many readers: WAL, `synchronous=NORMAL`, a busy timeout.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    open(url, READERS, READER_CACHE_KIB).await
}

/// One connection of its own for the persister, the one writer. A SQLite connection's page
/// cache stays valid only while no other connection writes, so a writer that took whichever
/// pooled connection was free re-read the pages of every batch from the files (about five
/// `pread`s per command at 8,000 msg/s; under one on its own connection, BENCHMARKS.md).
pub async fn connect_writer(url: &str) -> Result<DatabaseConnection, DbErr> {
    open(url, 1, WRITER_CACHE_KIB).await
}

/// The writer's SQLite page cache: the indexes' pages a batch touches stay in memory (4 MiB:
/// 32 made no difference to the cost guard's workloads, and filled as the database grew).
const WRITER_CACHE_KIB: u32 = 4 * 1024;

/// The pool of connections that read (and the REST handlers' few writes on PostgreSQL).
const READERS: u32 = 16;

/// Each reader's: a connection drops its cached pages whenever another one has written, which
/// the writer does many times a second, so a cache only serves the query that filled it; with
/// SQLite's default (2 MiB) each of the 16 readers kept that much, and the soak's RSS stood
/// ~45 MiB higher.
const READER_CACHE_KIB: u32 = 256;

/// What SQLite may hold in the whole process (`soft_heap_limit`, one for every connection):
/// the caches' sum, past which it reuses cached pages instead of allocating more. Each cache
/// filled only as far as the queries had reached into a growing database, so the heap grew
/// for many minutes (the soak: 9 → 19 MB in six minutes at 500 msg/s; with the limit 7–8 MB
/// throughout, BENCHMARKS.md). Prepared statements count too, and are never given up for it.
const SQLITE_HEAP_LIMIT: u64 =
    (WRITER_CACHE_KIB as u64 + READERS as u64 * READER_CACHE_KIB as u64) * 1024;

/// Rows a SQLite query hands over before it waits for them to be taken.
const ROW_CHANNEL: usize = 1024;

/// How long a pooled connection may sit idle before it is pinged when taken again.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

async fn open(url: &str, connections: u32, cache_kib: u32) -> Result<DatabaseConnection, DbErr> {
    if let Some(dir) = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let (url, password) = without_password(url);
    let mut options = ConnectOptions::new(url);
    if let Some(password) = password {
        options.map_sqlx_postgres_opts(move |o| o.password(&password));
    }
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // A connection in use is not pinged each time it is taken from the pool (sqlx's
        // default: one more round trip to the database per transaction and per query), only
        // after it was idle long enough to have been dropped by the server or a proxy.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // 1 KiB pages for a new database (an existing one keeps its own): a commit
                // writes every page it touched to the WAL, and a batch of messages touches a
                // leaf of each index per chat and sender, so smaller pages mean far fewer bytes
                // written and checkpointed per message (p99 latency at 10,000 msg/s: 46 → 24–29
                // ms, BENCHMARKS.md).
                .page_size(1024)
                .pragma("cache_size", format!("-{cache_kib}"))
                .pragma("soft_heap_limit", SQLITE_HEAP_LIMIT.to_string())
                // Statement journals (a multi-row INSERT keeps one in case it must undo
                // itself) stay in memory instead of spilling to a temporary file.
                .pragma("temp_store", "memory")
                // A backstop: `spawn_checkpointer` keeps the WAL short off the write path.
                .pragma("wal_autocheckpoint", "16384")
                // A query's rows pass from SQLite's thread to the task through a bounded
                // channel: with room for a batch's rows (sqlx's default is 50) the thread
                // hands them all over without waiting for the task to take each.
                .row_buffer_size(ROW_CHANNEL)
        });
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock as it begins
/// (`BEGIN IMMEDIATE`): a transaction that read first and wrote later failed at once with
/// `database is locked` when another connection — a second instance's persister on the same
/// file — had written since its read began (the busy timeout does not apply to that upgrade),
/// and was retried; one that begins by waiting for the lock waits its turn (up to the busy
/// timeout) and then reads what the other committed. PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// How often the WAL is copied back into a SQLite database. Often, so each checkpoint is small:
/// a checkpoint ends with an `fsync` of the database file, and the writer's commits stalled
/// behind the larger ones (at 5,000 msg/s every 500 ms: ~20 commits of 16–32 ms in 15 s and a
/// p99 send → `new_message` of 29–41 ms; every 100 ms: 1–6 and 20–23 ms, BENCHMARKS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// For SQLite: copies the WAL back into the database every [`CHECKPOINT_EVERY`] from a task of
/// its own (`PASSIVE`: it never waits for or blocks the writer), so the persister's commits do
/// not pay for checkpoints. Nothing for other databases; the task ends at `shutdown`.
pub fn spawn_checkpointer(db: DatabaseConnection, shutdown: tokio_util::sync::CancellationToken) {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(error) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::debug!(%error, "WAL checkpoint failed; retrying later");
            }
        }
    });
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when a trivial query answers (for `/healthz`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// A PostgreSQL `url` without its password (of `user:password@` or `?password=`), and the
/// password, which sqlx gets as a connect option instead: libraries log the URL they are given
/// (sea-orm's `connect` span at `trace` records it). Other URLs come back unchanged.
fn without_password(url: &str) -> (String, Option<String>) {
    let unchanged = || (url.to_owned(), None);
    let Ok(mut parsed) = url::Url::parse(url) else {
        return unchanged();
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return unchanged();
    }
    let mut password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    if parsed.set_password(None).is_err() {
        return unchanged();
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(key, _)| key == "password") {
        let kept: Vec<_> = pairs
            .into_iter()
            .filter_map(|(key, value)| match key == "password" {
                true => {
                    password = Some(value);
                    None
                }
                false => Some((key, value)),
            })
            .collect();
        parsed.set_query(None);
        if !kept.is_empty() {
            parsed.query_pairs_mut().extend_pairs(kept);
        }
    }
    (parsed.into(), password)
}

/// `url` with a SQLite file that does not exist yet created on opening (`mode=rwc`) unless the
/// URL chose a mode; other databases' URLs unchanged. For a database that is to be filled
/// (`jetchat reproject --into`), where a new file is the normal case.
pub fn creating_sqlite_file(url: &str) -> String {
    let Some(_) = sqlite_path(url) else {
        return url.to_owned();
    };
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|p| p.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Bytes SQLite holds allocated now, in every connection of the process (0 when none is open).
pub fn sqlite_memory_used() -> i64 {
    // SAFETY: a read of SQLite's global memory counter; safe from any thread.
    unsafe { libsqlite3_sys::sqlite3_memory_used() }
}

/// A list for an `IN (…)`, padded to a power of two by repeating its last item (which changes
/// nothing it matches). A list of each length is a statement of its own, and every connection
/// keeps the statements it prepared: lists of a few lengths keep the caches from filling with
/// one statement per length the load has ever produced (the soak's memory, BENCHMARKS.md).
pub(crate) fn in_list<T: Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut list: Vec<T> = items.into_iter().collect();
    if let Some(last) = list.last().cloned() {
        list.resize(list.len().next_power_of_two(), last);
    }
    list
}

/// `sql` with PostgreSQL's numbered placeholders when `backend` wants them.
pub(crate) fn placeholders(backend: sea_orm::DatabaseBackend, sql: &str) -> String {
    if backend != sea_orm::DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    #[test]
    fn an_in_list_is_padded_to_a_power_of_two_with_its_last_item() {
        assert_eq!(in_list(Vec::<i64>::new()), Vec::<i64>::new());
        assert_eq!(in_list([7]), vec![7]);
        assert_eq!(in_list([1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(in_list(1..=5), vec![1, 2, 3, 4, 5, 5, 5, 5]);
        assert_eq!(in_list(1..=8), (1..=8).collect::<Vec<_>>());
        for n in 1..300usize {
            let padded = in_list(0..n);
            assert!(padded.len().is_power_of_two() && padded.len() < 2 * n);
            assert_eq!(&padded[..n], &(0..n).collect::<Vec<_>>()[..]);
        }
    }

    #[test]
    fn a_sqlite_file_to_fill_is_created_unless_the_url_chose_a_mode() {
        assert_eq!(
            creating_sqlite_file("sqlite:///srv/new.db"),
            "sqlite:///srv/new.db?mode=rwc"
        );
        assert_eq!(
            creating_sqlite_file("sqlite:new.db?cache=shared"),
            "sqlite:new.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            creating_sqlite_file("sqlite:///srv/old.db?mode=rw"),
            "sqlite:///srv/old.db?mode=rw"
        );
        assert_eq!(
            creating_sqlite_file("postgres://u@db/jetchat"),
            "postgres://u@db/jetchat"
        );
    }

    async fn pragma(db: &DatabaseConnection, name: &str) -> String {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("PRAGMA {name}"),
            ))
            .await
            .unwrap()
            .expect("a pragma answers");
        row.try_get_by_index::<i64>(0)
            .map(|n| n.to_string())
            .or_else(|_| row.try_get_by_index::<String>(0))
            .unwrap()
    }

    #[test]
    fn a_postgres_password_leaves_the_url() {
        for (url, without, password) in [
            (
                "postgres://jetchat:s%40cret@db:5432/chat?sslmode=require",
                "postgres://jetchat@db:5432/chat?sslmode=require",
                Some("s@cret"),
            ),
            (
                "postgresql://db/chat?user=u&password=s3cret&sslmode=require",
                "postgresql://db/chat?user=u&sslmode=require",
                Some("s3cret"),
            ),
            (
                "postgres://db/chat?password=s3cret",
                "postgres://db/chat",
                Some("s3cret"),
            ),
            ("postgres://u@db/chat", "postgres://u@db/chat", None),
            (
                "sqlite://data/jetchat.db?mode=rwc",
                "sqlite://data/jetchat.db?mode=rwc",
                None,
            ),
        ] {
            let (printed, taken) = without_password(url);
            assert_eq!(printed, without, "{url}");
            assert_eq!(taken.as_deref(), password, "{url}");
        }
    }

    #[tokio::test]
    async fn a_new_sqlite_database_is_tuned_for_the_persister() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/db/jetchat.db?mode=rwc", dir.path().display());
        let db = connect(&url)
            .await
            .expect("connects, creating the directory");
        migrate(&db).await.unwrap();
        assert_eq!(pragma(&db, "journal_mode").await, "wal");
        assert_eq!(pragma(&db, "page_size").await, "1024");
        assert_eq!(
            pragma(&db, "temp_store").await,
            "2",
            "statement journals in memory"
        );
        assert_eq!(pragma(&db, "synchronous").await, "1", "NORMAL");
        assert_eq!(pragma(&db, "foreign_keys").await, "1");
        assert_eq!(pragma(&db, "cache_size").await, "-256", "a reader's");
        let writer = connect_writer(&url).await.unwrap();
        assert_eq!(pragma(&writer, "cache_size").await, "-4096", "the writer's");
        assert_eq!(
            pragma(&db, "soft_heap_limit").await,
            "8388608",
            "SQLite's, all in all"
        );
    }
}
