//! Reads, in a few queries, every chat, member, marked message and upload a batch refers to.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::{BatchState, ChatState, Incoming, Marked, Marks};
use crate::{
    bus::messages::Command,
    domain::ChatId,
    domain::MessageId,
    domain::UserId,
    store::{blocks, chat, message, queries, upload},
};

impl BatchState {
    /// Loads every chat, member, marked message and upload the batch refers to, in a few
    /// queries.
    pub(super) async fn load(db: &impl ConnectionTrait, batch: &[Incoming]) -> Result<Self, DbErr> {
        let mut chat_ids = HashSet::new();
        let mut private_keys = HashSet::new();
        let mut marked_ids = HashSet::new();
        let mut file_ids = HashSet::new();
        for incoming in batch {
            match &incoming.command {
                Command::SendMessage(c) => {
                    match (c.chat_id, c.receiver_id) {
                        (Some(id), _) => chat_ids.insert(id),
                        (None, Some(r)) => private_keys.insert(chat::private_key(c.sender_id, r)),
                        _ => false,
                    };
                    file_ids.extend(c.file_id.clone().filter(|id| storable(id)));
                }
                Command::Receipt(c) => {
                    chat_ids.insert(c.chat_id);
                    marked_ids.insert(c.message_id);
                }
                Command::DeliveredMarks(c) => {
                    for mark in &c.marks {
                        chat_ids.insert(mark.chat_id);
                        marked_ids.insert(mark.message_id);
                    }
                }
                Command::CreateChat(c) if !c.is_group => {
                    if let [other] = c.other_members().as_slice() {
                        private_keys.insert(chat::private_key(c.creator_id, *other));
                    }
                }
                Command::CreateChat(_) => {}
                Command::AddMembers(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::RemoveMembers(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::RenameChat(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::UpdateChat(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::SetMemberRole(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::DeleteChat(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::DeleteMessage(c) => {
                    chat_ids.insert(c.chat_id);
                    marked_ids.insert(c.message_id);
                }
                Command::RegisterUpload(c) if storable(&c.file_id) => {
                    file_ids.insert(c.file_id.clone());
                }
                Command::RegisterUpload(_) => {}
                Command::EditMessage(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::React(c) | Command::Unreact(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::MuteChat(c) => {
                    chat_ids.insert(c.chat_id);
                }
                Command::PushDue(c) => {
                    chat_ids.insert(c.chat_id);
                    marked_ids.insert(c.through_message_id);
                }
                // The directory row is read when applied (rare: no batch-wide load).
                Command::UpsertUser(_) | Command::EraseUser(_) => {}
                // Written when applied; a block's own pair needs no read.
                Command::SetBlock(_) => {}
                Command::PinMessage(c) => {
                    chat_ids.insert(c.chat_id);
                }
            }
        }
        let mut condition = sea_orm::Condition::any();
        if !chat_ids.is_empty() {
            condition = condition
                .add(chat::Column::Id.is_in(crate::store::in_list(chat_ids.iter().copied())));
        }
        if !private_keys.is_empty() {
            condition = condition.add(
                chat::Column::PrivateKey.is_in(crate::store::in_list(private_keys.iter().cloned())),
            );
        }
        let chat_rows = if chat_ids.is_empty() && private_keys.is_empty() {
            Vec::new()
        } else {
            chat::Entity::find().filter(condition).all(db).await?
        };
        let members = if chat_rows.is_empty() {
            Vec::new()
        } else {
            queries::members(db, chat_rows.iter().map(|c| c.id)).await?
        };
        let mut chats: HashMap<ChatId, ChatState> = chat_rows
            .into_iter()
            .map(|model| {
                (
                    model.id,
                    ChatState {
                        model,
                        members: HashMap::new(),
                    },
                )
            })
            .collect();
        for m in members {
            if let Some(chat) = chats.get_mut(&m.chat_id) {
                chat.members.insert(m.user_id, Marks::of(&m));
            }
        }
        let blocks = private_blocks(db, batch, &chats).await?;
        let private = chats
            .values()
            .filter_map(|c| Some((c.model.private_key.clone()?, c.model.id)))
            .collect();
        let marked = if marked_ids.is_empty() {
            HashMap::new()
        } else {
            // Three columns, not the rows: a batch of delivered marks refers to as many
            // messages, and every column read is a copy.
            message::Entity::find()
                .select_only()
                .columns([
                    message::Column::Id,
                    message::Column::ChatId,
                    message::Column::SenderId,
                ])
                .filter(message::Column::Id.is_in(crate::store::in_list(marked_ids)))
                .into_tuple::<(MessageId, ChatId, UserId)>()
                .all(db)
                .await?
                .into_iter()
                .map(|(id, chat_id, sender_id)| (id, Marked { chat_id, sender_id }))
                .collect()
        };
        let uploads = if file_ids.is_empty() {
            HashMap::new()
        } else {
            upload::Entity::find()
                .filter(upload::Column::Id.is_in(crate::store::in_list(file_ids)))
                .all(db)
                .await?
                .into_iter()
                .map(|u| (u.id, (u.owner_id, u.kind)))
                .collect()
        };
        Ok(BatchState {
            uploads,
            marked,
            chats,
            private,
            existing: HashMap::new(),
            new_rows: Vec::new(),
            new_keys: HashSet::new(),
            moved_marks: HashSet::new(),
            told_receipts: HashMap::new(),
            messages_stored: 0,
            blocks,
            erased_blobs: Vec::new(),
        })
    }
}

/// The blocks that could refuse this batch's private messages and chats: per message into a
/// private chat, whether its other member blocks the sender; per message to a receiver or new
/// private chat, whether the receiver blocks the sender. One query for them all, none for a
/// batch without private traffic.
async fn private_blocks(
    db: &impl ConnectionTrait,
    batch: &[Incoming],
    chats: &HashMap<ChatId, ChatState>,
) -> Result<HashSet<(UserId, UserId)>, DbErr> {
    let mut pairs = HashSet::new();
    for incoming in batch {
        match &incoming.command {
            Command::SendMessage(c) => match (c.chat_id, c.receiver_id) {
                (Some(id), _) => {
                    let Some(chat) = chats.get(&id).filter(|chat| !chat.model.is_group) else {
                        continue;
                    };
                    pairs.extend(
                        chat.members
                            .keys()
                            .filter(|member| **member != c.sender_id)
                            .map(|member| (*member, c.sender_id)),
                    );
                }
                (None, Some(receiver)) => {
                    pairs.insert((receiver, c.sender_id));
                }
                (None, None) => {}
            },
            Command::CreateChat(c) if !c.is_group => {
                if let [other] = c.other_members().as_slice() {
                    pairs.insert((*other, c.creator_id));
                }
            }
            _ => {}
        }
    }
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    blocks::holding(db, &pairs).await
}

/// Whether a key could have been stored: one with NUL cannot (the rules refuse it, and
/// PostgreSQL refuses a query that names it, which would fail the whole batch and leave the
/// command refused as `invalid_data` instead of `invalid_field`).
fn storable(key: &str) -> bool {
    !key.contains('\0')
}
