//! Edits: the author replaces a message's text; the text it had is kept as a revision.

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::Expr,
};

use super::{BatchState, Pending, Rules, Step, refuse};
use crate::{
    bus::messages::{EditMessage, Event, MessageEdited, Outcome, VERSION},
    store::{message, message_revision},
};

impl BatchState {
    /// Applies an edit once: a redelivered or repeated command (its revision is stored) is
    /// answered again without changing anything.
    pub(super) async fn edit_message(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &EditMessage,
        at: DateTime<Utc>,
        rules: &Rules,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        // A message sent earlier in this batch is edited like one stored before.
        if self.new_rows.iter().any(|m| m.id == cmd.message_id) {
            self.flush_messages(db).await?;
        }
        let not_found = || {
            refuse(
                ErrorCode::NotFound,
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            )
        };
        let Some(stored) = message::Entity::find_by_id(cmd.message_id).one(db).await? else {
            return Err(not_found());
        };
        if stored.chat_id != cmd.chat_id {
            return Err(not_found());
        }
        let edited = Event::MessageEdited(MessageEdited {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            sender_id: stored.sender_id,
            content: cmd.content.clone(),
            edited_at: at,
            command_id: cmd.command_id.clone(),
        });
        let applied = |replies: &mut Vec<(String, Outcome)>| {
            super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        };
        let repeat = message_revision::Entity::find()
            .filter(message_revision::Column::MessageId.eq(cmd.message_id))
            .filter(message_revision::Column::CommandId.eq(cmd.command_id.as_str()))
            .one(db)
            .await?
            .is_some();
        if repeat {
            // Announced again (its journal row keeps its cursor), unless the message is gone.
            if stored.deleted_at.is_none() {
                pending.push(Pending::Ready(edited));
            }
            applied(replies);
            return Ok(());
        }
        if stored.sender_id != cmd.editor_id {
            return Err(refuse(
                ErrorCode::Forbidden,
                "only the author may edit a message",
            ));
        }
        self.require_member(cmd.chat_id, cmd.editor_id)?;
        if stored.deleted_at.is_some() {
            return Err(refuse(
                ErrorCode::MessageDeleted,
                format!("message {} was deleted", cmd.message_id),
            ));
        }
        if stored.content.trim().is_empty() {
            return Err(refuse(
                ErrorCode::NotEditable,
                format!(
                    "message {} carries only a file, which cannot be edited",
                    cmd.message_id
                ),
            ));
        }
        if !rules.within_edit_window(stored.created_at, at) {
            return Err(refuse(
                ErrorCode::EditWindowPassed,
                format!(
                    "message {} is too old to edit (EDIT_WINDOW)",
                    cmd.message_id
                ),
            ));
        }
        message_revision::Entity::insert(message_revision::ActiveModel {
            id: NotSet,
            message_id: Set(cmd.message_id),
            editor_id: Set(cmd.editor_id),
            content: Set(stored.content.clone()),
            command_id: Set(cmd.command_id.clone()),
            replaced_at: Set(at),
        })
        .exec_without_returning(db)
        .await?;
        message::Entity::update_many()
            .col_expr(message::Column::Content, Expr::value(cmd.content.as_str()))
            .col_expr(message::Column::EditedAt, Expr::value(at))
            .filter(message::Column::Id.eq(cmd.message_id))
            .exec(db)
            .await?;
        // Its replies quote the new text.
        self.requote(db, cmd.message_id, Some(&cmd.content)).await?;
        // A `message_created` of this batch shows the message as it is at commit.
        for m in self
            .existing
            .values_mut()
            .filter(|m| m.id == cmd.message_id)
        {
            m.content = cmd.content.clone();
            m.edited_at = Some(at);
        }
        pending.push(Pending::Ready(edited));
        applied(replies);
        Ok(())
    }
}
