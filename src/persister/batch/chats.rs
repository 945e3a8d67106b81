//! Chats: private chats found or created by their pair, groups created once per command id,
//! renames.

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::{
    BatchState, ChatState, INSERT_CHUNK, MAX_GROUP_MEMBERS, Marks, Pending, Step, distinct, refuse,
};
use crate::{
    bus::messages::{ChatCreated, CreateChat, Event, Outcome, VERSION},
    domain::ChatId,
    domain::Role,
    domain::UserId,
    store::{changes, chat, chat_member, queries, roles},
};

impl BatchState {
    pub(super) async fn create_chat(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &CreateChat,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        // Checked by `Rules::check`: the name, the ids. Members are as `other_members` has them:
        // each once, the creator not among them (however the command listed them).
        let others = cmd.other_members();
        self.refuse_erased(db, others.iter().copied().chain([cmd.creator_id]))
            .await?;
        let (chat_id, created) = if cmd.is_group {
            let ids = distinct(others.iter().copied().chain([cmd.creator_id]));
            if ids.len() > MAX_GROUP_MEMBERS {
                return Err(refuse(
                    ErrorCode::TooManyMembers,
                    format!("a group starts with at most {MAX_GROUP_MEMBERS} members"),
                ));
            }
            self.require_not_blocked_by(db, cmd.creator_id, &others)
                .await?;
            self.group(db, cmd, &ids, at, pending).await?
        } else {
            let [other] = others.as_slice() else {
                return Err(refuse(
                    ErrorCode::InvalidMember,
                    "a private chat has exactly one member besides you",
                ));
            };
            self.require_unblocked(*other, cmd.creator_id)?;
            self.private_chat(
                db,
                cmd.creator_id,
                *other,
                Some(&cmd.command_id),
                at,
                pending,
            )
            .await?
        };
        let group_roles = if cmd.is_group {
            roles::of_chat(db, chat_id).await?
        } else {
            roles::GroupRoles::default()
        };
        let chat = &self.chats[&chat_id];
        let mut member_ids: Vec<UserId> = chat.members.keys().copied().collect();
        member_ids.sort_unstable();
        if !created {
            let again = Event::ChatCreated(ChatCreated {
                v: VERSION,
                cursor: None,
                command_id: Some(cmd.command_id.clone()),
                chat: chat.model.view(member_ids.clone(), &group_roles),
                profiles: listed_profiles(db, &member_ids).await?,
            });
            // This command applied before (a retry, a redelivery whose announcement may not
            // have gone out): the same event again, journaled once. A private chat that
            // another command or a first message made is no change: the command is answered
            // on `reply_to` alone, and its members are told nothing new.
            let applied_before =
                cmd.is_group || !changes::cursors_of(db, [again.key()]).await?.is_empty();
            if applied_before {
                pending.push(Pending::Ready(again));
            }
        }
        if let Some(reply_to) = &cmd.reply_to {
            replies.push((
                reply_to.clone(),
                Outcome::ChatReady {
                    v: VERSION,
                    command_id: cmd.command_id.clone(),
                    chat: chat.model.view(member_ids, &group_roles),
                    created,
                },
            ));
        }
        Ok(())
    }

    /// Finds or creates the private chat of two users; `true` when created now.
    pub(super) async fn private_chat(
        &mut self,
        db: &impl ConnectionTrait,
        a: UserId,
        b: UserId,
        command_id: Option<&str>,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Result<(ChatId, bool), DbErr> {
        let key = chat::private_key(a, b);
        if let Some(id) = self.private.get(&key) {
            return Ok((*id, false));
        }
        let model = chat::Entity::insert(chat::ActiveModel {
            name: Set(None),
            is_group: Set(false),
            private_key: Set(Some(key.clone())),
            create_command_id: Set(None),
            created_by: Set(a),
            created_at: Set(at),
            ..Default::default()
        })
        .exec_with_returning(db)
        .await?;
        self.private.insert(key, model.id);
        let id = model.id;
        self.add_chat(db, model, &[a.min(b), a.max(b)], None, command_id, pending)
            .await?;
        Ok((id, true))
    }

    /// Creates a group once per command id; `true` when created now.
    pub(super) async fn group(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &CreateChat,
        member_ids: &[UserId],
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Result<(ChatId, bool), DbErr> {
        let existing = chat::Entity::find()
            .filter(chat::Column::CreateCommandId.eq(cmd.command_id.as_str()))
            .one(db)
            .await?;
        if let Some(model) = existing {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.chats.entry(model.id) {
                let members = queries::members(db, [model.id]).await?;
                let members = members
                    .into_iter()
                    .map(|m| (m.user_id, Marks::of(&m)))
                    .collect();
                slot.insert(ChatState {
                    model: model.clone(),
                    members,
                });
            }
            return Ok((model.id, false));
        }
        let model = chat::Entity::insert(chat::ActiveModel {
            name: Set(cmd.name.clone()),
            is_group: Set(true),
            private_key: Set(None),
            create_command_id: Set(Some(cmd.command_id.clone())),
            created_by: Set(cmd.creator_id),
            created_at: Set(at),
            ..Default::default()
        })
        .exec_with_returning(db)
        .await?;
        let id = model.id;
        self.add_chat(
            db,
            model,
            member_ids,
            Some(cmd.creator_id),
            Some(&cmd.command_id),
            pending,
        )
        .await?;
        Ok((id, true))
    }

    /// Stores a new chat's members (a group's `owner` its creator) and announces the chat.
    pub(super) async fn add_chat(
        &mut self,
        db: &impl ConnectionTrait,
        model: chat::Model,
        member_ids: &[UserId],
        owner: Option<UserId>,
        command_id: Option<&str>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), DbErr> {
        for chunk in member_ids.chunks(INSERT_CHUNK) {
            chat_member::Entity::insert_many(chunk.iter().map(|user_id| {
                chat_member::ActiveModel {
                    chat_id: Set(model.id),
                    user_id: Set(*user_id),
                    joined_at: Set(model.created_at),
                    last_delivered_message_id: Set(0),
                    last_read_message_id: Set(0),
                    push_notified_message_id: Set(0),
                    muted_until: Set(None),
                }
            }))
            .exec_without_returning(db)
            .await?;
        }
        if let Some(owner) = owner {
            roles::set(db, model.id, owner, Role::Owner).await?;
        }
        let group_roles = roles::GroupRoles {
            owner_id: owner,
            admin_ids: Vec::new(),
        };
        pending.push(Pending::Ready(Event::ChatCreated(ChatCreated {
            v: VERSION,
            cursor: None,
            command_id: command_id.map(str::to_owned),
            chat: model.view(member_ids.to_vec(), &group_roles),
            profiles: listed_profiles(db, member_ids).await?,
        })));
        let members = member_ids
            .iter()
            .map(|id| (*id, Marks::joined(0)))
            .collect();
        self.chats.insert(model.id, ChatState { model, members });
        Ok(())
    }
}

/// The members' directory profiles a new chat's event carries: one read by primary key per
/// new chat (a first message to a user pays it once per pair, never per message); none for a
/// group of over [`MAX_LISTED_PROFILES`] members.
pub(super) async fn listed_profiles(
    db: &impl ConnectionTrait,
    member_ids: &[UserId],
) -> Result<Vec<crate::domain::UserProfile>, sea_orm::DbErr> {
    if member_ids.len() > crate::domain::MAX_LISTED_PROFILES {
        return Ok(Vec::new());
    }
    crate::store::users::profiles(db, member_ids.iter().copied()).await
}
