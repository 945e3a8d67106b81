//! Groups their members run: roles, settings, renames and deletion. A command that names an
//! `actor_id` is judged by [`crate::domain::roles::authorize`] on the actor's role, read here
//! (never on the message path); one without is Django's and acts as the system.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, SimpleExpr},
};

use super::{BatchState, Failure, Pending, Step, refuse};
use crate::{
    bus::messages::{
        ChatDeleted, ChatRenamed, ChatUpdated, DeleteChat, Event, MemberRoleChanged, Outcome,
        RenameChat, SetMemberRole, UpdateChat, VERSION,
    },
    domain::{
        ChatId, ErrorCode, Role, SettingsChange, UserId,
        roles::{GroupAction, authorize},
    },
    store::{changes, chat, message, roles},
};

impl BatchState {
    /// The role of `actor` in `chat_id` (refused `not_a_member` for one who is not a member),
    /// and whether it allows `action` there.
    pub(super) async fn authorize(
        &self,
        db: &impl ConnectionTrait,
        chat_id: ChatId,
        actor: UserId,
        action: GroupAction,
    ) -> Step {
        let Some(chat) = self.chats.get(&chat_id) else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("chat {chat_id} does not exist"),
            ));
        };
        if !chat.members.contains_key(&actor) {
            return Err(not_a_member(chat_id, actor, true));
        }
        let role = roles::role_of(db, chat_id, actor)
            .await?
            .unwrap_or(Role::Member);
        authorize(role, action, chat.model.settings())?;
        Ok(())
    }

    /// A repeat of a command applied before (its event `key` is journaled, and `by` says it
    /// was the same actor's): the journaled event goes out again and the command is applied,
    /// whatever the roles are now.
    pub(super) async fn applied_before(
        &self,
        db: &impl ConnectionTrait,
        key: String,
        by: impl FnOnce(&Event) -> bool,
        pending: &mut Vec<Pending>,
    ) -> Result<bool, Failure> {
        let event = changes::journaled_event(db, key)
            .await?
            .and_then(|json| serde_json::from_str::<Event>(&json).ok())
            .filter(by);
        match event {
            Some(event) => {
                pending.push(Pending::Ready(event));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(super) async fn set_member_role(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SetMemberRole,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let judged = self.judge_role(db, cmd).await;
        let current = match judged {
            Ok(current) => current,
            Err(Failure::Refused(refusal)) => {
                let key = role_event(cmd, cmd.user_id, cmd.role).key();
                let by = |e: &Event| matches!(e, Event::MemberRoleChanged(e) if e.changed_by == cmd.actor_id);
                if self.applied_before(db, key, by, pending).await? {
                    super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
                    return Ok(());
                }
                return Err(Failure::Refused(refusal));
            }
            Err(failure) => return Err(failure),
        };
        if current != cmd.role {
            if cmd.role == Role::Owner {
                // The group is handed over: its owner until now becomes an admin.
                let owner = roles::of_chat(db, cmd.chat_id).await?.owner_id;
                if let Some(owner) = owner.filter(|o| *o != cmd.user_id) {
                    roles::set(db, cmd.chat_id, owner, Role::Admin).await?;
                    pending.push(Pending::Ready(role_event(cmd, owner, Role::Admin)));
                }
            }
            roles::set(db, cmd.chat_id, cmd.user_id, cmd.role).await?;
            pending.push(Pending::Ready(role_event(cmd, cmd.user_id, cmd.role)));
        }
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }

    /// Whether `cmd` may apply; the member's role until now.
    async fn judge_role(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SetMemberRole,
    ) -> Result<Role, Failure> {
        let chat = self.group_state(cmd.chat_id)?;
        if let Some(actor) = cmd.actor_id
            && !chat.members.contains_key(&actor)
        {
            return Err(not_a_member(cmd.chat_id, actor, true));
        }
        if !chat.members.contains_key(&cmd.user_id) {
            return Err(not_a_member(cmd.chat_id, cmd.user_id, false));
        }
        let current = roles::role_of(db, cmd.chat_id, cmd.user_id)
            .await?
            .unwrap_or(Role::Member);
        match cmd.actor_id {
            Some(actor) => {
                let own = actor == cmd.user_id;
                let action = GroupAction::SetRole {
                    current,
                    to: cmd.role,
                    own,
                };
                self.authorize(db, cmd.chat_id, actor, action).await?;
            }
            // Django may give any role, but a group keeps an owner.
            None if current == Role::Owner && cmd.role != Role::Owner => {
                return Err(refuse(
                    ErrorCode::OwnerRequired,
                    "a group keeps its owner: give another member the role \"owner\" instead",
                ));
            }
            None => {}
        }
        Ok(current)
    }

    /// Django's `rename_chat`: a rename by the system.
    pub(super) async fn rename(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &RenameChat,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let change = UpdateChat {
            v: VERSION,
            command_id: cmd.command_id.clone(),
            chat_id: cmd.chat_id,
            name: Some(cmd.name.clone()),
            settings: None,
            actor_id: None,
            reply_to: None,
        };
        self.update_chat(db, &change, pending, &mut Vec::new())
            .await
    }

    /// A new name or settings: `chat_updated` with both as they are now, and for a new name
    /// also `chat_renamed`, which clients from before `chat_updated` know.
    pub(super) async fn update_chat(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &UpdateChat,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let name = match &cmd.name {
            Some(name) => Some(crate::domain::rules::group_name(name)?.to_owned()),
            None => None,
        };
        let checked = match cmd.actor_id {
            Some(actor) => {
                self.group_state(cmd.chat_id)?;
                self.authorize(db, cmd.chat_id, actor, GroupAction::Update)
                    .await
            }
            None => Ok(()),
        };
        if let Err(Failure::Refused(refusal)) = checked {
            let key = ChatUpdated::key_of(cmd.chat_id, &cmd.command_id);
            let by = |e: &Event| matches!(e, Event::ChatUpdated(e) if e.updated_by == cmd.actor_id);
            if self.applied_before(db, key, by, pending).await? {
                super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
                return Ok(());
            }
            return Err(Failure::Refused(refusal));
        }
        checked?;
        let chat = self.group_state(cmd.chat_id)?;
        let settings = chat.model.settings().with(cmd.settings.unwrap_or_default());
        let mut columns: Vec<(chat::Column, SimpleExpr)> = Vec::new();
        if let Some(name) = &name {
            chat.model.name = Some(name.clone());
            columns.push((chat::Column::Name, Expr::value(name.as_str())));
        }
        if let Some(SettingsChange {
            members_can_add: Some(on),
        }) = cmd.settings
        {
            chat.model.members_can_add = on;
            columns.push((chat::Column::MembersCanAdd, Expr::value(on)));
        }
        let current_name = chat.model.name.clone();
        if !columns.is_empty() {
            let mut update = chat::Entity::update_many().filter(chat::Column::Id.eq(cmd.chat_id));
            for (column, value) in columns {
                update = update.col_expr(column, value);
            }
            update.exec(db).await?;
        }
        if let Some(name) = name {
            pending.push(Pending::Ready(Event::ChatRenamed(ChatRenamed {
                v: VERSION,
                cursor: None,
                chat_id: cmd.chat_id,
                name,
                command_id: Some(cmd.command_id.clone()),
            })));
        }
        pending.push(Pending::Ready(Event::ChatUpdated(ChatUpdated {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            name: current_name,
            settings,
            updated_by: cmd.actor_id,
            command_id: cmd.command_id.clone(),
        })));
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }

    /// Deletes a group with its history: messages (their reactions, revisions and search
    /// entries with them), members and receipts; the journal forgets the group's changes
    /// when `chat_deleted` is journaled (`persister::journal`).
    pub(super) async fn delete_chat(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &DeleteChat,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        if !self.chats.contains_key(&cmd.chat_id) {
            // Deleted before (by this command or another): the same answer again, to Django
            // and to its members; to anyone else the group is unknown.
            let key = ChatDeleted::key_of(cmd.chat_id);
            let member = |e: &Event| {
                matches!(e, Event::ChatDeleted(e)
                    if cmd.actor_id.is_none_or(|actor| e.member_ids.contains(&actor)))
            };
            if self.applied_before(db, key, member, pending).await? {
                super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
                return Ok(());
            }
        }
        self.group_state(cmd.chat_id)?;
        if let Some(actor) = cmd.actor_id {
            self.authorize(db, cmd.chat_id, actor, GroupAction::DeleteGroup)
                .await?;
        }
        // This batch's messages of the group are deleted with the others.
        self.flush_messages(db).await?;
        let chat = self.chats.get(&cmd.chat_id).expect("checked above");
        let mut member_ids: Vec<UserId> = chat.members.keys().copied().collect();
        member_ids.sort_unstable();
        self.drop_group(db, cmd.chat_id).await?;
        pending.push(Pending::Ready(Event::ChatDeleted(ChatDeleted {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            member_ids,
            deleted_by: cmd.actor_id,
            command_id: cmd.command_id.clone(),
        })));
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }
}

impl BatchState {
    /// Deletes a group with its history and forgets what this batch knew of it. Messages
    /// first, so that SQLite's search triggers see each row go; the rest follows the chat by
    /// its foreign keys (members; reactions and revisions with their messages).
    pub(super) async fn drop_group(
        &mut self,
        db: &impl ConnectionTrait,
        chat_id: ChatId,
    ) -> Result<(), DbErr> {
        message::Entity::delete_many()
            .filter(message::Column::ChatId.eq(chat_id))
            .exec(db)
            .await?;
        chat::Entity::delete_by_id(chat_id).exec(db).await?;
        self.chats.remove(&chat_id);
        self.marked.retain(|_, m| m.chat_id != chat_id);
        Ok(())
    }
}

/// A group keeps an owner: after its owner left, the longest-serving admin, else member,
/// takes it over (`member_role_changed`, by nobody). Nothing when no member is left.
pub(super) async fn pass_ownership(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    command_id: &str,
    pending: &mut Vec<Pending>,
) -> Result<(), DbErr> {
    if let Some(heir) = roles::successor(db, chat_id).await? {
        roles::set(db, chat_id, heir, Role::Owner).await?;
        pending.push(Pending::Ready(Event::MemberRoleChanged(
            MemberRoleChanged {
                v: VERSION,
                cursor: None,
                chat_id,
                user_id: heir,
                role: Role::Owner,
                changed_by: None,
                command_id: command_id.to_owned(),
            },
        )));
    }
    Ok(())
}

/// The `member_role_changed` event of `cmd` for `user_id`.
fn role_event(cmd: &SetMemberRole, user_id: UserId, role: Role) -> Event {
    Event::MemberRoleChanged(MemberRoleChanged {
        v: VERSION,
        cursor: None,
        chat_id: cmd.chat_id,
        user_id,
        role,
        changed_by: cmd.actor_id,
        command_id: cmd.command_id.clone(),
    })
}

/// `not_a_member` for `user_id` in `chat_id` (`you`: the one who asked).
pub(super) fn not_a_member(chat_id: ChatId, user_id: UserId, you: bool) -> Failure {
    let detail = if you {
        format!("you are not a member of chat {chat_id}")
    } else {
        format!("user {user_id} is not a member of chat {chat_id}")
    };
    refuse(ErrorCode::NotAMember, detail)
}
