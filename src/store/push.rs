//! The push scanner's one query: the members owed a push for messages that became due in a
//! time window (docs/operations.md, "Push notifications").

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};

use crate::domain::ChatId;
use crate::{domain::MessageId, domain::UserId};

/// A member with messages from others that no socket of theirs got and no push covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuePush {
    pub chat_id: ChatId,
    pub user_id: UserId,
    /// The chat's newest message: the push covers everything up to it, so the messages that
    /// arrive while the member stays offline go out together.
    pub through_message_id: MessageId,
}

/// Where a bounded scan goes on: after this `(chat_id, user_id)`.
pub type ScanKey = (ChatId, UserId);

/// The members (after `after`, in `(chat_id, user_id)` order, at most `limit`) owed a push for
/// a message stored with `created_at` in `(from, to]`: from someone else, not deleted, above
/// both their delivered and their push watermark, in a chat they have not muted at `now` (or
/// muted without its mentions, for a message that mentions them).
/// One statement: the window's messages by `idx_messages_created_at`, each chat's members by
/// the primary key, each chat's newest message by `idx_messages_chat_id`.
pub async fn due(
    db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    after: ScanKey,
    limit: u64,
) -> Result<Vec<DuePush>, DbErr> {
    let backend = db.get_database_backend();
    let sql = super::placeholders(backend, DUE_SQL);
    let values: Vec<Value> = vec![
        from.into(),
        to.into(),
        now.into(),
        after.0.into(),
        after.0.into(),
        after.1.into(),
        i64::try_from(limit).unwrap_or(i64::MAX).into(),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DuePush {
                chat_id: row.try_get("", "chat_id")?,
                user_id: row.try_get("", "user_id")?,
                through_message_id: row.try_get("", "through_id")?,
            })
        })
        .collect()
}

/// [`due`]'s statement, with `?` placeholders. `CROSS JOIN` makes SQLite start from the
/// window's messages (an inner join let it start from `chat_members`, because of the keyset
/// condition, and read every member: 3.2 s instead of 0.08 s on a million members,
/// docs/operations.md); PostgreSQL plans it as the inner join it is.
pub const DUE_SQL: &str = "SELECT cm.chat_id, cm.user_id, \
     (SELECT MAX(n.id) FROM messages n WHERE n.chat_id = cm.chat_id) AS through_id \
     FROM messages m CROSS JOIN chat_members cm \
     WHERE cm.chat_id = m.chat_id \
     AND m.created_at > ? AND m.created_at <= ? \
     AND m.deleted_at IS NULL \
     AND m.sender_id <> cm.user_id \
     AND m.id > cm.last_delivered_message_id \
     AND m.id > cm.push_notified_message_id \
     AND (cm.muted_until IS NULL OR cm.muted_until <= ? \
          OR (NOT cm.mentions_muted \
              AND (',' || m.mentions || ',') LIKE ('%,' || CAST(cm.user_id AS TEXT) || ',%'))) \
     AND (cm.chat_id > ? OR (cm.chat_id = ? AND cm.user_id > ?)) \
     GROUP BY cm.chat_id, cm.user_id \
     ORDER BY cm.chat_id, cm.user_id \
     LIMIT ?";
