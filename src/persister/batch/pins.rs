//! Pins: a group's admins and owner (in a private chat, either member; Django without an
//! actor) pin and unpin messages of the chat, at most [`MAX_PINS`] at once.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

use super::{BatchState, Pending, Step, groups::not_a_member, refuse};
use crate::{
    bus::messages::{Event, Outcome, PinChange, PinMessage, VERSION},
    domain::{ErrorCode, roles::GroupAction},
    store::{message, pinned_message, pins::MAX_PINS},
};

impl BatchState {
    /// Applies a `pin_message`. A repeat of the command that pinned the message is announced
    /// again; pinning a pinned message (another command's) or unpinning one that is not
    /// changes nothing and announces nothing (both are `applied`).
    pub(super) async fn pin(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &PinMessage,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let Some(chat) = self.chats.get(&cmd.chat_id) else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("chat {} does not exist", cmd.chat_id),
            ));
        };
        if let Some(actor) = cmd.actor_id {
            if chat.model.is_group {
                self.authorize(db, cmd.chat_id, actor, GroupAction::Pin)
                    .await?;
            } else if !chat.members.contains_key(&actor) {
                return Err(not_a_member(cmd.chat_id, actor, true));
            }
        }
        // A message sent earlier in this batch is pinned like one stored before.
        if self.new_rows.iter().any(|m| m.id == cmd.message_id) {
            self.flush_messages(db).await?;
        }
        let stored = message::Entity::find_by_id(cmd.message_id).one(db).await?;
        match &stored {
            Some(m) if m.chat_id == cmd.chat_id => {}
            _ => {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
                ));
            }
        }
        let existing = pinned_message::Entity::find_by_id((cmd.chat_id, cmd.message_id))
            .one(db)
            .await?;
        let change = PinChange {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            by: cmd.actor_id,
            command_id: cmd.command_id.clone(),
        };
        let announce = match (cmd.pinned, existing) {
            (true, Some(pin)) => pin.command_id == cmd.command_id,
            (true, None) => {
                if stored.is_some_and(|m| m.deleted_at.is_some()) {
                    return Err(refuse(
                        ErrorCode::MessageDeleted,
                        format!("message {} was deleted", cmd.message_id),
                    ));
                }
                let pinned = pinned_message::Entity::find()
                    .filter(pinned_message::Column::ChatId.eq(cmd.chat_id))
                    .count(db)
                    .await?;
                if pinned >= MAX_PINS {
                    return Err(refuse(
                        ErrorCode::TooManyPins,
                        format!(
                            "chat {} already has {MAX_PINS} pinned messages",
                            cmd.chat_id
                        ),
                    ));
                }
                pinned_message::Entity::insert(pinned_message::ActiveModel {
                    chat_id: Set(cmd.chat_id),
                    message_id: Set(cmd.message_id),
                    pinned_by: Set(cmd.actor_id),
                    command_id: Set(cmd.command_id.clone()),
                    pinned_at: Set(at),
                })
                .exec_without_returning(db)
                .await?;
                true
            }
            (false, Some(_)) => {
                pinned_message::Entity::delete_by_id((cmd.chat_id, cmd.message_id))
                    .exec(db)
                    .await?;
                true
            }
            (false, None) => false,
        };
        if announce {
            pending.push(Pending::Ready(if cmd.pinned {
                Event::MessagePinned(change)
            } else {
                Event::MessageUnpinned(change)
            }));
        }
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }
}
