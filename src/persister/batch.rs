//! One batch of commands applied in one transaction: the only place chat state is written.
//!
//! Idempotent by construction: a redelivered command or a client's retry finds its message
//! (unique sender + `client_msg_id`), its private chat (unique pair) or its group
//! (unique `create_command_id`) and re-emits the same events instead of writing twice.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use crate::{
    auth::UserId,
    bus::messages::{
        AddMembers, ChatCreated, ChatRenamed, Command, CommandRejected, CreateChat, DeleteMessage,
        Event, MarkReceipt, MemberAdded, MemberRemoved, MessageCreated, MessageDeleted, Outcome,
        ReceiptEvent, RemoveMembers, RenameChat, SendMessage, VERSION,
    },
    domain::{MessageId, MessageView, ReceiptStatus},
    store::{ChatId, chat, chat_member, message, queries, upload},
};

/// Rows per multi-row INSERT (well under SQLite's and PostgreSQL's parameter limits).
const INSERT_CHUNK: usize = 500;

/// Longest group chat name.
const MAX_NAME_CHARS: usize = 255;

/// Most members a group starts with.
const MAX_GROUP_MEMBERS: usize = 10_000;

/// What every message must satisfy, whoever sends it (a socket checks the same before
/// publishing; commands from NATS are checked here).
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Longest content, in characters (`MAX_CONTENT_CHARS`).
    pub max_content_chars: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_content_chars: 10_000,
        }
    }
}

impl Rules {
    fn check(&self, cmd: &SendMessage) -> Result<(), Refusal> {
        if cmd.sender_id <= 0 {
            return Err((
                "invalid_field",
                "sender_id must be a positive integer".into(),
            ));
        }
        if cmd.client_msg_id.is_empty() || cmd.client_msg_id.chars().count() > 64 {
            return Err((
                "invalid_field",
                "client_msg_id must be 1 to 64 characters".into(),
            ));
        }
        if cmd.content.trim().is_empty()
            && cmd.file_id.is_none()
            && cmd.file_url.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            return Err(("empty_content", "content is empty".into()));
        }
        if cmd.content.chars().count() > self.max_content_chars {
            return Err((
                "content_too_long",
                format!(
                    "content is longer than {} characters",
                    self.max_content_chars
                ),
            ));
        }
        Ok(())
    }
}

/// A command with the `CHAT_IN` sequence it came from.
pub struct Incoming {
    pub seq: u64,
    /// When JetStream stored the command: the time of what it creates, so a replay of the
    /// stream rebuilds the same rows.
    pub published: DateTime<Utc>,
    pub command: Command,
}

/// What a committed batch must announce.
#[derive(Default)]
pub struct Applied {
    /// Events for `CHAT_EVENTS`, in commit order.
    pub events: Vec<Event>,
    /// Outcomes for commands that asked for one: `(reply_to, outcome)`.
    pub replies: Vec<(String, Outcome)>,
}

/// A member's watermarks as this batch sees them.
#[derive(Clone, Copy)]
struct Marks {
    delivered: MessageId,
    read: MessageId,
}

/// A chat as this batch sees it.
struct ChatState {
    model: chat::Model,
    members: HashMap<UserId, Marks>,
}

/// What a receipt needs to know of the message it marks.
#[derive(Clone, Copy)]
struct Marked {
    chat_id: ChatId,
    sender_id: UserId,
}

/// An event whose message id is known only after the bulk insert.
enum Pending {
    Ready(Event),
    Message { key: (UserId, String) },
}

/// Applies `batch` inside `txn`. Business refusals become `Rejected` outcomes; only database
/// errors fail the batch (and then nothing is acked, so JetStream redelivers it).
pub async fn apply(
    txn: &impl ConnectionTrait,
    batch: &[Incoming],
    rules: &Rules,
) -> Result<Applied, DbErr> {
    let mut state = BatchState::load(txn, batch).await?;
    let mut pending = Vec::with_capacity(batch.len());
    let mut replies = Vec::new();
    for incoming in batch {
        let at = incoming.published;
        let result = match &incoming.command {
            Command::SendMessage(cmd) => {
                state
                    .send(txn, cmd, incoming.seq, at, rules, &mut pending)
                    .await
            }
            Command::Receipt(cmd) => state.receipt(txn, cmd, &mut pending).await,
            Command::CreateChat(cmd) => {
                state
                    .create_chat(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            Command::AddMembers(cmd) => state.add_members(txn, cmd, at, &mut pending).await,
            Command::RemoveMembers(cmd) => state.remove_members(txn, cmd, &mut pending).await,
            Command::RenameChat(cmd) => state.rename(txn, cmd, &mut pending).await,
            Command::DeleteMessage(cmd) => state.delete_message(txn, cmd, at, &mut pending).await,
        }?;
        if let Err((code, detail)) = result {
            let command = &incoming.command;
            let command_id = command.command_id();
            tracing::debug!(
                code,
                detail,
                command_id,
                kind = command.kind(),
                "command rejected"
            );
            if let Some(reply_to) = command.reply_to() {
                replies.push((
                    reply_to.to_owned(),
                    Outcome::Rejected {
                        v: VERSION,
                        command_id: command_id.clone(),
                        code: code.into(),
                        detail: detail.clone(),
                    },
                ));
            }
            pending.push(Pending::Ready(Event::CommandRejected(CommandRejected {
                v: VERSION,
                command_id,
                command: command.kind().into(),
                chat_id: command.chat_id(),
                code: code.into(),
                detail,
            })));
        }
    }
    state.flush_messages(txn).await?;
    state.flush_marks(txn).await?;
    let stored = state.stored_views();
    let events = pending
        .into_iter()
        .filter_map(|p| match p {
            Pending::Ready(event) => Some(event),
            Pending::Message { key } => {
                let (message, stream_seq) = stored.get(&key)?.clone();
                Some(Event::MessageCreated(MessageCreated {
                    v: VERSION,
                    message,
                    stream_seq,
                }))
            }
        })
        .collect();
    Ok(Applied { events, replies })
}

/// Members per watermark `UPDATE` (4 parameters each).
const MARKS_CHUNK: usize = 500;

/// `UPDATE chat_members` raising the watermarks of `rows` members to the values given as
/// `(chat_id, user_id, delivered, read)` parameters; the same SQL on SQLite and PostgreSQL
/// but for the placeholders.
fn raise_marks_sql(backend: sea_orm::DatabaseBackend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from("WITH marks (chat_id, user_id, delivered, read_to) AS (VALUES ");
    for row in 0..rows {
        let sep = if row == 0 { "" } else { ", " };
        match backend {
            sea_orm::DatabaseBackend::Postgres => {
                let n = row * 4;
                let _ = write!(sql, "{sep}(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4);
            }
            _ => {
                let _ = write!(sql, "{sep}(?, ?, ?, ?)");
            }
        }
    }
    sql.push_str(
        ") UPDATE chat_members SET \
         last_delivered_message_id = CASE WHEN chat_members.last_delivered_message_id < marks.delivered \
         THEN marks.delivered ELSE chat_members.last_delivered_message_id END, \
         last_read_message_id = CASE WHEN chat_members.last_read_message_id < marks.read_to \
         THEN marks.read_to ELSE chat_members.last_read_message_id END \
         FROM marks WHERE chat_members.chat_id = marks.chat_id AND chat_members.user_id = marks.user_id",
    );
    sql
}

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

/// The user ids, sorted, each once.
fn distinct(ids: impl IntoIterator<Item = UserId>) -> Vec<UserId> {
    let mut ids: Vec<UserId> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A refusal: an error code and a sentence.
type Refusal = (&'static str, String);

struct BatchState {
    chats: HashMap<ChatId, ChatState>,
    private: HashMap<String, ChatId>,
    /// The stored messages of this batch's keys: inserted by it, or found stored before (a
    /// retry or a redelivery).
    existing: HashMap<(UserId, String), message::Model>,
    /// The uploads messages carry: owner and kind by file id.
    uploads: HashMap<String, (UserId, String)>,
    /// The messages receipts refer to: `(chat_id, sender_id)` by id.
    marked: HashMap<MessageId, Marked>,
    /// New rows to insert, in order, with the keys already taken in this batch.
    new_rows: Vec<message::Model>,
    new_keys: HashSet<(UserId, String)>,
    /// Members whose watermarks this batch moved and has not written yet.
    moved_marks: HashSet<(ChatId, UserId)>,
}

impl BatchState {
    /// Loads every chat, member, marked message and upload the batch refers to, in a few
    /// queries.
    async fn load(db: &impl ConnectionTrait, batch: &[Incoming]) -> Result<Self, DbErr> {
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
                    file_ids.extend(c.file_id.clone());
                }
                Command::Receipt(c) => {
                    chat_ids.insert(c.chat_id);
                    marked_ids.insert(c.message_id);
                }
                Command::CreateChat(c) if !c.is_group => {
                    if let [other] = c.member_ids.as_slice() {
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
                Command::DeleteMessage(c) => {
                    chat_ids.insert(c.chat_id);
                    marked_ids.insert(c.message_id);
                }
            }
        }
        let mut condition = sea_orm::Condition::any();
        if !chat_ids.is_empty() {
            condition = condition.add(chat::Column::Id.is_in(chat_ids.iter().copied()));
        }
        if !private_keys.is_empty() {
            condition = condition.add(chat::Column::PrivateKey.is_in(private_keys.iter().cloned()));
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
                chat.members.insert(
                    m.user_id,
                    Marks {
                        delivered: m.last_delivered_message_id,
                        read: m.last_read_message_id,
                    },
                );
            }
        }
        let private = chats
            .values()
            .filter_map(|c| Some((c.model.private_key.clone()?, c.model.id)))
            .collect();
        let marked = if marked_ids.is_empty() {
            HashMap::new()
        } else {
            message::Entity::find()
                .filter(message::Column::Id.is_in(marked_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|m| {
                    (
                        m.id,
                        Marked {
                            chat_id: m.chat_id,
                            sender_id: m.sender_id,
                        },
                    )
                })
                .collect()
        };
        let uploads = if file_ids.is_empty() {
            HashMap::new()
        } else {
            upload::Entity::find()
                .filter(upload::Column::Id.is_in(file_ids))
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
        })
    }

    /// A message, stored unless its key was stored before: optimistically, since almost every
    /// command is new. The insert skips a key it finds taken (a client's retry after the
    /// dedupe window, a redelivery after a crash) and `flush_messages` then reads the stored
    /// row; a refused send is looked up first, so a retry of a stored message is acked again
    /// whatever changed since (its sender may have left the chat).
    async fn send(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SendMessage,
        seq: u64,
        at: DateTime<Utc>,
        rules: &Rules,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        let Err(refusal) = self.new_message(db, cmd, seq, at, rules, pending).await? else {
            return Ok(Ok(()));
        };
        let key = (cmd.sender_id, cmd.client_msg_id.clone());
        let mut stored = stored_messages(db, &HashSet::from([key.clone()])).await?;
        match stored.remove(&key) {
            Some(message) => {
                self.existing.insert(key.clone(), message);
                pending.push(Pending::Message { key });
                Ok(Ok(()))
            }
            None => Ok(Err(refusal)),
        }
    }

    async fn new_message(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SendMessage,
        seq: u64,
        at: DateTime<Utc>,
        rules: &Rules,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        if let Err(refusal) = rules.check(cmd) {
            return Ok(Err(refusal));
        }
        let key = (cmd.sender_id, cmd.client_msg_id.clone());
        if self.existing.contains_key(&key) || self.new_keys.contains(&key) {
            // Stored before: announce it again so the sender gets its ack; sockets drop repeats.
            pending.push(Pending::Message { key });
            return Ok(Ok(()));
        }
        let chat_id = match (cmd.chat_id, cmd.receiver_id) {
            (Some(chat_id), _) => {
                let Some(chat) = self.chats.get(&chat_id) else {
                    return Ok(Err(("not_found", format!("chat {chat_id} does not exist"))));
                };
                if !chat.members.contains_key(&cmd.sender_id) {
                    return Ok(Err((
                        "forbidden",
                        format!("you are not a member of chat {chat_id}"),
                    )));
                }
                chat_id
            }
            (None, Some(receiver_id)) => {
                if receiver_id <= 0 || receiver_id == cmd.sender_id {
                    return Ok(Err((
                        "invalid_receiver",
                        format!("cannot send to user {receiver_id}"),
                    )));
                }
                self.private_chat(db, cmd.sender_id, receiver_id, None, at, pending)
                    .await?
                    .0
            }
            (None, None) => {
                return Ok(Err((
                    "missing_field",
                    "chat_id or receiver_id is required".into(),
                )));
            }
        };
        // An upload is the sender's to attach; it decides the stored URL and content type.
        let (file_id, file_url, content_type) = match &cmd.file_id {
            Some(file_id) => match self.uploads.get(file_id) {
                Some((owner, kind)) if *owner == cmd.sender_id => (
                    Some(file_id.clone()),
                    Some(format!("/media/{file_id}")),
                    kind.clone(),
                ),
                _ => {
                    return Ok(Err((
                        "not_found",
                        format!("file {file_id} is not one of your uploads"),
                    )));
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
            content: cmd.content.clone(),
            content_type,
            file_url,
            client_msg_id: cmd.client_msg_id.clone(),
            created_at: at,
            stream_seq: seq as i64,
            deleted_at: None,
            file_id,
        });
        pending.push(Pending::Message { key });
        Ok(Ok(()))
    }

    async fn receipt(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &MarkReceipt,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        let message = self.message_ref(db, cmd.message_id).await?;
        let Some(chat) = self.chats.get_mut(&cmd.chat_id) else {
            return Ok(Err((
                "not_found",
                format!("chat {} does not exist", cmd.chat_id),
            )));
        };
        let Some(marks) = chat.members.get(&cmd.user_id).copied() else {
            return Ok(Err((
                "forbidden",
                format!("you are not a member of chat {}", cmd.chat_id),
            )));
        };
        let Some(message) = message else {
            return Ok(Err((
                "not_found",
                format!("message {} does not exist", cmd.message_id),
            )));
        };
        if message.chat_id != cmd.chat_id {
            return Ok(Err((
                "not_found",
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            )));
        }
        if message.sender_id == cmd.user_id {
            return Ok(Err((
                "forbidden",
                "you cannot mark your own message".into(),
            )));
        }
        let mut next = marks;
        match cmd.status {
            ReceiptStatus::Delivered => next.delivered = next.delivered.max(cmd.message_id),
            ReceiptStatus::Read => {
                next.read = next.read.max(cmd.message_id);
                next.delivered = next.delivered.max(cmd.message_id);
            }
        }
        if next.delivered == marks.delivered && next.read == marks.read {
            return Ok(Ok(())); // Watermarks only move forward; nothing new to tell.
        }
        chat.members.insert(cmd.user_id, next);
        // Written once per member, at the end of the batch.
        self.moved_marks.insert((cmd.chat_id, cmd.user_id));
        pending.push(Pending::Ready(Event::Receipt(ReceiptEvent {
            v: VERSION,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            user_id: cmd.user_id,
            status: cmd.status,
            sender_id: message.sender_id,
        })));
        Ok(Ok(()))
    }

    async fn create_chat(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &CreateChat,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        if let Some(name) = &cmd.name
            && name.chars().count() > MAX_NAME_CHARS
        {
            return Ok(Err((
                "invalid_name",
                format!("name is longer than {MAX_NAME_CHARS} characters"),
            )));
        }
        if cmd.member_ids.iter().any(|id| *id <= 0) {
            return Ok(Err((
                "invalid_member",
                "member ids must be positive integers".into(),
            )));
        }
        let (chat_id, created) = if cmd.is_group {
            let ids = distinct(cmd.member_ids.iter().copied().chain([cmd.creator_id]));
            if ids.len() > MAX_GROUP_MEMBERS {
                return Ok(Err((
                    "too_many_members",
                    format!("a group starts with at most {MAX_GROUP_MEMBERS} members"),
                )));
            }
            self.group(db, cmd, &ids, at, pending).await?
        } else {
            let others: Vec<UserId> = cmd
                .member_ids
                .iter()
                .copied()
                .filter(|id| *id != cmd.creator_id)
                .collect();
            let [other] = others.as_slice() else {
                return Ok(Err((
                    "invalid_member",
                    "a private chat has exactly one member besides you".into(),
                )));
            };
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
        let chat = &self.chats[&chat_id];
        let mut member_ids: Vec<UserId> = chat.members.keys().copied().collect();
        member_ids.sort_unstable();
        if !created {
            // Already there (an existing private chat, or this command applied before): the
            // command still gets its outcome event.
            pending.push(Pending::Ready(Event::ChatCreated(ChatCreated {
                v: VERSION,
                command_id: Some(cmd.command_id.clone()),
                chat: chat.model.view(member_ids.clone()),
            })));
        }
        if let Some(reply_to) = &cmd.reply_to {
            replies.push((
                reply_to.clone(),
                Outcome::ChatReady {
                    v: VERSION,
                    command_id: cmd.command_id.clone(),
                    chat: chat.model.view(member_ids),
                    created,
                },
            ));
        }
        Ok(Ok(()))
    }

    /// Finds or creates the private chat of two users; `true` when created now.
    async fn private_chat(
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
        self.add_chat(db, model, &[a.min(b), a.max(b)], command_id, pending)
            .await?;
        Ok((id, true))
    }

    /// Creates a group once per command id; `true` when created now.
    async fn group(
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
                    .map(|m| {
                        (
                            m.user_id,
                            Marks {
                                delivered: m.last_delivered_message_id,
                                read: m.last_read_message_id,
                            },
                        )
                    })
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
        self.add_chat(db, model, member_ids, Some(&cmd.command_id), pending)
            .await?;
        Ok((id, true))
    }

    async fn add_chat(
        &mut self,
        db: &impl ConnectionTrait,
        model: chat::Model,
        member_ids: &[UserId],
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
                }
            }))
            .exec_without_returning(db)
            .await?;
        }
        pending.push(Pending::Ready(Event::ChatCreated(ChatCreated {
            v: VERSION,
            command_id: command_id.map(str::to_owned),
            chat: model.view(member_ids.to_vec()),
        })));
        let members = member_ids
            .iter()
            .map(|id| {
                (
                    *id,
                    Marks {
                        delivered: 0,
                        read: 0,
                    },
                )
            })
            .collect();
        self.chats.insert(model.id, ChatState { model, members });
        Ok(())
    }

    /// A message a receipt or a deletion refers to: stored before the batch, or earlier in it
    /// (so the result does not depend on where batch boundaries fall).
    async fn message_ref(
        &mut self,
        db: &impl ConnectionTrait,
        id: MessageId,
    ) -> Result<Option<Marked>, DbErr> {
        if let Some(known) = self.marked.get(&id) {
            return Ok(Some(*known));
        }
        if self.new_rows.is_empty() {
            return Ok(None);
        }
        self.flush_messages(db).await?;
        let found = self.existing.values().find(|m| m.id == id).map(|m| Marked {
            chat_id: m.chat_id,
            sender_id: m.sender_id,
        });
        if let Some(found) = found {
            self.marked.insert(id, found);
        }
        Ok(found)
    }

    /// Inserts the messages collected so far in multi-row statements.
    async fn flush_messages(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
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
                Err(error) => return Err(error),
            };
            if inserted == chunk.len() {
                self.existing.extend(
                    chunk
                        .into_iter()
                        .map(|m| ((m.sender_id, m.client_msg_id.clone()), m)),
                );
            } else {
                // Some keys were taken: what is stored counts, for those inserted just now too.
                let keys = chunk
                    .into_iter()
                    .map(|m| (m.sender_id, m.client_msg_id))
                    .collect();
                self.existing.extend(stored_messages(db, &keys).await?);
            }
        }
        let missing: HashSet<ChatId> = self
            .existing
            .values()
            .map(|m| m.chat_id)
            .filter(|id| !self.chats.contains_key(id))
            .collect();
        if !missing.is_empty() {
            for model in chat::Entity::find()
                .filter(chat::Column::Id.is_in(missing))
                .all(db)
                .await?
            {
                self.chats.insert(
                    model.id,
                    ChatState {
                        model,
                        members: HashMap::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Writes the watermarks receipts moved: one statement per [`MARKS_CHUNK`] members
    /// instead of one per receipt. A watermark is never lowered, even if another persister
    /// moved it further meanwhile.
    async fn flush_marks(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        if self.moved_marks.is_empty() {
            return Ok(());
        }
        let mut moved: Vec<(ChatId, UserId)> = self.moved_marks.drain().collect();
        moved.sort_unstable(); // the same lock order in every transaction (PostgreSQL)
        let backend = db.get_database_backend();
        for chunk in moved.chunks(MARKS_CHUNK) {
            let mut values = Vec::with_capacity(chunk.len() * 4);
            for &(chat_id, user_id) in chunk {
                let Some(marks) = self
                    .chats
                    .get(&chat_id)
                    .and_then(|c| c.members.get(&user_id))
                else {
                    continue; // removed later in the batch: the row is gone
                };
                values.extend([chat_id, user_id, marks.delivered, marks.read].map(Into::into));
            }
            if values.is_empty() {
                continue;
            }
            let sql = raise_marks_sql(backend, values.len() / 4);
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        }
        Ok(())
    }

    /// Every message the batch refers to (new or stored before, not deleted) as events show it.
    fn stored_views(&self) -> HashMap<(UserId, String), (MessageView, u64)> {
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

    /// The group `chat_id`, or why a group command cannot apply to it.
    fn group_state(&mut self, chat_id: ChatId) -> Result<&mut ChatState, Refusal> {
        match self.chats.get_mut(&chat_id) {
            None => Err(("not_found", format!("chat {chat_id} does not exist"))),
            Some(chat) if !chat.model.is_group => Err((
                "not_a_group",
                format!("chat {chat_id} is private; its members are fixed"),
            )),
            Some(chat) => Ok(chat),
        }
    }

    async fn add_members(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &AddMembers,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        if cmd.user_ids.iter().any(|id| *id <= 0) {
            return Ok(Err((
                "invalid_member",
                "user ids must be positive integers".into(),
            )));
        }
        let chat = match self.group_state(cmd.chat_id) {
            Ok(chat) => chat,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let requested = distinct(cmd.user_ids.iter().copied());
        let new: Vec<UserId> = requested
            .iter()
            .copied()
            .filter(|id| !chat.members.contains_key(id))
            .collect();
        if chat.members.len() + new.len() > MAX_GROUP_MEMBERS {
            return Ok(Err((
                "too_many_members",
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            )));
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
                }
            }))
            .exec_without_returning(db)
            .await?;
        }
        let chat = self.chats.get_mut(&cmd.chat_id).expect("checked above");
        for user_id in new {
            chat.members.insert(
                user_id,
                Marks {
                    delivered: after,
                    read: after,
                },
            );
        }
        // Every requested user is announced, members from before too: applying the command
        // again (a redelivery) announces the same outcome.
        for user_id in requested {
            pending.push(Pending::Ready(Event::MemberAdded(MemberAdded {
                v: VERSION,
                chat_id: cmd.chat_id,
                user_id,
                after_message_id: after,
                command_id: Some(cmd.command_id.clone()),
            })));
        }
        Ok(Ok(()))
    }

    async fn remove_members(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &RemoveMembers,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        let chat = match self.group_state(cmd.chat_id) {
            Ok(chat) => chat,
            Err(refusal) => return Ok(Err(refusal)),
        };
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
                chat_id: cmd.chat_id,
                user_id,
                command_id: Some(cmd.command_id.clone()),
            })));
        }
        Ok(Ok(()))
    }

    async fn rename(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &RenameChat,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        let name = cmd.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Ok(Err((
                "invalid_name",
                format!("a name has 1 to {MAX_NAME_CHARS} characters"),
            )));
        }
        let chat = match self.group_state(cmd.chat_id) {
            Ok(chat) => chat,
            Err(refusal) => return Ok(Err(refusal)),
        };
        chat.model.name = Some(name.to_owned());
        chat::Entity::update_many()
            .col_expr(chat::Column::Name, Expr::value(name))
            .filter(chat::Column::Id.eq(cmd.chat_id))
            .exec(db)
            .await?;
        pending.push(Pending::Ready(Event::ChatRenamed(ChatRenamed {
            v: VERSION,
            chat_id: cmd.chat_id,
            name: name.to_owned(),
            command_id: Some(cmd.command_id.clone()),
        })));
        Ok(Ok(()))
    }

    async fn delete_message(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &DeleteMessage,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
    ) -> Result<Result<(), Refusal>, DbErr> {
        let not_found = || {
            (
                "not_found",
                format!("message {} is not in chat {}", cmd.message_id, cmd.chat_id),
            )
        };
        match self.message_ref(db, cmd.message_id).await? {
            Some(m) if m.chat_id == cmd.chat_id => {}
            _ => return Ok(Err(not_found())),
        }
        message::Entity::update_many()
            .col_expr(message::Column::DeletedAt, Expr::value(at))
            .col_expr(message::Column::Content, Expr::value(""))
            .col_expr(
                message::Column::FileUrl,
                Expr::value(Option::<String>::None),
            )
            .filter(message::Column::Id.eq(cmd.message_id))
            .filter(message::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        // Announced even when it was deleted before: the command's outcome is the same.
        pending.push(Pending::Ready(Event::MessageDeleted(MessageDeleted {
            v: VERSION,
            chat_id: cmd.chat_id,
            message_id: cmd.message_id,
            command_id: Some(cmd.command_id.clone()),
        })));
        Ok(Ok(()))
    }
}
