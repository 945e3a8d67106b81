//! One batch of commands applied in one transaction: the only place chat state is written.
//!
//! Idempotent by construction: a redelivered command or a client's retry finds its message
//! (unique sender + `client_msg_id`), its private chat (unique pair) or its group
//! (unique `create_command_id`) and re-emits the same events instead of writing twice.
//!
//! One file per kind of state: [`load`] reads what a batch refers to, [`messages`],
//! [`receipts`], [`chats`], [`members`], [`groups`] (roles, settings, deletion), [`edits`],
//! [`reactions`], [`uploads`], [`users`] (the directory), [`blocks`], [`pins`], [`erasure`]
//! and [`push`] (mutes and push watermarks) apply the commands, [`rules`] checks their fields.

mod blocks;
mod chats;
mod edits;
mod erasure;
mod groups;
mod load;
mod members;
mod messages;
mod pins;
mod push;
mod reactions;
mod receipts;
pub mod rules;
mod uploads;
mod users;

use crate::domain::ErrorCode;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

pub use rules::Rules;

use crate::{
    bus::messages::{Command, CommandRejected, Event, MessageCreated, Outcome, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, ReceiptStatus},
    store::{chat, chat_member, message},
};

/// Rows per multi-row INSERT (well under SQLite's and PostgreSQL's parameter limits).
const INSERT_CHUNK: usize = 500;

/// Most members a group starts with.
const MAX_GROUP_MEMBERS: usize = 10_000;

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
    /// Message rows this batch inserted: a redelivered or retried send found stored is in
    /// `events` again but not here.
    pub messages_stored: u64,
    /// The `CHAT_IN` sequence of the command behind each event, index for index; shorter, or
    /// `None`, for events pushed without one (rejections of commands the database refused or
    /// that are no command): a traced command's events continue its trace.
    pub origins: Vec<Option<u64>>,
    /// Storage keys of blobs an erasure left without an upload row: deleted from media
    /// storage once the transaction commits (`persister`), before its events go out.
    pub erased_blobs: Vec<String>,
}

/// A member's watermarks and mute as this batch sees them.
#[derive(Clone, Copy)]
struct Marks {
    delivered: MessageId,
    read: MessageId,
    /// The newest message a push covered (or passed over while muted).
    pushed: MessageId,
    muted_until: Option<DateTime<Utc>>,
}

impl Marks {
    /// A stored member's.
    fn of(member: &chat_member::Model) -> Self {
        Marks {
            delivered: member.last_delivered_message_id,
            read: member.last_read_message_id,
            pushed: member.push_notified_message_id,
            muted_until: member.muted_until,
        }
    }

    /// A new member's: everything up to `after` is not theirs to be told of.
    fn joined(after: MessageId) -> Self {
        Marks {
            delivered: after,
            read: after,
            pushed: after,
            muted_until: None,
        }
    }
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

impl Marked {
    /// What later commands of a batch need of a stored message.
    fn of(message: &crate::store::message::Model) -> Self {
        Marked {
            chat_id: message.chat_id,
            sender_id: message.sender_id,
        }
    }
}

/// An event whose message id is known only after the bulk insert.
// Most pendings are events: boxing them would cost an allocation each to shrink the others.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Ready(Event),
    Message {
        key: (UserId, String),
    },
    /// A receipt event a later mark of the same batch replaced.
    Superseded,
}

/// Answers `applied` on `reply_to`, when the command asked for an outcome.
fn applied(replies: &mut Vec<(String, Outcome)>, reply_to: Option<&String>, command_id: &str) {
    if let Some(reply_to) = reply_to {
        replies.push((
            reply_to.clone(),
            Outcome::Applied {
                v: VERSION,
                command_id: command_id.to_owned(),
            },
        ));
    }
}

/// Why applying a batch failed: the batch as a whole is retried (transient) or isolated.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database failed the write.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A new message's id (its `CHAT_IN` sequence) belongs to a different stored message:
    /// `CHAT_IN` was recreated or truncated while the database was kept. Never a silent skip.
    #[error(
        "message id {id} is taken by a different stored message: CHAT_IN is behind the database"
    )]
    IdTaken { id: MessageId },
}

pub use crate::domain::rules::Refusal;

/// Why one command did not apply.
enum Failure {
    /// It can never apply as it is: refused, and the batch goes on.
    Refused(Refusal),
    /// The write failed: so does the batch.
    Write(ApplyError),
}

impl From<DbErr> for Failure {
    fn from(error: DbErr) -> Self {
        Failure::Write(ApplyError::Db(error))
    }
}

impl From<ApplyError> for Failure {
    fn from(error: ApplyError) -> Self {
        Failure::Write(error)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

/// The result of applying one command.
type Step = Result<(), Failure>;

/// A refused step.
fn refuse(code: ErrorCode, detail: impl Into<String>) -> Failure {
    Failure::Refused(Refusal::new(code, detail))
}

impl BatchState {
    /// Refuses (`forbidden`) a `user` who is not, as this batch sees it, a member of `chat_id`.
    fn require_member(&self, chat_id: ChatId, user: UserId) -> Step {
        let member = self
            .chats
            .get(&chat_id)
            .is_some_and(|chat| chat.members.contains_key(&user));
        if member {
            Ok(())
        } else {
            Err(refuse(
                ErrorCode::Forbidden,
                format!("you are not a member of chat {chat_id}"),
            ))
        }
    }
}

/// The `command_rejected` event and, when the command asked for one, the `rejected` outcome
/// for a refused command.
pub fn rejection(incoming: &Incoming, refusal: &Refusal, applied: &mut Applied) {
    let command = &incoming.command;
    let command_id = command.command_id();
    tracing::debug!(
        code = %refusal.code,
        detail = refusal.detail,
        command_id,
        kind = command.kind(),
        "command rejected"
    );
    if let Some(reply_to) = command.reply_to() {
        applied.replies.push((
            reply_to.to_owned(),
            Outcome::Rejected {
                v: VERSION,
                command_id: command_id.clone(),
                code: refusal.code,
                detail: refusal.detail.clone(),
            },
        ));
    }
    applied.events.push(Event::CommandRejected(CommandRejected {
        v: VERSION,
        command_id,
        command: command.kind().into(),
        chat_id: command.chat_id(),
        code: refusal.code,
        detail: refusal.detail.clone(),
        stream_seq: incoming.seq,
    }));
}

impl Applied {
    /// Appends what a later part of the same transaction applied.
    pub fn extend(&mut self, other: Applied) {
        self.origins.resize(self.events.len(), None);
        self.events.extend(other.events);
        self.replies.extend(other.replies);
        self.messages_stored += other.messages_stored;
        self.origins.extend(other.origins);
        self.erased_blobs.extend(other.erased_blobs);
    }
}

/// Applies `batch` inside `txn`. Business refusals become `command_rejected` events (and
/// `rejected` outcomes); a failed write fails the batch, which the caller retries when the
/// failure is transient or isolates when it is not (`persister::write`).
pub async fn apply(
    txn: &impl ConnectionTrait,
    batch: &[Incoming],
    rules: &Rules,
) -> Result<Applied, ApplyError> {
    let mut state = BatchState::load(txn, batch).await?;
    let mut pending = Vec::with_capacity(batch.len());
    let mut replies = Vec::new();
    let mut origins = Vec::with_capacity(batch.len());
    for incoming in batch {
        let at = incoming.published;
        // A message's fields are checked once its earlier copy is looked up (`send`).
        let checked = match &incoming.command {
            Command::SendMessage(_) => Ok(()),
            other => rules.check(other).map_err(Failure::Refused),
        };
        let result = match &incoming.command {
            _ if checked.is_err() => checked,
            Command::SendMessage(cmd) => {
                state
                    .send(txn, cmd, incoming.seq, at, rules, &mut pending)
                    .await
            }
            Command::Receipt(cmd) => state.receipt(txn, cmd, &mut pending).await,
            Command::DeliveredMarks(cmd) => state.delivered_marks(txn, cmd, &mut pending).await,
            Command::CreateChat(cmd) => {
                state
                    .create_chat(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            // A member's (with `actor_id`) is answered `applied`; Django's keep their contract
            // of an outcome only when refused.
            Command::AddMembers(cmd) => {
                let added = state.add_members(txn, cmd, at, &mut pending).await;
                if added.is_ok() && cmd.actor_id.is_some() {
                    applied(&mut replies, cmd.reply_to.as_ref(), &cmd.command_id);
                }
                added
            }
            Command::RemoveMembers(cmd) => {
                let removed = state.remove_members(txn, cmd, &mut pending).await;
                if removed.is_ok() && cmd.actor_id.is_some() {
                    applied(&mut replies, cmd.reply_to.as_ref(), &cmd.command_id);
                }
                removed
            }
            Command::RenameChat(cmd) => state.rename(txn, cmd, &mut pending).await,
            Command::UpdateChat(cmd) => {
                state
                    .update_chat(txn, cmd, &mut pending, &mut replies)
                    .await
            }
            Command::SetMemberRole(cmd) => {
                state
                    .set_member_role(txn, cmd, &mut pending, &mut replies)
                    .await
            }
            Command::DeleteChat(cmd) => {
                state
                    .delete_chat(txn, cmd, &mut pending, &mut replies)
                    .await
            }
            Command::DeleteMessage(cmd) => {
                state
                    .delete_message(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            Command::RegisterUpload(cmd) => {
                state
                    .register_upload(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            Command::EditMessage(cmd) => {
                state
                    .edit_message(txn, cmd, at, rules, &mut pending, &mut replies)
                    .await
            }
            Command::React(cmd) => {
                state
                    .react(txn, cmd, true, at, &mut pending, &mut replies)
                    .await
            }
            Command::Unreact(cmd) => {
                state
                    .react(txn, cmd, false, at, &mut pending, &mut replies)
                    .await
            }
            Command::MuteChat(cmd) => state.mute(txn, cmd, at, &mut pending, &mut replies).await,
            Command::PushDue(cmd) => state.push_due(txn, cmd, at, &mut pending).await,
            Command::UpsertUser(cmd) => {
                state
                    .upsert_user(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            Command::SetBlock(cmd) => {
                state
                    .set_block(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
            Command::PinMessage(cmd) => state.pin(txn, cmd, at, &mut pending, &mut replies).await,
            Command::EraseUser(cmd) => {
                state
                    .erase_user(txn, cmd, at, &mut pending, &mut replies)
                    .await
            }
        };
        match result {
            Ok(()) => {}
            Err(Failure::Write(error)) => return Err(error),
            Err(Failure::Refused(refusal)) => {
                let mut rejected = Applied::default();
                rejection(incoming, &refusal, &mut rejected);
                replies.extend(rejected.replies);
                pending.extend(rejected.events.into_iter().map(Pending::Ready));
            }
        }
        origins.resize(pending.len(), Some(incoming.seq));
    }
    state.flush_messages(txn).await?;
    state.flush_marks(txn).await?;
    let stored = state.stored_views();
    let (events, origins) = pending
        .into_iter()
        .zip(origins)
        .filter_map(|(p, origin)| match p {
            Pending::Ready(event) => Some((event, origin)),
            Pending::Superseded => None,
            Pending::Message { key } => {
                let (message, stream_seq) = stored.get(&key)?.clone();
                let created = Event::MessageCreated(MessageCreated {
                    v: VERSION,
                    cursor: None,
                    message,
                    stream_seq,
                });
                Some((created, origin))
            }
        })
        .unzip();
    Ok(Applied {
        events,
        replies,
        messages_stored: state.messages_stored,
        origins,
        erased_blobs: state.erased_blobs,
    })
}

/// The user ids, sorted, each once.
fn distinct(ids: impl IntoIterator<Item = UserId>) -> Vec<UserId> {
    let mut ids: Vec<UserId> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

struct BatchState {
    chats: HashMap<ChatId, ChatState>,
    private: HashMap<String, ChatId>,
    /// The stored messages of this batch's keys: inserted by it, or found stored before (a
    /// retry or a redelivery).
    existing: HashMap<(UserId, String), message::Model>,
    /// The uploads messages carry: owner and kind by file id.
    uploads: HashMap<String, (UserId, String)>,
    /// The messages receipts, deletions and pushes refer to, `(chat_id, sender_id)` by id:
    /// those stored before the batch, and every row the batch wrote (a command must see an
    /// earlier one of its batch as it would see it stored by an earlier batch).
    marked: HashMap<MessageId, Marked>,
    /// New rows to insert, in order, with the keys already taken in this batch.
    new_rows: Vec<message::Model>,
    new_keys: HashSet<(UserId, String)>,
    /// Members whose watermarks this batch moved and has not written yet.
    moved_marks: HashSet<(ChatId, UserId)>,
    /// The pending receipt event of each (chat, member, status, author) this batch told.
    told_receipts: HashMap<(ChatId, UserId, ReceiptStatus, UserId), usize>,
    /// Message rows inserted so far.
    messages_stored: u64,
    /// The `(blocker, blocked)` blocks that hold between the receivers and senders of this
    /// batch's private messages and chats (read with the batch; kept current by its
    /// `set_block`s).
    blocks: HashSet<(UserId, UserId)>,
    /// Blobs an erasure left without an upload row (see [`Applied::erased_blobs`]).
    erased_blobs: Vec<String>,
}
