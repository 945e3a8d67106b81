//! Group membership: members added after the chat's newest message, members removed.

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};

use super::{
    BatchState, ChatState, Failure, INSERT_CHUNK, MAX_GROUP_MEMBERS, Marks, Pending, Step,
    distinct, refuse,
};
use crate::{
    bus::messages::{AddMembers, Event, MemberAdded, MemberRemoved, RemoveMembers, VERSION},
    domain::ChatId,
    domain::UserId,
    store::{chat_member, message},
};

/// Largest group whose `member_added` events carry the whole group.
const MAX_MEMBERS_IN_EVENT: usize = 1000;

impl BatchState {
    /// The group `chat_id`, or why a group command cannot apply to it.
    pub(super) fn group_state(&mut self, chat_id: ChatId) -> Result<&mut ChatState, Failure> {
        match self.chats.get_mut(&chat_id) {
            None => Err(refuse(
                ErrorCode::NotFound,
                format!("chat {chat_id} does not exist"),
            )),
            Some(chat) if !chat.model.is_group => Err(refuse(
                ErrorCode::NotAGroup,
                format!("chat {chat_id} is private; its members are fixed"),
            )),
            Some(chat) => Ok(chat),
        }
    }

    pub(super) async fn add_members(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &AddMembers,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let chat = self.group_state(cmd.chat_id)?;
        let requested = distinct(cmd.user_ids.iter().copied());
        let new: Vec<UserId> = requested
            .iter()
            .copied()
            .filter(|id| !chat.members.contains_key(id))
            .collect();
        if chat.members.len() + new.len() > MAX_GROUP_MEMBERS {
            return Err(refuse(
                ErrorCode::TooManyMembers,
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            ));
        }
        // Messages earlier in this batch come before the join.
        self.flush_messages(db).await?;
        let after: Option<i64> = message::Entity::find()
            .select_only()
            .column_as(message::Column::Id.max(), "max_id")
            .filter(message::Column::ChatId.eq(cmd.chat_id))
            .into_tuple()
            .one(db)
            .await?
            .flatten();
        let after = after.unwrap_or(0);
        for chunk in new.chunks(INSERT_CHUNK) {
            chat_member::Entity::insert_many(chunk.iter().map(|user_id| {
                chat_member::ActiveModel {
                    chat_id: Set(cmd.chat_id),
                    user_id: Set(*user_id),
                    joined_at: Set(at),
                    last_delivered_message_id: Set(after),
                    last_read_message_id: Set(after),
                    push_notified_message_id: Set(after),
                    muted_until: Set(None),
                }
            }))
            .exec_without_returning(db)
            .await?;
        }
        let chat = self.chats.get_mut(&cmd.chat_id).expect("checked above");
        for user_id in new {
            chat.members.insert(user_id, Marks::joined(after));
        }
        let mut member_ids: Vec<UserId> = chat.members.keys().copied().collect();
        member_ids.sort_unstable();
        // The group as the new members' chat lists show it; a very large one is left to
        // `GET /chats/{id}` rather than copied into every event.
        let view =
            (member_ids.len() <= MAX_MEMBERS_IN_EVENT).then(|| chat.model.view(member_ids.clone()));
        // Names for the members' chat lists: everyone's in a small group, else the new
        // members' only (one directory read per command).
        let everyone = member_ids.len() <= crate::domain::MAX_LISTED_PROFILES;
        let listed = if everyone {
            member_ids
        } else {
            requested.clone()
        };
        let profiles = crate::store::users::profiles(db, listed).await?;
        // Every requested user is announced, members from before too: applying the command
        // again (a redelivery) announces the same outcome.
        for user_id in requested {
            let profiles = if everyone {
                profiles.clone()
            } else {
                profiles
                    .iter()
                    .filter(|p| p.user_id == user_id)
                    .cloned()
                    .collect()
            };
            pending.push(Pending::Ready(Event::MemberAdded(MemberAdded {
                v: VERSION,
                cursor: None,
                chat_id: cmd.chat_id,
                user_id,
                after_message_id: after,
                command_id: Some(cmd.command_id.clone()),
                chat: view.clone(),
                profiles,
            })));
        }
        Ok(())
    }

    pub(super) async fn remove_members(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &RemoveMembers,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let chat = self.group_state(cmd.chat_id)?;
        let requested = distinct(cmd.user_ids.iter().copied());
        let gone: Vec<UserId> = requested
            .iter()
            .copied()
            .filter(|id| chat.members.remove(id).is_some())
            .collect();
        if !gone.is_empty() {
            chat_member::Entity::delete_many()
                .filter(chat_member::Column::ChatId.eq(cmd.chat_id))
                .filter(chat_member::Column::UserId.is_in(gone))
                .exec(db)
                .await?;
        }
        // Announced for every requested user, so a repeated command has the same outcome.
        for user_id in requested {
            pending.push(Pending::Ready(Event::MemberRemoved(MemberRemoved {
                v: VERSION,
                cursor: None,
                chat_id: cmd.chat_id,
                user_id,
                command_id: Some(cmd.command_id.clone()),
            })));
        }
        Ok(())
    }
}
