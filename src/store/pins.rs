//! The queries behind pins: a chat's pinned messages, newest pin first.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::{message, pinned_message};
use crate::domain::ChatId;

/// Most messages one chat keeps pinned.
pub const MAX_PINS: u64 = 100;

/// `chat_id`'s pinned messages that are not deleted, with their pins, newest pin first.
pub async fn of_chat(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
) -> Result<Vec<(pinned_message::Model, message::Model)>, DbErr> {
    let pins = pinned_message::Entity::find()
        .filter(pinned_message::Column::ChatId.eq(chat_id))
        .order_by_desc(pinned_message::Column::PinnedAt)
        .order_by_desc(pinned_message::Column::MessageId)
        .all(db)
        .await?;
    if pins.is_empty() {
        return Ok(Vec::new());
    }
    let mut messages: std::collections::HashMap<i64, message::Model> = message::Entity::find()
        .filter(message::Column::Id.is_in(super::in_list(pins.iter().map(|p| p.message_id))))
        .filter(message::Column::DeletedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(pins
        .into_iter()
        .filter_map(|pin| {
            let message = messages.remove(&pin.message_id)?;
            Some((pin, message))
        })
        .collect())
}
