//! Mutes and pushes: a member's `muted_until`, and the push watermark a `push_due` raises
//! when messages from others reached none of the member's sockets in time.

use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::{BatchState, Pending, Step, refuse};
use crate::{
    bus::messages::{
        ChatMuted, Event, MAX_PUSH_MESSAGE_IDS, MuteChat, Outcome, PushDue, PushNeeded, VERSION,
    },
    domain::MessageId,
    store::{chat_member, message, queries},
};

impl BatchState {
    pub(super) async fn mute(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &MuteChat,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        // Against the command's own time, so a replay of the log decides the same.
        if cmd.muted_until.is_some_and(|until| until <= at) {
            return Err(refuse(
                ErrorCode::InvalidField,
                "muted_until has passed: give a time to come, or unmute",
            ));
        }
        let Some(chat) = self.chats.get_mut(&cmd.chat_id) else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("chat {} does not exist", cmd.chat_id),
            ));
        };
        let Some(marks) = chat.members.get_mut(&cmd.user_id) else {
            return Err(refuse(
                ErrorCode::Forbidden,
                format!("you are not a member of chat {}", cmd.chat_id),
            ));
        };
        let unmuted = marks.muted_until.is_some() && cmd.muted_until.is_none();
        marks.muted_until = cmd.muted_until;
        if unmuted {
            // The messages of the muted period are not owed: no push will cover them.
            self.flush_messages(db).await?;
            let newest: Option<MessageId> = message::Entity::find()
                .select_only()
                .column_as(message::Column::Id.max(), "newest")
                .filter(message::Column::ChatId.eq(cmd.chat_id))
                .into_tuple()
                .one(db)
                .await?
                .flatten();
            let chat = self.chats.get_mut(&cmd.chat_id).expect("found above");
            let marks = chat.members.get_mut(&cmd.user_id).expect("found above");
            if let Some(newest) = newest.filter(|n| *n > marks.pushed) {
                marks.pushed = newest;
                self.moved_marks.insert((cmd.chat_id, cmd.user_id));
            }
        }
        // Unmuting unmutes the mentions too.
        let mentions_muted = cmd.muted_until.is_some() && cmd.mute_mentions;
        chat_member::Entity::update_many()
            .col_expr(
                chat_member::Column::MutedUntil,
                Expr::value(cmd.muted_until),
            )
            .col_expr(chat_member::MENTIONS_MUTED, Expr::value(mentions_muted))
            .filter(chat_member::Column::ChatId.eq(cmd.chat_id))
            .filter(chat_member::Column::UserId.eq(cmd.user_id))
            .exec(db)
            .await?;
        pending.push(Pending::Ready(Event::ChatMuted(ChatMuted {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            user_id: cmd.user_id,
            muted_until: cmd.muted_until,
            mentions_muted,
            command_id: cmd.command_id.clone(),
        })));
        if let Some(reply_to) = &cmd.reply_to {
            replies.push((
                reply_to.clone(),
                Outcome::Muted {
                    v: VERSION,
                    command_id: cmd.command_id.clone(),
                    chat_id: cmd.chat_id,
                    muted_until: cmd.muted_until,
                    mentions_muted,
                },
            ));
        }
        Ok(())
    }

    /// Raises the member's push watermark to `through_message_id` and announces the messages
    /// that raise covers, unless they were delivered meanwhile or the chat is muted. A
    /// `push_due` that raises nothing (another instance's, a repeat) changes nothing.
    pub(super) async fn push_due(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &PushDue,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let through = cmd.through_message_id;
        match self.message_ref(db, through).await? {
            Some(m) if m.chat_id == cmd.chat_id => {}
            _ => {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("message {through} is not in chat {}", cmd.chat_id),
                ));
            }
        }
        let Some(chat) = self.chats.get_mut(&cmd.chat_id) else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("chat {} does not exist", cmd.chat_id),
            ));
        };
        // Removed between the scan and now: nobody to tell, nothing to keep.
        let Some(marks) = chat.members.get_mut(&cmd.user_id) else {
            return Ok(());
        };
        if marks.pushed >= through {
            return Ok(());
        }
        let after = marks.pushed.max(marks.delivered);
        let muted = marks.muted_until.is_some_and(|until| until > at);
        // A mute that ran out: the messages of its period are not owed.
        let mute_ended = marks.muted_until.filter(|until| *until <= at);
        // Muted: passed over for good (the member is not owed these messages later), but for
        // those that mention the member, unless their mentions are muted too.
        marks.pushed = through;
        self.moved_marks.insert((cmd.chat_id, cmd.user_id));
        if after >= through
            || (muted && queries::mentions_muted_in(db, cmd.chat_id, cmd.user_id).await?)
        {
            return Ok(());
        }
        let mentions_only = muted;
        let mentions_me = || queries::mentions_of(cmd.user_id);
        self.flush_messages(db).await?;
        let covered = || {
            let query = message::Entity::find()
                .filter(message::Column::ChatId.eq(cmd.chat_id))
                .filter(message::Column::Id.gt(after))
                .filter(message::Column::Id.lte(through))
                .filter(message::Column::SenderId.ne(cmd.user_id))
                .filter(message::Column::DeletedAt.is_null());
            let query = match mute_ended {
                Some(until) => query.filter(message::Column::CreatedAt.gt(until)),
                None => query,
            };
            if mentions_only {
                query.filter(mentions_me())
            } else {
                query
            }
        };
        let (count, first, mentioned): (i64, Option<MessageId>, Option<i64>) = covered()
            .select_only()
            .column_as(message::Column::Id.count(), "count")
            .column_as(message::Column::Id.min(), "first")
            .column_as(
                sea_orm::sea_query::ExprTrait::sum(Expr::Case(Box::new(
                    Expr::case(mentions_me(), 1).finally(0),
                ))),
                "mentioned",
            )
            .into_tuple()
            .one(db)
            .await?
            .unwrap_or((0, None, None));
        let Some(first) = first else {
            return Ok(()); // only the member's own or deleted messages
        };
        let mut message_ids: Vec<MessageId> = covered()
            .select_only()
            .column(message::Column::Id)
            .order_by_desc(message::Column::Id)
            .limit(MAX_PUSH_MESSAGE_IDS as u64)
            .into_tuple()
            .all(db)
            .await?;
        message_ids.reverse();
        pending.push(Pending::Ready(Event::PushNeeded(PushNeeded {
            v: VERSION,
            chat_id: cmd.chat_id,
            user_id: cmd.user_id,
            message_ids,
            first_message_id: first,
            through_message_id: through,
            count: u64::try_from(count).unwrap_or(0),
            mentioned: mentioned.unwrap_or(0) > 0,
        })));
        Ok(())
    }
}
