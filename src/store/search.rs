//! Full-text search over the messages of a user's chats: what the user typed, made into a
//! query neither database can misread, and a page of hits, newest first, each with an
//! HTML-safe snippet.
//!
//! The index is the database's own (migration `m20261202_000020_create_message_search`):
//! SQLite's FTS5 table `messages_search`, kept by triggers, and PostgreSQL's GIN index on
//! [`migration::POSTGRES_SEARCH_VECTOR`]. Both follow every insert, edit (an `UPDATE` of `content`)
//! and deletion in the writing transaction, so the persister calls nothing here.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, Value};

use crate::domain::ChatId;
use crate::{domain::MessageId, domain::UserId};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// Where the database marks a match in a snippet: control characters, replaced by `<mark>`
/// and `</mark>` once the text around them is escaped.
const MATCH_START: char = '\u{1}';
const MATCH_END: char = '\u{2}';

/// FTS5's `snippet()`: at most this many tokens around the matches.
const SNIPPET_TOKENS: u32 = 24;

/// What `<` and `>` become in the text PostgreSQL makes a snippet of, and back after.
const HIDDEN_ANGLES: &str = "\u{3}\u{4}";

/// PostgreSQL's `ts_headline()` options for a snippet like FTS5's: one excerpt of up to 24
/// words around the first match (the fragment mode, `MaxFragments`, would drop the text's
/// leading punctuation), without FTS5's `…` where text was left out.
const HEADLINE_OPTIONS: &str =
    "StartSel=\u{1}, StopSel=\u{2}, MaxWords=24, MinWords=8, ShortWord=2";

/// Why a query cannot be searched for (the caller's fault, said in a sentence).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("q is required: the words to search for")]
    Empty,
    #[error("q is too long: at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("q must not contain NUL")]
    Nul,
}

/// A search as typed, split into words. Every word is looked for as it is, never as
/// syntax: quotes, `*`, `NEAR`, `-`, `:` and parentheses are text like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// The words of `text` (split at whitespace); an empty, over-long or NUL-bearing text
    /// is refused.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        if text.contains('\0') {
            return Err(QueryError::Nul);
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            return Err(QueryError::Empty);
        }
        Ok(SearchQuery { words })
    }

    /// An FTS5 query matching the messages with every word: each word a quoted string (a
    /// `"` doubled inside), so FTS5 reads no operator, column filter or prefix in it. A word
    /// of punctuation only is an empty phrase, which FTS5 ignores.
    fn fts5(&self) -> String {
        self.words
            .iter()
            .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The text for PostgreSQL's `plainto_tsquery`, which reads no syntax at all (every
    /// word required).
    fn plain(&self) -> String {
        self.words.join(" ")
    }
}

/// Which page of hits.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Only in this chat.
    pub chat_id: Option<ChatId>,
    /// Only messages with a smaller id (the last hit of the previous page).
    pub before: Option<MessageId>,
    pub limit: u64,
}

/// A message that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub message_id: MessageId,
    /// The matching part of the text, HTML-escaped, the matched words in `<mark>`…`</mark>`.
    pub snippet: String,
}

/// A page of the messages that contain every word of `query`, newest first, among the chats
/// `user_id` is a member of now (a member removed from a chat finds none of its messages,
/// not even those from before), deleted messages never.
pub async fn messages(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
) -> Result<Vec<Hit>, DbErr> {
    let backend = db.get_database_backend();
    let mut sql = Binds::new(backend);
    let statement = match backend {
        DatabaseBackend::Postgres => {
            let user = sql.bind(user_id);
            let words = sql.bind(query.plain());
            let filters = sql.filters(page, "m.id");
            let limit = sql.bind(page.limit as i64);
            let options = sql.bind(HEADLINE_OPTIONS);
            let hidden = sql.bind(HIDDEN_ANGLES);
            let vector = migration::POSTGRES_SEARCH_VECTOR;
            // The snippet only for the page (ts_headline re-parses the text), from the text with
            // its angle brackets hidden as the index hides them (the parser drops what looks
            // like an HTML tag) and shown again after.
            // The predicate is the index's expression, `deleted_at IS NULL` its condition.
            format!(
                "SELECT hit.id, ts_headline('simple', translate(hit.content, '<>', {hidden}), \
                 plainto_tsquery('simple', {words}), {options}) FROM (SELECT m.id, m.content FROM messages m \
                 JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = {user} \
                 WHERE {vector} @@ plainto_tsquery('simple', {words}) \
                 AND m.deleted_at IS NULL{filters} ORDER BY m.id DESC LIMIT {limit}) hit \
                 ORDER BY hit.id DESC"
            )
        }
        _ => {
            let user = sql.bind(user_id);
            let words = sql.bind(query.fts5());
            let filters = sql.filters(page, "messages_search.rowid");
            let limit = sql.bind(page.limit as i64);
            // FTS5 walks the matches newest first (ORDER BY rowid DESC) and stops at the
            // limit; the `rowid < before` bound goes into the FTS5 scan.
            format!(
                "SELECT m.id, snippet(messages_search, 0, char(1), char(2), '…', \
                 {SNIPPET_TOKENS}) FROM messages_search \
                 JOIN messages m ON m.id = messages_search.rowid \
                 JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = {user} \
                 WHERE messages_search MATCH {words} AND m.deleted_at IS NULL{filters} \
                 ORDER BY messages_search.rowid DESC LIMIT {limit}"
            )
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend, statement, sql.values,
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let message_id: i64 = row.try_get_by_index(0)?;
            let mut marked: String = row.try_get_by_index(1)?;
            if backend == DatabaseBackend::Postgres {
                marked = marked.replace('\u{3}', "<").replace('\u{4}', ">");
            }
            Ok(Hit {
                message_id,
                snippet: highlight(&marked),
            })
        })
        .collect()
}

/// Values bound in the order their placeholders appear (`?` on SQLite, `$n` on PostgreSQL).
struct Binds {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl Binds {
    fn new(backend: DatabaseBackend) -> Self {
        Binds {
            backend,
            values: Vec::new(),
        }
    }

    /// The placeholder of `value`, bound next.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    /// The page's `chat_id` and `before` conditions, the latter on `id_column`.
    fn filters(&mut self, page: Page, id_column: &str) -> String {
        let mut filters = String::new();
        if let Some(chat_id) = page.chat_id {
            filters += &format!(" AND m.chat_id = {}", self.bind(chat_id));
        }
        if let Some(before) = page.before {
            filters += &format!(" AND {id_column} < {}", self.bind(before));
        }
        filters
    }
}

/// The database's snippet made safe to insert as HTML: the text escaped, the match marks
/// turned into `<mark>`…`</mark>`, always balanced (a mark character in the message itself
/// can at worst highlight the wrong words, never open an element it does not close).
fn highlight(marked: &str) -> String {
    let mut html = String::with_capacity(marked.len() + 32);
    let mut open = false;
    let mut rest = marked;
    while let Some(at) = rest.find([MATCH_START, MATCH_END]) {
        html_escape::encode_safe_to_string(&rest[..at], &mut html);
        let starts = rest[at..].starts_with(MATCH_START);
        if starts != open {
            html.push_str(if starts { "<mark>" } else { "</mark>" });
            open = starts;
        }
        // Both marks are one byte long.
        rest = &rest[at + 1..];
    }
    html_escape::encode_safe_to_string(rest, &mut html);
    if open {
        html.push_str("</mark>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_so_fts5_reads_no_syntax() {
        let query = SearchQuery::parse(r#"  "a b" NEAR(x y) -c:d * foo* (z) "#).unwrap();
        assert_eq!(
            query.fts5(),
            r#""""a" "b""" "NEAR(x" "y)" "-c:d" "*" "foo*" "(z)""#
        );
        assert_eq!(query.plain(), r#""a b" NEAR(x y) -c:d * foo* (z)"#);
    }

    #[test]
    fn empty_long_and_nul_queries_are_refused() {
        assert_eq!(SearchQuery::parse(""), Err(QueryError::Empty));
        assert_eq!(SearchQuery::parse(" \t\n "), Err(QueryError::Empty));
        assert_eq!(SearchQuery::parse("a\0b"), Err(QueryError::Nul));
        assert_eq!(
            SearchQuery::parse(&"é".repeat(MAX_QUERY_CHARS + 1)),
            Err(QueryError::TooLong)
        );
        assert!(SearchQuery::parse(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
    }

    #[test]
    fn snippets_are_escaped_and_marks_balanced() {
        assert_eq!(
            highlight("say \u{1}<b>hi</b>\u{2} & 'bye' \"x\""),
            "say <mark>&lt;b&gt;hi&lt;&#x2F;b&gt;</mark> &amp; &#x27;bye&#x27; &quot;x&quot;"
        );
        assert_eq!(highlight("\u{1}a\u{1}b\u{2}\u{2}c"), "<mark>ab</mark>c");
        assert_eq!(highlight("a\u{2}b\u{1}c"), "ab<mark>c</mark>");
        assert_eq!(highlight(""), "");
    }
}
