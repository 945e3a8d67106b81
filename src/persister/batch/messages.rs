//! Messages: new ones inserted in multi-row statements, retries and redeliveries found
//! stored, deletions.

use crate::domain::ErrorCode;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use super::{
    ApplyError, BatchState, ChatState, Failure, INSERT_CHUNK, Marked, Marks, Pending, Rules, Step,
    refuse,
};
use crate::{
    bus::messages::{DeleteMessage, Event, MessageDeleted, Outcome, SendMessage, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, MessageView, reply_quote_text},
    store::{changes, chat, chat_member, message, message_reaction, queries},
};

/// Terms per `OR` of exact keys: SQLite limits expression depth (1000 by default).
const KEY_LOOKUP_CHUNK: usize = 200;

/// The stored messages with these `(sender_id, client_msg_id)` keys (retries, redeliveries).
///
/// One `OR` of exact pairs, so the unique index answers each pair with one probe. (`sender_id
/// IN (..) AND client_msg_id IN (..)` made SQLite probe every combination: senders × ids.)
async fn stored_messages(
    db: &impl ConnectionTrait,
    keys: &HashSet<(UserId, String)>,
) -> Result<HashMap<(UserId, String), message::Model>, DbErr> {
    let keys: Vec<&(UserId, String)> = keys.iter().collect();
    let mut found = HashMap::new();
    for chunk in keys.chunks(KEY_LOOKUP_CHUNK) {
        let any = chunk
            .iter()
            .fold(sea_orm::Condition::any(), |any, (sender, id)| {
                any.add(
                    sea_orm::Condition::all()
                        .add(message::Column::SenderId.eq(*sender))
                        .add(message::Column::ClientMsgId.eq(id.as_str())),
                )
            });
        let rows = message::Entity::find().filter(any).all(db).await?;
        found.extend(
            rows.into_iter()
                .map(|m| ((m.sender_id, m.client_msg_id.clone()), m)),
        );
    }
    Ok(found)
}

impl BatchState {
    /// A message, stored unless its key was stored before: optimistically, since almost every
    /// command is new. The insert skips a key it finds taken (a client's retry after the
    /// dedupe window, a redelivery after a crash) and `flush_messages` then reads the stored
    /// row; a refused send is looked up first, so a retry of a stored message is acked again
    /// whatever changed since (its sender may have left the chat).
    pub(super) async fn send(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SendMessage,
        seq: u64,
        at: DateTime<Utc>,
        rules: &Rules,
        pending: &mut Vec<Pending>,
    ) -> Step {
        let refusal = match self.new_message(db, cmd, seq, at, rules, pending).await {
            Err(Failure::Refused(refusal)) => refusal,
            applied_or_failed => return applied_or_failed,
        };
        // A key that could never have been stored is not looked up (a NUL in it is a query
        // PostgreSQL refuses).
        if cmd.sender_id <= 0 || crate::domain::rules::client_msg_id(&cmd.client_msg_id).is_err() {
            return Err(Failure::Refused(refusal));
        }
        let key = (cmd.sender_id, cmd.client_msg_id.clone());
        let mut stored = stored_messages(db, &HashSet::from([key.clone()])).await?;
        match stored.remove(&key) {
            Some(message) => {
                self.existing.insert(key.clone(), message);
                pending.push(Pending::Message { key });
                Ok(())
            }
            None => Err(Failure::Refused(refusal)),
        }
    }

    pub(super) async fn new_message(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SendMessage,
        seq: u64,
        at: DateTime<Utc>,
        rules: &Rules,
        pending: &mut Vec<Pending>,
    ) -> Step {
        rules.check_message(cmd)?;
        let key = (cmd.sender_id, cmd.client_msg_id.clone());
        if self.existing.contains_key(&key) || self.new_keys.contains(&key) {
            // Stored before: announce it again so the sender gets its ack; sockets drop repeats.
            pending.push(Pending::Message { key });
            return Ok(());
        }
        let chat_id = match (cmd.chat_id, cmd.receiver_id) {
            (Some(chat_id), _) => {
                let Some(chat) = self.chats.get(&chat_id) else {
                    return Err(refuse(
                        ErrorCode::NotFound,
                        format!("chat {chat_id} does not exist"),
                    ));
                };
                if !chat.members.contains_key(&cmd.sender_id) {
                    return Err(refuse(
                        ErrorCode::Forbidden,
                        format!("you are not a member of chat {chat_id}"),
                    ));
                }
                if !chat.model.is_group {
                    for other in chat.members.keys().filter(|m| **m != cmd.sender_id) {
                        self.require_unblocked(*other, cmd.sender_id)?;
                    }
                }
                chat_id
            }
            (None, Some(receiver_id)) => {
                if receiver_id <= 0 || receiver_id == cmd.sender_id {
                    return Err(refuse(
                        ErrorCode::InvalidReceiver,
                        format!("cannot send to user {receiver_id}"),
                    ));
                }
                self.require_unblocked(receiver_id, cmd.sender_id)?;
                // A retry never creates the chat: were its first copy written by an earlier
                // batch, the insert would skip it only after creating the chat.
                let new_chat = !self
                    .private
                    .contains_key(&chat::private_key(cmd.sender_id, receiver_id));
                if new_chat
                    && let Some(message) = stored_messages(db, &HashSet::from([key.clone()]))
                        .await?
                        .remove(&key)
                {
                    self.existing.insert(key.clone(), message);
                    pending.push(Pending::Message { key });
                    return Ok(());
                }
                if new_chat {
                    // An erased user's token is valid until it expires: it starts nothing.
                    self.refuse_erased(db, [cmd.sender_id, receiver_id]).await?;
                }
                let chat_id = self
                    .private_chat(db, cmd.sender_id, receiver_id, None, at, pending)
                    .await?
                    .0;
                // An erased sender is no member of their private chats any more.
                if self
                    .chats
                    .get(&chat_id)
                    .is_some_and(|chat| !chat.members.contains_key(&cmd.sender_id))
                {
                    return Err(refuse(
                        ErrorCode::Forbidden,
                        format!("you are not a member of chat {chat_id}"),
                    ));
                }
                chat_id
            }
            (None, None) => {
                return Err(refuse(
                    ErrorCode::MissingField,
                    "chat_id or receiver_id is required",
                ));
            }
        };
        let reply = match cmd.reply_to_message_id {
            None => None,
            Some(id) => match self.original(db, id).await? {
                Some(m) if m.chat_id == chat_id => Some(m),
                _ => {
                    return Err(refuse(
                        ErrorCode::InvalidReply,
                        format!(
                            "message {id} is not in chat {chat_id}: a reply answers a message of its own chat"
                        ),
                    ));
                }
            },
        };
        let forward = match cmd.forwarded_from {
            None => None,
            Some(id) => {
                let original = self.original(db, id).await?;
                let readable = match &original {
                    Some(m) if m.deleted_at.is_none() => {
                        self.is_member(db, m.chat_id, cmd.sender_id).await?
                    }
                    _ => false,
                };
                if !readable {
                    return Err(refuse(
                        ErrorCode::InvalidForward,
                        format!(
                            "message {id} is not one you can read (a message of one of your chats, not deleted)"
                        ),
                    ));
                }
                original
            }
        };
        // A forward without text or file carries the original's.
        let copied = forward.as_ref().filter(|_| {
            cmd.content.trim().is_empty() && cmd.file_id.is_none() && cmd.file_url.is_none()
        });
        // An upload is the sender's to attach; it decides the stored URL and content type.
        let (file_id, file_url, content_type) = match &cmd.file_id {
            _ if copied.is_some() => {
                let original = copied.expect("checked");
                (
                    original.file_id.clone(),
                    original.file_url.clone(),
                    original.content_type.clone(),
                )
            }
            Some(file_id) => match self.uploads.get(file_id) {
                Some((owner, kind)) if *owner == cmd.sender_id => (
                    Some(file_id.clone()),
                    Some(format!("/media/{file_id}")),
                    kind.clone(),
                ),
                _ => {
                    return Err(refuse(
                        ErrorCode::NotFound,
                        format!("file {file_id} is not one of your uploads"),
                    ));
                }
            },
            None => (
                None,
                cmd.file_url.clone(),
                cmd.content_type.as_str().to_owned(),
            ),
        };
        self.new_keys.insert(key.clone());
        self.new_rows.push(message::Model {
            // The id is the command's CHAT_IN sequence: message order is stream order whichever
            // persister writes it and whenever (redelivery, failover, replay).
            id: seq as i64,
            chat_id,
            sender_id: cmd.sender_id,
            content: copied.map_or_else(|| cmd.content.clone(), |m| m.content.clone()),
            content_type,
            file_url,
            client_msg_id: cmd.client_msg_id.clone(),
            created_at: at,
            stream_seq: seq as i64,
            deleted_at: None,
            edited_at: None,
            file_id,
            reply_to_message_id: reply.as_ref().map(|m| m.id),
            // A reply to a deleted message quotes nothing.
            reply_quote_sender_id: reply
                .as_ref()
                .filter(|m| m.deleted_at.is_none())
                .map(|m| m.sender_id),
            reply_quote_text: reply
                .as_ref()
                .filter(|m| m.deleted_at.is_none())
                .map(|m| reply_quote_text(&m.content)),
            forwarded_from_chat_id: forward.as_ref().map(|m| m.chat_id),
            forwarded_from_message_id: forward.as_ref().map(|m| m.id),
            forwarded_from_sender_id: forward.as_ref().map(|m| m.sender_id),
            mentions: self.mentioned(chat_id, cmd),
        });
        pending.push(Pending::Message { key });
        Ok(())
    }

    /// The members of `chat_id` (as this batch sees it) `cmd` mentions, ascending, each once,
    /// the sender not among them; as `messages.mentions` stores them.
    fn mentioned(&self, chat_id: ChatId, cmd: &SendMessage) -> Option<String> {
        if cmd.mentions.is_empty() {
            return None;
        }
        let members = self.chats.get(&chat_id).map(|chat| &chat.members);
        let mut ids: Vec<UserId> = cmd
            .mentions
            .iter()
            .copied()
            .filter(|id| *id != cmd.sender_id && members.is_some_and(|m| m.contains_key(id)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        crate::domain::stored_mentions(&ids)
    }

    /// A message a reply or a forward refers to, as it is now: earlier in this batch (not
    /// inserted yet) or stored.
    async fn original(
        &self,
        db: &impl ConnectionTrait,
        id: MessageId,
    ) -> Result<Option<message::Model>, DbErr> {
        if let Some(row) = self.new_rows.iter().find(|m| m.id == id) {
            return Ok(Some(row.clone()));
        }
        message::Entity::find_by_id(id).one(db).await
    }

    /// Whether `user` is a member of `chat_id` now (as this batch sees it).
    async fn is_member(
        &self,
        db: &impl ConnectionTrait,
        chat_id: ChatId,
        user: UserId,
    ) -> Result<bool, DbErr> {
        if let Some(chat) = self.chats.get(&chat_id) {
            return Ok(chat.members.contains_key(&user));
        }
        Ok(chat_member::Entity::find_by_id((chat_id, user))
            .one(db)
            .await?
            .is_some())
    }

    /// Renews (an edit: `Some(text)`) or clears (a deletion: `None`) the quotes of the
    /// replies to `message_id`, stored and of this batch.
    pub(super) async fn requote(
        &mut self,
        db: &impl ConnectionTrait,
        message_id: MessageId,
        content: Option<&str>,
    ) -> Result<(), ApplyError> {
        if self
            .new_rows
            .iter()
            .any(|m| m.reply_to_message_id == Some(message_id))
        {
            self.flush_messages(db).await?;
        }
        let text = content.map(reply_quote_text);
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::ReplyQuoteText, Expr::value(text.clone()))
            .filter(message::Column::ReplyToMessageId.eq(message_id))
            .filter(message::Column::ReplyQuoteSenderId.is_not_null());
        if text.is_none() {
            update = update.col_expr(
                message::Column::ReplyQuoteSenderId,
                Expr::value(Option::<i64>::None),
            );
        }
        update.exec(db).await?;
        for m in self.existing.values_mut().filter(|m| {
            m.reply_to_message_id == Some(message_id) && m.reply_quote_sender_id.is_some()
        }) {
            m.reply_quote_text = text.clone();
            if text.is_none() {
                m.reply_quote_sender_id = None;
            }
        }
        Ok(())
    }

    /// A message a receipt, a deletion or a push refers to: stored before the batch, or
    /// written by it (flushed already or not), so the result does not depend on where batch
    /// boundaries fall.
    pub(super) async fn message_ref(
        &mut self,
        db: &impl ConnectionTrait,
        id: MessageId,
    ) -> Result<Option<Marked>, ApplyError> {
        if !self.marked.contains_key(&id) && self.new_rows.iter().any(|m| m.id == id) {
            self.flush_messages(db).await?;
        }
        Ok(self.marked.get(&id).copied())
    }

    /// Inserts the messages collected so far in multi-row statements.
    pub(super) async fn flush_messages(
        &mut self,
        db: &impl ConnectionTrait,
    ) -> Result<(), ApplyError> {
        let mut rows = std::mem::take(&mut self.new_rows).into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<message::Model> = rows.by_ref().take(INSERT_CHUNK).collect();
            // Every column is known here: no RETURNING rows to read back and decode.
            let inserted = message::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            // No conflict target: a taken id (redelivery) or a taken key (retry) is skipped.
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(db)
            .await;
            let inserted = match inserted {
                Ok(rows) => rows as usize,
                Err(DbErr::RecordNotInserted) => 0,
                Err(error) => return Err(error.into()),
            };
            self.messages_stored += inserted as u64;
            // What later commands of the batch refer to: the rows as stored.
            if inserted == chunk.len() {
                self.marked
                    .extend(chunk.iter().map(|m| (m.id, Marked::of(m))));
                self.existing.extend(
                    chunk
                        .into_iter()
                        .map(|m| ((m.sender_id, m.client_msg_id.clone()), m)),
                );
            } else {
                // Some keys were taken: what is stored counts, for those inserted just now too.
                let keys = chunk
                    .iter()
                    .map(|m| (m.sender_id, m.client_msg_id.clone()))
                    .collect();
                let stored = stored_messages(db, &keys).await?;
                // A row skipped although its key is free: its id is another message's.
                if let Some(taken) = chunk
                    .iter()
                    .find(|m| !stored.contains_key(&(m.sender_id, m.client_msg_id.clone())))
                {
                    return Err(ApplyError::IdTaken { id: taken.id });
                }
                self.marked
                    .extend(stored.values().map(|m| (m.id, Marked::of(m))));
                self.existing.extend(stored);
            }
        }
        let missing: HashSet<ChatId> = self
            .existing
            .values()
            .map(|m| m.chat_id)
            .filter(|id| !self.chats.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let models = chat::Entity::find()
                .filter(chat::Column::Id.is_in(crate::store::in_list(missing.iter().copied())))
                .all(db)
                .await?;
            // With their members, as a later batch would load them.
            let mut members: HashMap<ChatId, HashMap<UserId, Marks>> = HashMap::new();
            for m in queries::members(db, missing).await? {
                members
                    .entry(m.chat_id)
                    .or_default()
                    .insert(m.user_id, Marks::of(&m));
            }
            for model in models {
                let members = members.remove(&model.id).unwrap_or_default();
                self.chats.insert(model.id, ChatState { model, members });
            }
        }
        Ok(())
    }

    /// Every message the batch refers to (new or stored before, not deleted) as events show it.
    pub(super) fn stored_views(&self) -> HashMap<(UserId, String), (MessageView, u64)> {
        self.existing
            .iter()
            .filter(|(_, m)| m.deleted_at.is_none())
            .map(|(key, m)| {
                let private_key = self
                    .chats
                    .get(&m.chat_id)
                    .and_then(|c| c.model.private_key.as_deref());
                (key.clone(), (m.view(private_key), m.stream_seq as u64))
            })
            .collect()
    }

    pub(super) async fn delete_message(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &DeleteMessage,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let not_found = || {
            refuse(
                ErrorCode::NotFound,
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            )
        };
        let marked = match self.message_ref(db, cmd.message_id).await? {
            Some(m) if m.chat_id == cmd.chat_id => m,
            _ => return Err(not_found()),
        };
        if let Some(deleter) = cmd.deleter_id {
            self.require_member(cmd.chat_id, deleter)?;
            // Another member's message: a group's admins and owner may (read only here, never
            // for one's own message).
            if marked.sender_id != deleter {
                let group = self
                    .chats
                    .get(&cmd.chat_id)
                    .is_some_and(|chat| chat.model.is_group);
                if !group {
                    return Err(refuse(
                        ErrorCode::Forbidden,
                        "only the author may delete a message",
                    ));
                }
                self.authorize(
                    db,
                    cmd.chat_id,
                    deleter,
                    crate::domain::roles::GroupAction::DeleteOthersMessage,
                )
                .await?;
            }
        }
        message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(at))
            .col_expr(message::Column::Content, Expr::value(""))
            .col_expr(
                message::Column::FileUrl,
                Expr::value(Option::<String>::None),
            )
            .col_expr(message::DeletedBy::DeletedBy, Expr::value(cmd.deleter_id))
            .filter(message::Column::Id.eq(cmd.message_id))
            .filter(message::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        // Its earlier edits are no longer replayed: the journal forgets the texts they carried.
        changes::forget_edits(db, cmd.chat_id, cmd.message_id).await?;
        // Its replies quote it no more.
        self.requote(db, cmd.message_id, None).await?;
        // A tombstone carries no reactions.
        message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.eq(cmd.message_id))
            .exec(db)
            .await?;
        super::applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        // Announced even when it was deleted before: the command's outcome is the same.
        pending.push(Pending::Ready(Event::MessageDeleted(MessageDeleted {
            v: VERSION,
            cursor: None,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            command_id: Some(cmd.command_id.clone()),
            deleted_by: cmd.deleter_id,
        })));
        Ok(())
    }
}
