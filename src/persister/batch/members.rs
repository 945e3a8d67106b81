//! Group membership: members added after the chat's newest message, members removed, an
//! owner who leaves succeeded.

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
    domain::roles::{GroupAction, authorize},
    store::{chat_member, message, roles},
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
        self.group_state(cmd.chat_id)?;
        if let Some(actor) = cmd.actor_id {
            self.authorize(db, cmd.chat_id, actor, GroupAction::AddMembers)
                .await?;
        }
        let chat = self.group_state(cmd.chat_id)?;
        let requested = distinct(cmd.user_ids.iter().copied());
        let new: Vec<UserId> = requested
            .iter()
            .copied()
            .filter(|id| !chat.members.contains_key(id))
            .collect();
        self.refuse_erased(db, new.iter().copied()).await?;
        let chat = self.group_state(cmd.chat_id)?;
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
        // Django (no actor) acts as the system; a member may not add who blocks them.
        if let Some(actor) = cmd.actor_id {
            self.require_not_blocked_by(db, actor, &new).await?;
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
        // `GET /chats/` rather than copied into every event.
        let view = if member_ids.len() <= MAX_MEMBERS_IN_EVENT {
            let group_roles = roles::of_chat(db, cmd.chat_id).await?;
            Some(chat.model.view(member_ids.clone(), &group_roles))
        } else {
            None
        };
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
                added_by: cmd.actor_id,
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
        self.group_state(cmd.chat_id)?;
        let requested = distinct(cmd.user_ids.iter().copied());
        let group_roles = roles::of_chat(db, cmd.chat_id).await?;
        if let Some(actor) = cmd.actor_id {
            let leaving_again =
                requested == [actor] && !self.chats[&cmd.chat_id].members.contains_key(&actor);
            // Leaving a group you left is announced again, like any repeat.
            if !leaving_again {
                let chat = &self.chats[&cmd.chat_id];
                if !chat.members.contains_key(&actor) {
                    return Err(super::groups::not_a_member(cmd.chat_id, actor, true));
                }
                let role = group_roles.role_of(actor);
                for user_id in &requested {
                    let action = if *user_id == actor {
                        GroupAction::Leave
                    } else {
                        GroupAction::Remove {
                            target: group_roles.role_of(*user_id),
                        }
                    };
                    authorize(role, action, chat.model.settings())?;
                }
            }
        }
        let chat = self.group_state(cmd.chat_id)?;
        let gone: Vec<UserId> = requested
            .iter()
            .copied()
            .filter(|id| chat.members.remove(id).is_some())
            .collect();
        let owner_left = group_roles
            .owner_id
            .is_some_and(|owner| gone.contains(&owner));
        if !gone.is_empty() {
            chat_member::Entity::delete_many()
                .filter(chat_member::Column::ChatId.eq(cmd.chat_id))
                .filter(chat_member::Column::UserId.is_in(crate::store::in_list(gone)))
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
                removed_by: cmd.actor_id,
            })));
        }
        if owner_left {
            super::groups::pass_ownership(db, cmd.chat_id, &cmd.command_id, pending).await?;
        }
        Ok(())
    }
}
