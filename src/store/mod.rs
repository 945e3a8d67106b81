//! The database: sea-orm entities and the queries jetchat runs. No HTTP or NATS types here.

pub mod chat;
pub mod chat_member;
pub mod message;
pub mod queries;
pub mod upload;
pub mod uploads;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

/// A chat id.
pub type ChatId = i64;

/// Opens the database (creating a SQLite file's directory) and tunes SQLite for one writer
/// and many readers: WAL, `synchronous=NORMAL`, a busy timeout.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(dir) = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", "-32768")
                // Statement journals (a multi-row INSERT keeps one in case it must undo
                // itself) stay in memory instead of spilling to a temporary file.
                .pragma("temp_store", "memory")
                // A backstop: `spawn_checkpointer` keeps the WAL short off the write path.
                .pragma("wal_autocheckpoint", "16384")
        });
    Database::connect(options).await
}

/// How often the WAL is copied back into a SQLite database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

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

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}
