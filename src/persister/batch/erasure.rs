//! Erasure (`erase_user`, Django's right-to-erasure): nothing of a user is left but the
//! places of their messages. What is kept and why: docs/events.md, "Erasure".

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use super::{BatchState, Failure, Pending, Step, refuse};
use crate::{
    bus::messages::{
        ChatDeleted, EraseUser, Event, MemberRemoved, MessageDeleted, Outcome, Reaction,
        UserErased, VERSION,
    },
    domain::{ChatId, ErrorCode, MessageId, UserId},
    store::{
        changes, chat, chat_member, erased_user, message, message_reaction, message_revision,
        roles, upload, user_block, user_profile,
    },
};

impl BatchState {
    /// Erases `cmd.user_id`: their messages become tombstones (`message_deleted` each), their
    /// reactions on others' messages go (`reaction_removed` each), their memberships go
    /// (`member_removed`; a group they owned passes on, one left empty is deleted), then their
    /// uploads, their profile; `user_erased` closes it. The storage keys of blobs no upload
    /// row refers to any more are kept for [`super::Applied::erased_blobs`]: they are deleted
    /// once the transaction commits. A repeat finds nothing to do and says `user_erased`.
    pub(super) async fn erase_user(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &EraseUser,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let user = cmd.user_id;
        // What this batch wrote of theirs before is erased with the rest.
        self.flush_messages(db).await?;
        self.flush_marks(db).await?;
        let messages_erased = self.tombstone_messages(db, cmd, at, pending).await?;
        self.remove_reactions(db, cmd, pending).await?;
        let chats_deleted = self.remove_memberships(db, cmd, pending).await?;
        self.delete_uploads(db, user).await?;
        // Their blocks, both ways, go without a `block_changed`: nobody is left to write.
        user_block::Entity::delete_many()
            .filter(
                sea_orm::Condition::any()
                    .add(user_block::Column::BlockerId.eq(user))
                    .add(user_block::Column::BlockedId.eq(user)),
            )
            .exec(db)
            .await?;
        self.blocks
            .retain(|&(blocker, blocked)| blocker != user && blocked != user);
        user_profile::Entity::delete_by_id(user).exec(db).await?;
        erased_user::Entity::insert(
            erased_user::Model {
                user_id: user,
                erased_at: at,
            }
            .into_active_model(),
        )
        .on_conflict(
            OnConflict::column(erased_user::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        pending.push(Pending::Ready(Event::UserErased(UserErased {
            v: VERSION,
            command_id: cmd.command_id.clone(),
            user_id: user,
            messages_erased,
            chats_deleted,
        })));
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }

    /// Every message of the user becomes a tombstone: the content, file, quote and forward
    /// cleared (also of those deleted before), the row with its id, chat, author id, time and
    /// idempotency key kept. Their edits' old texts, their reactions and the quotes of them in
    /// others' replies go. Returns how many were not tombstones before.
    async fn tombstone_messages(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &EraseUser,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Result<u64, Failure> {
        let user = cmd.user_id;
        let live: Vec<(MessageId, ChatId)> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::ChatId)
            .filter(message::Column::SenderId.eq(user))
            .filter(message::Column::DeletedAt.is_null())
            .order_by_asc(message::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        // Deleted now, by the system (as moderation is).
        message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(at))
            .col_expr(
                message::DeletedBy::DeletedBy,
                Expr::value(Option::<UserId>::None),
            )
            .filter(message::Column::SenderId.eq(user))
            .filter(message::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        let none_text = || Expr::value(Option::<String>::None);
        let none_id = || Expr::value(Option::<i64>::None);
        message::Entity::update_many()
            .col_expr(message::Column::Content, Expr::value(""))
            .col_expr(message::Column::FileUrl, none_text())
            .col_expr(message::Column::FileId, none_text())
            .col_expr(message::Column::ReplyQuoteText, none_text())
            .col_expr(message::Column::ReplyQuoteSenderId, none_id())
            .col_expr(message::Column::ForwardedFromChatId, none_id())
            .col_expr(message::Column::ForwardedFromMessageId, none_id())
            .col_expr(message::Column::ForwardedFromSenderId, none_id())
            .filter(message::Column::SenderId.eq(user))
            .exec(db)
            .await?;
        // Others' replies quote them no more; others' forwards no longer name them.
        message::Entity::update_many()
            .col_expr(message::Column::ReplyQuoteText, none_text())
            .col_expr(message::Column::ReplyQuoteSenderId, none_id())
            .filter(message::Column::ReplyQuoteSenderId.eq(user))
            .exec(db)
            .await?;
        message::Entity::update_many()
            .col_expr(message::Column::ForwardedFromSenderId, none_id())
            .filter(message::Column::ForwardedFromSenderId.eq(user))
            .exec(db)
            .await?;
        for m in self.existing.values_mut() {
            if m.reply_quote_sender_id == Some(user) {
                m.reply_quote_text = None;
                m.reply_quote_sender_id = None;
            }
        }
        let theirs = || {
            Query::select()
                .column(message::Column::Id)
                .from(message::Entity)
                .and_where(Expr::col(message::Column::SenderId).eq(user))
                .to_owned()
        };
        message_revision::Entity::delete_many()
            .filter(message_revision::Column::MessageId.in_subquery(theirs()))
            .exec(db)
            .await?;
        // A tombstone carries no reactions, whoever gave them.
        message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.in_subquery(theirs()))
            .exec(db)
            .await?;
        changes::forget_edits_of_sender(db, user).await?;
        for (message_id, chat_id) in &live {
            pending.push(Pending::Ready(Event::MessageDeleted(MessageDeleted {
                v: VERSION,
                cursor: None,
                chat_id: *chat_id,
                message_id: *message_id,
                command_id: Some(cmd.command_id.clone()),
                deleted_by: None,
            })));
        }
        Ok(live.len() as u64)
    }

    /// The user's reactions on others' messages go, each told as `reaction_removed`.
    async fn remove_reactions(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &EraseUser,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let user = cmd.user_id;
        let reactions: Vec<(i64, MessageId, String, ChatId)> = message_reaction::Entity::find()
            .select_only()
            .column(message_reaction::Column::Id)
            .column(message_reaction::Column::MessageId)
            .column(message_reaction::Column::Emoji)
            .column(message::Column::ChatId)
            .join(
                sea_orm::JoinType::InnerJoin,
                message_reaction::Entity::belongs_to(message::Entity)
                    .from(message_reaction::Column::MessageId)
                    .to(message::Column::Id)
                    .into(),
            )
            .filter(message_reaction::Column::UserId.eq(user))
            .order_by_asc(message_reaction::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::UserId.eq(user))
            .exec(db)
            .await?;
        for (id, message_id, emoji, chat_id) in reactions {
            pending.push(Pending::Ready(Event::ReactionRemoved(Reaction {
                v: VERSION,
                cursor: None,
                chat_id,
                message_id,
                user_id: user,
                emoji,
                // One event per reaction: the key (message and command) must differ for two
                // emoji on one message.
                command_id: format!("{}:reaction:{id}", cmd.command_id),
            })));
        }
        Ok(())
    }

    /// The user leaves every chat (their watermarks, mutes and role go with the row). A group
    /// they owned passes to the longest-serving admin, else member; a group left with no
    /// member is deleted with its history. Returns the groups deleted.
    async fn remove_memberships(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &EraseUser,
        pending: &mut Vec<Pending>,
    ) -> Result<Vec<ChatId>, Failure> {
        let user = cmd.user_id;
        let memberships = chat_member::Entity::find()
            .filter(chat_member::Column::UserId.eq(user))
            .order_by_asc(chat_member::Column::ChatId)
            .all(db)
            .await?;
        let mut deleted = Vec::new();
        for membership in memberships {
            let chat_id = membership.chat_id;
            let group_roles = roles::of_chat(db, chat_id).await?;
            chat_member::Entity::delete_many()
                .filter(chat_member::Column::ChatId.eq(chat_id))
                .filter(chat_member::Column::UserId.eq(user))
                .exec(db)
                .await?;
            if let Some(chat) = self.chats.get_mut(&chat_id) {
                chat.members.remove(&user);
            }
            let model = chat::Entity::find_by_id(chat_id).one(db).await?;
            let is_group = model.as_ref().is_some_and(|m| m.is_group);
            let left = chat_member::Entity::find()
                .filter(chat_member::Column::ChatId.eq(chat_id))
                .count(db)
                .await?;
            if is_group && left == 0 {
                self.drop_group(db, chat_id).await?;
                pending.push(Pending::Ready(Event::ChatDeleted(ChatDeleted {
                    v: VERSION,
                    cursor: None,
                    chat_id,
                    member_ids: vec![user],
                    deleted_by: None,
                    command_id: cmd.command_id.clone(),
                })));
                deleted.push(chat_id);
                continue;
            }
            pending.push(Pending::Ready(Event::MemberRemoved(MemberRemoved {
                v: VERSION,
                cursor: None,
                chat_id,
                user_id: user,
                command_id: Some(cmd.command_id.clone()),
                removed_by: None,
            })));
            if group_roles.owner_id == Some(user) {
                super::groups::pass_ownership(db, chat_id, &cmd.command_id, pending).await?;
            }
        }
        Ok(deleted)
    }

    /// The user's upload rows go; the blobs no other row refers to (the same bytes uploaded
    /// by someone else share one) are left for deletion after the commit.
    async fn delete_uploads(&mut self, db: &impl ConnectionTrait, user: UserId) -> Step {
        let keys: Vec<String> = upload::Entity::find()
            .select_only()
            .column(upload::Column::StorageKey)
            .distinct()
            .filter(upload::Column::OwnerId.eq(user))
            .into_tuple()
            .all(db)
            .await?;
        upload::Entity::delete_many()
            .filter(upload::Column::OwnerId.eq(user))
            .exec(db)
            .await?;
        for chunk in keys.chunks(super::INSERT_CHUNK) {
            let shared: Vec<String> = upload::Entity::find()
                .select_only()
                .column(upload::Column::StorageKey)
                .distinct()
                .filter(
                    upload::Column::StorageKey.is_in(crate::store::in_list(chunk.iter().cloned())),
                )
                .into_tuple()
                .all(db)
                .await?;
            self.erased_blobs
                .extend(chunk.iter().filter(|key| !shared.contains(key)).cloned());
        }
        Ok(())
    }

    /// Refuses (`forbidden`) a new private chat, group or membership for an erased user:
    /// their access token stays valid until it expires. Read only where a chat or membership
    /// is created, never on the message path.
    pub(super) async fn refuse_erased(
        &self,
        db: &impl ConnectionTrait,
        ids: impl IntoIterator<Item = UserId>,
    ) -> Step {
        let ids: Vec<UserId> = ids.into_iter().collect();
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            let erased = erased_user::Entity::find()
                .filter(
                    erased_user::Column::UserId.is_in(crate::store::in_list(chunk.iter().copied())),
                )
                .one(db)
                .await?;
            if let Some(erased) = erased {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    format!("user {} was erased", erased.user_id),
                ));
            }
        }
        Ok(())
    }
}
