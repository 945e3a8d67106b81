//! Reactions: a member adds or takes back an emoji on a message of their chat; one of each
//! emoji per user and message, at most [`MAX_REACTION_EMOJI`] distinct emoji per message.

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::{BatchState, Pending, Step, refuse};
use crate::domain::rules::MAX_REACTION_EMOJI;
use crate::{
    bus::messages::{Event, Outcome, ReactToMessage, Reaction, VERSION},
    store::{message, message_reaction},
};

impl BatchState {
    /// Applies a `react` (`add`) or an `unreact`. A repeat of the `react` that added the
    /// reaction is announced again; another `react` of the same emoji, or an `unreact` of
    /// none, changes nothing and announces nothing (both are `applied`).
    pub(super) async fn react(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &ReactToMessage,
        add: bool,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        // A message sent earlier in this batch is reacted to like one stored before.
        if self.new_rows.iter().any(|m| m.id == cmd.message_id) {
            self.flush_messages(db).await?;
        }
        let stored = message::Entity::find_by_id(cmd.message_id).one(db).await?;
        if stored.as_ref().is_none_or(|m| m.chat_id != cmd.chat_id) {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            ));
        }
        self.require_member(cmd.chat_id, cmd.user_id)?;
        if stored.is_some_and(|m| m.deleted_at.is_some()) {
            return Err(refuse(
                ErrorCode::MessageDeleted,
                format!("message {} was deleted", cmd.message_id),
            ));
        }
        let existing = message_reaction::Entity::find()
            .filter(message_reaction::Column::MessageId.eq(cmd.message_id))
            .filter(message_reaction::Column::UserId.eq(cmd.user_id))
            .filter(message_reaction::Column::Emoji.eq(cmd.emoji.as_str()))
            .one(db)
            .await?;
        let event = Reaction {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            user_id: cmd.user_id,
            emoji: cmd.emoji.clone(),
            command_id: cmd.command_id.clone(),
        };
        let announce = match (add, existing) {
            (true, Some(row)) => row.command_id == cmd.command_id,
            (true, None) => {
                let on_message = || {
                    message_reaction::Entity::find()
                        .filter(message_reaction::Column::MessageId.eq(cmd.message_id))
                };
                let used = on_message()
                    .filter(message_reaction::Column::Emoji.eq(cmd.emoji.as_str()))
                    .count(db)
                    .await?
                    > 0;
                let taken = on_message()
                    .select_only()
                    .column(message_reaction::Column::Emoji)
                    .distinct()
                    .count(db)
                    .await?;
                if !used && taken >= MAX_REACTION_EMOJI as u64 {
                    return Err(refuse(
                        ErrorCode::TooManyReactions,
                        format!(
                            "message {} already has {MAX_REACTION_EMOJI} different emoji",
                            cmd.message_id
                        ),
                    ));
                }
                message_reaction::Entity::insert(message_reaction::ActiveModel {
                    id: NotSet,
                    message_id: Set(cmd.message_id),
                    user_id: Set(cmd.user_id),
                    emoji: Set(cmd.emoji.clone()),
                    command_id: Set(cmd.command_id.clone()),
                    created_at: Set(at),
                })
                .exec_without_returning(db)
                .await?;
                true
            }
            (false, Some(row)) => {
                message_reaction::Entity::delete_by_id(row.id)
                    .exec(db)
                    .await?;
                true
            }
            (false, None) => false,
        };
        if announce {
            pending.push(Pending::Ready(if add {
                Event::ReactionAdded(event)
            } else {
                Event::ReactionRemoved(event)
            }));
        }
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }
}
