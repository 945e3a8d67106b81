//! Full-text search over the messages of a user's chats: what the user typed, made into a
//! query neither database can misread, and a page of hits, newest first, each with an
//! HTML-safe snippet.
//!
//! The index is the database's own (migration `m20261202_000020_create_message_search`):
//! SQLite's FTS5 table `messages_search`, kept by triggers, and PostgreSQL's GIN index on
//! [`migration::POSTGRES_SEARCH_VECTOR`]. Both follow every insert, edit (an `UPDATE` of `content`)
//! and deletion in the writing transaction, so the persister calls nothing here.
//!
//! PostgreSQL finds a page one of two ways ([`PostgresPlan`]), chosen per search by how common
//! the words are in the index's statistics: through the GIN index for rare words, by walking
//! the caller's chats newest first for common ones. Both answer the same.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, QueryResult, Statement, Value};

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
/// not even those from before), deleted messages never. On PostgreSQL the cheaper of the two
/// [`PostgresPlan`]s by the index's statistics.
pub async fn messages(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
) -> Result<Vec<Hit>, DbErr> {
    let plan = match db.get_database_backend() {
        DatabaseBackend::Postgres => Estimate::read(db, user_id, query, page)
            .await?
            .plan(page.limit),
        // SQLite has one plan.
        _ => PostgresPlan::Index,
    };
    messages_by(db, user_id, query, page, plan).await
}

/// How PostgreSQL finds a page of hits. Both answer the same; which is cheaper depends on how
/// common the words are (docs/database.md, "Search on a million messages").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresPlan {
    /// The GIN index: the words' posting lists ANDed with the caller's chats
    /// (`idx_messages_chat_id`), then sorted. Reads the posting list of every message that
    /// has the words, in every chat: a fraction of a millisecond for a rare word, ~70 ms for
    /// one in 64 % of a million messages.
    Index,
    /// Each of the caller's chats walked newest first (`idx_messages_chat_id` backwards),
    /// each message's words tested, each chat stopping at the limit: about
    /// `chats × limit ÷ frequency` messages, so the more common the words, the sooner done.
    /// At most `rows_per_chat` messages of each chat are tested: should the words be rarer in
    /// the caller's chats than in all of them, so that the page cannot be told from what was
    /// walked, the index answers instead: the bound limits the walk's cost, never its answer.
    ChatWalk { rows_per_chat: u64 },
}

/// What a message tested on a [`PostgresPlan::ChatWalk`] costs, in GIN posting-list entries
/// read by [`PostgresPlan::Index`]: measured on the million messages, ~13 µs (the row fetched
/// and its text parsed) against ~0.1 µs.
const WALK_ROW_COST: f64 = 100.0;

/// How many times the messages a chat walk is expected to test it may test, at most.
const WALK_SLACK: f64 = 4.0;

/// The statistics [`PostgresPlan`] is chosen by: `ANALYZE` (autovacuum) keeps the most common
/// words of `idx_messages_search` with their frequencies (up to 1,000 words at the default
/// statistics target); a word not among them is rarer than all of them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    /// Messages in the table (`reltuples`; negative before the first `ANALYZE`).
    messages: f64,
    /// The caller's chats the page searches.
    chats: i64,
    /// The query's words as the index spells them.
    words: i64,
    /// Those of them among the most common words.
    common_words: i64,
    /// The share of messages with all the common words (their frequencies multiplied).
    frequency: Option<f64>,
}

impl Estimate {
    async fn read(
        db: &impl ConnectionTrait,
        user_id: UserId,
        query: &SearchQuery,
        page: Page,
    ) -> Result<Self, DbErr> {
        let mut sql = Binds::new(DatabaseBackend::Postgres);
        let user = sql.bind(user_id);
        let chat = match page.chat_id {
            Some(chat_id) => format!(" AND chat_id = {}", sql.bind(chat_id)),
            None => String::new(),
        };
        let words = sql.bind(query.plain());
        let statement = format!(
            "SELECT (SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass)::float8, \
             (SELECT count(*) FROM chat_members WHERE user_id = {user}{chat}), \
             count(*), count(f.frequency), exp(sum(ln(f.frequency))) \
             FROM unnest(tsvector_to_array(to_tsvector('simple', {words}))) AS w(word) \
             LEFT JOIN LATERAL (SELECT s.most_common_elem_freqs[array_position(\
             s.most_common_elems::text::text[], w.word)]::float8 AS frequency FROM pg_stats s \
             WHERE s.schemaname = current_schema() AND s.tablename = 'idx_messages_search') f \
             ON true"
        );
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                statement,
                sql.values,
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("search estimate".to_owned()))?;
        Ok(Estimate {
            messages: row.try_get_by_index(0)?,
            chats: row.try_get_by_index(1)?,
            words: row.try_get_by_index(2)?,
            common_words: row.try_get_by_index(3)?,
            frequency: row.try_get_by_index(4)?,
        })
    }

    /// [`PostgresPlan::ChatWalk`] when the messages it would test cost less than the posting
    /// lists [`PostgresPlan::Index`] would read; the index whenever a word is not common or
    /// the statistics are missing. The walk's bound is a power of two, so that few distinct
    /// statements are prepared.
    fn plan(&self, limit: u64) -> PostgresPlan {
        let frequency = match self.frequency {
            Some(f) if f > 0.0 && self.words > 0 && self.common_words == self.words => f,
            _ => return PostgresPlan::Index,
        };
        let per_chat = limit as f64 / frequency;
        let walked = self.chats as f64 * per_chat;
        let posted = self.messages * frequency;
        if walked * WALK_ROW_COST < posted {
            PostgresPlan::ChatWalk {
                rows_per_chat: ((per_chat * WALK_SLACK).ceil() as u64).next_power_of_two(),
            }
        } else {
            PostgresPlan::Index
        }
    }
}

/// [`messages`] with PostgreSQL's plan chosen by the caller (SQLite has one plan and ignores
/// it): the tests run every plan.
pub async fn messages_by(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
    plan: PostgresPlan,
) -> Result<Vec<Hit>, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return sqlite(db, user_id, query, page).await;
    }
    if let PostgresPlan::ChatWalk { rows_per_chat } = plan {
        if let Some(hits) = postgres_walk(db, user_id, query, page, rows_per_chat).await? {
            return Ok(hits);
        }
        tracing::debug!(
            rows_per_chat,
            "the chat walk could not tell the page: the index"
        );
    }
    postgres_index(db, user_id, query, page).await
}

/// FTS5 walks the matches newest first (ORDER BY rowid DESC) and stops at the limit; the
/// `rowid < before` bound goes into the FTS5 scan.
async fn sqlite(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
) -> Result<Vec<Hit>, DbErr> {
    let mut sql = Binds::new(DatabaseBackend::Sqlite);
    let user = sql.bind(user_id);
    let words = sql.bind(query.fts5());
    let mut filters = String::new();
    if let Some(chat_id) = page.chat_id {
        filters += &format!(" AND m.chat_id = {}", sql.bind(chat_id));
    }
    if let Some(before) = page.before {
        filters += &format!(" AND messages_search.rowid < {}", sql.bind(before));
    }
    let limit = sql.bind(page.limit as i64);
    let statement = format!(
        "SELECT m.id, snippet(messages_search, 0, char(1), char(2), '…', {SNIPPET_TOKENS}) \
         FROM messages_search JOIN messages m ON m.id = messages_search.rowid \
         JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = {user} \
         WHERE messages_search MATCH {words} AND m.deleted_at IS NULL{filters} \
         ORDER BY messages_search.rowid DESC LIMIT {limit}"
    );
    let rows = sql.query_all(db, statement).await?;
    rows.iter()
        .map(|row| {
            Ok(hit(
                row.try_get_by_index(0)?,
                &row.try_get_by_index::<String>(1)?,
            ))
        })
        .collect()
}

/// The parts of a PostgreSQL search statement both plans share.
struct PostgresSearch {
    sql: Binds,
    user: String,
    words: String,
    /// ` AND cm.chat_id = $n` for a page of one chat.
    chat: String,
    /// ` AND m.id < $n` for a page before a message.
    before: String,
    /// The snippet of `hit.content` for the words: made only for the page (ts_headline
    /// re-parses the text), from the text with its angle brackets hidden as the index hides
    /// them (the parser drops what looks like an HTML tag) and shown again by [`hit`].
    snippet: String,
    /// Written into the statement rather than bound, so that a prepared statement's generic
    /// plan still knows how few rows are wanted (with `LIMIT $n` it plans for 10 % of them).
    limit: u64,
}

impl PostgresSearch {
    fn new(user_id: UserId, query: &SearchQuery, page: Page) -> Self {
        let mut sql = Binds::new(DatabaseBackend::Postgres);
        let user = sql.bind(user_id);
        let words = sql.bind(query.plain());
        let chat = match page.chat_id {
            Some(chat_id) => format!(" AND cm.chat_id = {}", sql.bind(chat_id)),
            None => String::new(),
        };
        let before = match page.before {
            Some(before) => format!(" AND m.id < {}", sql.bind(before)),
            None => String::new(),
        };
        let hidden = sql.bind(HIDDEN_ANGLES);
        let options = sql.bind(HEADLINE_OPTIONS);
        let snippet = format!(
            "ts_headline('simple', translate(hit.content, '<>', {hidden}), \
             plainto_tsquery('simple', {words}), {options})"
        );
        PostgresSearch {
            sql,
            user,
            words,
            chat,
            before,
            snippet,
            limit: page.limit,
        }
    }
}

/// [`PostgresPlan::Index`]: the caller's chats as one array, so that the GIN index is read
/// once (a join reads the words' posting lists once per chat). The predicate is the index's
/// expression, `deleted_at IS NULL` its condition.
async fn postgres_index(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
) -> Result<Vec<Hit>, DbErr> {
    let PostgresSearch {
        sql,
        user,
        words,
        chat,
        before,
        snippet,
        limit,
    } = PostgresSearch::new(user_id, query, page);
    let vector = migration::POSTGRES_SEARCH_VECTOR;
    let statement = format!(
        "SELECT hit.id, {snippet} FROM (SELECT m.id, m.content FROM messages m \
         WHERE m.chat_id = ANY (ARRAY(SELECT cm.chat_id FROM chat_members cm \
         WHERE cm.user_id = {user}{chat})) AND {vector} @@ plainto_tsquery('simple', {words}) \
         AND m.deleted_at IS NULL{before} ORDER BY m.id DESC LIMIT {limit}) hit \
         ORDER BY hit.id DESC"
    );
    let rows = sql.query_all(db, statement).await?;
    rows.iter()
        .map(|row| {
            let marked = shown_angles(row.try_get_by_index(1)?);
            Ok(hit(row.try_get_by_index(0)?, &marked))
        })
        .collect()
}

/// [`PostgresPlan::ChatWalk`], or `None` when the walk cannot tell the page.
///
/// Each chat's newest messages (at most `rows_per_chat`, numbered) are tested with
/// `ts_match_vq`, `@@` as a function: the planner neither matches it to the GIN index nor
/// takes it for rare (it estimates a third of the rows), so it walks `idx_messages_chat_id`
/// backwards, and each chat stops at `limit` hits. A chat that reaches its bound returns its
/// last message as the `edge`: its hits down to there are known, those below not. So the page
/// is the newest hits at or above the highest edge, when there are `limit` of them or no chat
/// reached its bound; otherwise `None`. (A chat that stopped at `limit` hits needs no edge:
/// any hit of it below those is outranked by them.)
async fn postgres_walk(
    db: &impl ConnectionTrait,
    user_id: UserId,
    query: &SearchQuery,
    page: Page,
    rows_per_chat: u64,
) -> Result<Option<Vec<Hit>>, DbErr> {
    let PostgresSearch {
        sql,
        user,
        words,
        chat,
        before,
        snippet,
        limit,
    } = PostgresSearch::new(user_id, query, page);
    let vector = migration::POSTGRES_SEARCH_VECTOR;
    let bound = rows_per_chat.max(1);
    let statement = format!(
        "WITH walked AS MATERIALIZED (SELECT w.id, w.content, w.hit, w.edge \
         FROM chat_members cm CROSS JOIN LATERAL (SELECT s.id, s.content, s.hit, \
         s.n = {bound} AS edge FROM (SELECT m.id, m.content, \
         row_number() OVER (ORDER BY m.id DESC) AS n, \
         ts_match_vq({vector}, plainto_tsquery('simple', {words})) AS hit \
         FROM messages m WHERE m.chat_id = cm.chat_id AND m.deleted_at IS NULL{before} \
         ORDER BY m.id DESC LIMIT {bound}) s WHERE s.hit OR s.n = {bound} LIMIT {limit}) w \
         WHERE cm.user_id = {user}{chat}), \
         edge AS (SELECT max(id) AS id FROM walked WHERE edge) \
         SELECT edge.id, hit.id, {snippet} FROM edge LEFT JOIN \
         (SELECT walked.id, walked.content FROM walked \
         WHERE walked.hit AND walked.id >= coalesce((SELECT id FROM edge), 0) \
         ORDER BY walked.id DESC LIMIT {limit}) hit ON true ORDER BY hit.id DESC"
    );
    let rows = sql.query_all(db, statement).await?;
    // One row at least: the edge, with no hit when none was found.
    let edge: Option<MessageId> = match rows.first() {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    let mut hits = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(message_id) = row.try_get_by_index::<Option<MessageId>>(1)? {
            hits.push(hit(message_id, &shown_angles(row.try_get_by_index(2)?)));
        }
    }
    let told = edge.is_none() || hits.len() as u64 == limit;
    Ok(told.then_some(hits))
}

/// A hit from the database's id and marked snippet.
fn hit(message_id: MessageId, marked: &str) -> Hit {
    Hit {
        message_id,
        snippet: highlight(marked),
    }
}

/// PostgreSQL's snippet with the angle brackets hidden from `ts_headline` shown again.
fn shown_angles(marked: String) -> String {
    marked.replace('\u{3}', "<").replace('\u{4}', ">")
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

    /// The rows of `statement` with these values bound.
    async fn query_all(
        self,
        db: &impl ConnectionTrait,
        statement: String,
    ) -> Result<Vec<QueryResult>, DbErr> {
        db.query_all_raw(Statement::from_sql_and_values(
            self.backend,
            statement,
            self.values,
        ))
        .await
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
    fn the_chats_are_walked_only_for_words_common_enough() {
        // The million messages of docs/database.md: user 1 in 10 chats, a page of 20.
        let million = |frequency: Option<f64>, chats| Estimate {
            messages: 1_000_000.0,
            chats,
            words: 1,
            common_words: i64::from(frequency.is_some()),
            frequency,
        };
        assert_eq!(
            million(None, 10).plan(20),
            PostgresPlan::Index,
            "a rare word"
        );
        assert_eq!(million(Some(0.001), 10).plan(20), PostgresPlan::Index);
        assert_eq!(million(Some(0.10), 10).plan(20), PostgresPlan::Index);
        let walk = |rows_per_chat| PostgresPlan::ChatWalk { rows_per_chat };
        // 20 ÷ 0.2 = 100 messages per chat expected, at most 4 times that (a power of two).
        assert_eq!(million(Some(0.20), 10).plan(20), walk(512));
        assert_eq!(million(Some(0.64), 10).plan(20), walk(128));
        assert_eq!(million(Some(0.10), 1).plan(20), walk(1024), "one chat");
        assert_eq!(
            million(Some(0.64), 1000).plan(20),
            PostgresPlan::Index,
            "many chats"
        );
        let two_words = Estimate {
            words: 2,
            ..million(Some(0.64), 10)
        };
        assert_eq!(two_words.plan(20), PostgresPlan::Index, "one of them rare");
        let unanalyzed = Estimate {
            messages: -1.0,
            ..million(Some(0.64), 10)
        };
        assert_eq!(unanalyzed.plan(20), PostgresPlan::Index);
        let no_words = Estimate {
            words: 0,
            common_words: 0,
            ..million(Some(1.0), 10)
        };
        assert_eq!(no_words.plan(20), PostgresPlan::Index);
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
