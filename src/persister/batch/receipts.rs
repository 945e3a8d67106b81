//! Receipts: members' delivered and read watermarks (and the push watermark, `push`), moved
//! forward only and written once per member at the end of a batch.

use crate::domain::ErrorCode;
use sea_orm::{ConnectionTrait, DbErr};

use super::{BatchState, Failure, Pending, Step, refuse};
use crate::{
    bus::messages::{DeliveredMarks, Event, MarkReceipt, ReceiptEvent, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, ReceiptStatus},
};

/// One member's mark of a message, from a receipt or a delivered mark.
struct Mark {
    chat_id: ChatId,
    user_id: UserId,
    message_id: MessageId,
    status: ReceiptStatus,
}

/// Members per watermark `UPDATE` (5 parameters each).
const MARKS_CHUNK: usize = 500;

/// `UPDATE chat_members` raising the watermarks of `rows` members to the values given as
/// `(chat_id, user_id, delivered, read, pushed)` parameters; the same SQL on SQLite and PostgreSQL
/// but for the placeholders.
fn raise_marks_sql(backend: sea_orm::DatabaseBackend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql =
        String::from("WITH marks (chat_id, user_id, delivered, read_to, pushed) AS (VALUES ");
    for row in 0..rows {
        let sep = if row == 0 { "" } else { ", " };
        match backend {
            sea_orm::DatabaseBackend::Postgres => {
                let n = row * 5;
                let _ = write!(
                    sql,
                    "{sep}(${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                );
            }
            _ => {
                let _ = write!(sql, "{sep}(?, ?, ?, ?, ?)");
            }
        }
    }
    sql.push_str(
        ") UPDATE chat_members SET \
         last_delivered_message_id = CASE WHEN chat_members.last_delivered_message_id < marks.delivered \
         THEN marks.delivered ELSE chat_members.last_delivered_message_id END, \
         last_read_message_id = CASE WHEN chat_members.last_read_message_id < marks.read_to \
         THEN marks.read_to ELSE chat_members.last_read_message_id END, \
         push_notified_message_id = CASE WHEN chat_members.push_notified_message_id < marks.pushed \
         THEN marks.pushed ELSE chat_members.push_notified_message_id END \
         FROM marks WHERE chat_members.chat_id = marks.chat_id AND chat_members.user_id = marks.user_id",
    );
    sql
}

impl BatchState {
    pub(super) async fn receipt(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &MarkReceipt,
        pending: &mut Vec<Pending>,
    ) -> Step {
        self.mark(
            db,
            Mark {
                chat_id: cmd.chat_id,
                user_id: cmd.user_id,
                message_id: cmd.message_id,
                status: cmd.status,
            },
            pending,
        )
        .await
    }

    /// An instance's gathered delivered marks: each applies as a `delivered` receipt would;
    /// one that no longer does (its user left the chat, the message was deleted) is skipped.
    pub(super) async fn delivered_marks(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &DeliveredMarks,
        pending: &mut Vec<Pending>,
    ) -> Step {
        for mark in &cmd.marks {
            let applied = self
                .mark(
                    db,
                    Mark {
                        chat_id: mark.chat_id,
                        user_id: mark.user_id,
                        message_id: mark.message_id,
                        status: ReceiptStatus::Delivered,
                    },
                    pending,
                )
                .await;
            match applied {
                Ok(()) => {}
                Err(Failure::Refused(refusal)) => tracing::debug!(
                    chat_id = mark.chat_id,
                    user_id = mark.user_id,
                    message_id = mark.message_id,
                    code = %refusal.code,
                    detail = refusal.detail,
                    "delivered mark skipped"
                ),
                Err(write) => return Err(write),
            }
        }
        Ok(())
    }

    /// Moves a member's watermark; the receipt event tells the marked message's author. A
    /// later mark of the same member, status and author in this batch replaces the earlier
    /// one's event: the author is told the highest watermark once.
    async fn mark(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: Mark,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let message = self.message_ref(db, cmd.message_id).await?;
        let Some(chat) = self.chats.get_mut(&cmd.chat_id) else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("chat {} does not exist", cmd.chat_id),
            ));
        };
        let Some(marks) = chat.members.get(&cmd.user_id).copied() else {
            return Err(refuse(
                ErrorCode::Forbidden,
                format!("you are not a member of chat {}", cmd.chat_id),
            ));
        };
        let Some(message) = message else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("message {} does not exist", cmd.message_id),
            ));
        };
        if message.chat_id != cmd.chat_id {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            ));
        }
        if message.sender_id == cmd.user_id {
            return Err(refuse(
                ErrorCode::Forbidden,
                "you cannot mark your own message",
            ));
        }
        let mut next = marks;
        match cmd.status {
            ReceiptStatus::Delivered => next.delivered = next.delivered.max(cmd.message_id),
            ReceiptStatus::Read => {
                next.read = next.read.max(cmd.message_id);
                next.delivered = next.delivered.max(cmd.message_id);
            }
        }
        if next.delivered == marks.delivered && next.read == marks.read {
            return Ok(()); // Watermarks only move forward; nothing new to tell.
        }
        chat.members.insert(cmd.user_id, next);
        // Written once per member, at the end of the batch.
        self.moved_marks.insert((cmd.chat_id, cmd.user_id));
        let told = (cmd.chat_id, cmd.user_id, cmd.status, message.sender_id);
        if let Some(earlier) = self.told_receipts.insert(told, pending.len()) {
            pending[earlier] = Pending::Superseded;
        }
        pending.push(Pending::Ready(Event::Receipt(ReceiptEvent {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            user_id: cmd.user_id,
            status: cmd.status,
            sender_id: message.sender_id,
        })));
        Ok(())
    }

    /// Writes the watermarks receipts moved: one statement per [`MARKS_CHUNK`] members
    /// instead of one per receipt. A watermark is never lowered, even if another persister
    /// moved it further meanwhile.
    pub(super) async fn flush_marks(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        if self.moved_marks.is_empty() {
            return Ok(());
        }
        let mut moved: Vec<(ChatId, UserId)> = self.moved_marks.drain().collect();
        moved.sort_unstable(); // the same lock order in every transaction (PostgreSQL)
        let backend = db.get_database_backend();
        for chunk in moved.chunks(MARKS_CHUNK) {
            let mut values = Vec::with_capacity(chunk.len() * 5);
            for &(chat_id, user_id) in chunk {
                let Some(marks) = self
                    .chats
                    .get(&chat_id)
                    .and_then(|c| c.members.get(&user_id))
                else {
                    continue; // removed later in the batch: the row is gone
                };
                values.extend(
                    [chat_id, user_id, marks.delivered, marks.read, marks.pushed].map(Into::into),
                );
            }
            if values.is_empty() {
                continue;
            }
            let sql = raise_marks_sql(backend, values.len() / 5);
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        }
        Ok(())
    }
}
