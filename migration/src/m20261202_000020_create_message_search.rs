//! Full-text search over `messages.content`, kept by the database itself in the transaction
//! that writes a message, so neither the persister nor `reproject` has a call to make:
//!
//! - SQLite: `messages_search`, an FTS5 table over `messages` (external content: the text is
//!   stored once, in `messages`), filled by triggers on insert, on an update of `content` or
//!   `deleted_at` (an edit, a deletion) and on delete. A message is indexed while it is not
//!   deleted and has text; every trigger applies that one rule to the old and the new row,
//!   so what a trigger removes from the index is exactly what was put there.
//! - PostgreSQL: a GIN index on [`POSTGRES_SEARCH_VECTOR`] (the words of `content`) for the
//!   messages not deleted. An expression index rather than a stored `tsvector` column: adding a generated
//!   column rewrites the whole table under an exclusive lock, the index does not, and the
//!   vector is not stored twice. `simple`: messages come in every language, so no stemming
//!   and no stop words (a query finds the words as typed, lower-cased).
//!
//! Messages stored before the migration are indexed by it.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The FTS5 table, its triggers and the first fill, in order.
const SQLITE_UP: &[&str] = &[
    // No `columnsize` table: search never ranks (newest first), so each insert writes one
    // row less.
    "CREATE VIRTUAL TABLE messages_search USING fts5(content, content='messages', \
     content_rowid='id', columnsize=0, tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages \
     WHEN new.deleted_at IS NULL AND new.content <> '' BEGIN \
       INSERT INTO messages_search(rowid, content) VALUES (new.id, new.content); \
     END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF content, deleted_at ON messages BEGIN \
       INSERT INTO messages_search(messages_search, rowid, content) \
         SELECT 'delete', old.id, old.content \
         WHERE old.deleted_at IS NULL AND old.content <> ''; \
       INSERT INTO messages_search(rowid, content) SELECT new.id, new.content \
         WHERE new.deleted_at IS NULL AND new.content <> ''; \
     END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages \
     WHEN old.deleted_at IS NULL AND old.content <> '' BEGIN \
       INSERT INTO messages_search(messages_search, rowid, content) \
         VALUES ('delete', old.id, old.content); \
     END",
    "INSERT INTO messages_search(rowid, content) SELECT id, content FROM messages \
     WHERE deleted_at IS NULL AND content <> ''",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_search_delete",
    "DROP TRIGGER IF EXISTS messages_search_update",
    "DROP TRIGGER IF EXISTS messages_search_insert",
    "DROP TABLE IF EXISTS messages_search",
];

/// The indexed expression; a query uses the index only when it says exactly this. `<` and
/// `>` are read as spaces: PostgreSQL's parser drops what looks like an HTML tag and all of a
/// `<script>` element, and chat messages are text, not HTML.
pub const POSTGRES_SEARCH_VECTOR: &str = "to_tsvector('simple', translate(content, '<>', '  '))";

const POSTGRES_DOWN: &[&str] = &["DROP INDEX IF EXISTS idx_messages_search"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let index = format!(
            "CREATE INDEX idx_messages_search ON messages USING GIN ({POSTGRES_SEARCH_VECTOR}) \
             WHERE deleted_at IS NULL"
        );
        run(manager, SQLITE_UP, &[&index]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, sqlite: &[&str], postgres: &[&str]) -> Result<(), DbErr> {
    let statements = match manager.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite,
        DatabaseBackend::Postgres => postgres,
        other => {
            return Err(DbErr::Migration(format!(
                "no full-text search for {other:?}"
            )));
        }
    };
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
