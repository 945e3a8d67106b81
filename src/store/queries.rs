//! Read queries for sockets and REST, and the views built from rows.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{chat, chat_member, message, message_reaction, message_revision};
use crate::domain::ChatId;
use crate::{
    domain::UserId,
    domain::{ChatView, ContentType, MessageId, MessageStatus, MessageView},
};

/// One of a user's chats, as a socket needs it to check sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub chat_id: ChatId,
    /// The other member of a private chat.
    pub peer: Option<UserId>,
}

/// The other user of a private chat key `"a:b"`.
pub fn peer_of(private_key: Option<&str>, me: UserId) -> Option<UserId> {
    let (a, b) = private_key?.split_once(':')?;
    let (a, b): (UserId, UserId) = (a.parse().ok()?, b.parse().ok()?);
    Some(if a == me { b } else { a })
}

impl message::Model {
    /// The message as frames and history show it; `private_key` is its chat's.
    pub fn view(&self, private_key: Option<&str>) -> MessageView {
        let deleted = self.deleted_at.is_some();
        MessageView {
            message_id: self.id,
            chat_id: self.chat_id,
            sender_id: self.sender_id,
            receiver_id: peer_of(private_key, self.sender_id),
            content: if deleted {
                String::new()
            } else {
                self.content.clone()
            },
            content_type: ContentType::parse(&self.content_type).unwrap_or(ContentType::File),
            file_url: self.file_url.clone().filter(|_| !deleted),
            file_id: self.file_id.clone().filter(|_| !deleted),
            client_msg_id: self.client_msg_id.clone(),
            timestamp: self.created_at,
            edited_at: self.edited_at,
            deleted,
            // A tombstone shows nothing of what it answered or forwarded.
            reply_to_message_id: self.reply_to_message_id.filter(|_| !deleted),
            reply_quote: match (self.reply_quote_sender_id, &self.reply_quote_text) {
                (Some(sender_id), Some(text)) if !deleted => Some(crate::domain::ReplyQuote {
                    sender_id,
                    text: text.clone(),
                }),
                _ => None,
            },
            forwarded_from: match (
                self.forwarded_from_chat_id,
                self.forwarded_from_message_id,
                self.forwarded_from_sender_id,
            ) {
                (Some(chat_id), Some(message_id), Some(sender_id)) if !deleted => {
                    Some(crate::domain::ForwardedFrom {
                        chat_id,
                        message_id,
                        sender_id,
                    })
                }
                _ => None,
            },
            mentions: if deleted {
                Vec::new()
            } else {
                crate::domain::parse_mentions(self.mentions.as_deref())
            },
        }
    }
}

impl chat::Model {
    /// The chat with its members and, for a group, who runs it and its settings.
    pub fn view(&self, member_ids: Vec<UserId>, roles: &super::roles::GroupRoles) -> ChatView {
        ChatView {
            chat_id: self.id,
            name: self.name.clone(),
            is_group: self.is_group,
            created_by: self.created_by,
            created_at: self.created_at,
            member_ids,
            owner_id: roles.owner_id.filter(|_| self.is_group),
            admin_ids: if self.is_group {
                roles.admin_ids.clone()
            } else {
                Vec::new()
            },
            settings: self.settings(),
        }
    }

    /// The group's settings as stored.
    pub fn settings(&self) -> crate::domain::GroupSettings {
        crate::domain::GroupSettings {
            members_can_add: self.members_can_add,
        }
    }
}

/// Every chat `user_id` belongs to.
pub async fn memberships(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Vec<Membership>, DbErr> {
    let rows = chat::Entity::find()
        .inner_join(chat_member::Entity)
        .filter(chat_member::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|c| Membership {
            chat_id: c.id,
            peer: peer_of(c.private_key.as_deref(), user_id),
        })
        .collect())
}

/// Users per [`chats_of_each_up_to`] query (its `IN` list, padded to a power of two).
const USERS_PER_QUERY: usize = 512;

/// The chats of each of `users` with at most `most` members (0: every chat of theirs): one
/// query per [`USERS_PER_QUERY`] users, run once per batch of presence changes, never on the
/// message path. A user in no such chat is absent.
pub async fn chats_of_each_up_to(
    db: &impl ConnectionTrait,
    users: &[UserId],
    most: u64,
) -> Result<HashMap<UserId, Vec<ChatId>>, DbErr> {
    let mut chats: HashMap<UserId, Vec<ChatId>> = HashMap::new();
    for chunk in users.chunks(USERS_PER_QUERY) {
        let mut query = Query::select();
        query
            .columns([chat_member::Column::UserId, chat_member::Column::ChatId])
            .from(chat_member::Entity)
            .and_where(
                Expr::col(chat_member::Column::UserId).is_in(super::in_list(chunk.iter().copied())),
            );
        if most != 0 {
            // Counted in the members' primary key (chat, user): a walk of each chat's members.
            let size = Query::select()
                .expr(Expr::cust("COUNT(*)"))
                .from_as(chat_member::Entity, "c")
                .and_where(
                    Expr::col(("c", chat_member::Column::ChatId))
                        .equals((chat_member::Entity, chat_member::Column::ChatId)),
                )
                .to_owned();
            query.and_where(
                Expr::SubQuery(None, Box::new(size.into()))
                    .lte(i64::try_from(most).unwrap_or(i64::MAX)),
            );
        }
        // The members' primary key makes each (user, chat) pair one row.
        for row in db.query_all(&query).await? {
            let user: UserId = row.try_get_by_index(0)?;
            chats
                .entry(user)
                .or_default()
                .push(row.try_get_by_index(1)?);
        }
    }
    Ok(chats)
}

/// `user_id`'s membership of one chat, if any.
pub async fn membership(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    user_id: UserId,
) -> Result<Option<Membership>, DbErr> {
    let chat = chat::Entity::find_by_id(chat_id)
        .inner_join(chat_member::Entity)
        .filter(chat_member::Column::UserId.eq(user_id))
        .one(db)
        .await?;
    Ok(chat.map(|c| Membership {
        chat_id: c.id,
        peer: peer_of(c.private_key.as_deref(), user_id),
    }))
}

/// A chat by id.
pub async fn chat(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
) -> Result<Option<chat::Model>, DbErr> {
    chat::Entity::find_by_id(chat_id).one(db).await
}

/// Chats by id.
pub async fn chats(db: &impl ConnectionTrait, ids: &[ChatId]) -> Result<Vec<chat::Model>, DbErr> {
    chat::Entity::find()
        .filter(chat::Column::Id.is_in(super::in_list(ids.iter().copied())))
        .all(db)
        .await
}

/// The private chat of two users, if it exists.
pub async fn private_chat(
    db: &impl ConnectionTrait,
    a: UserId,
    b: UserId,
) -> Result<Option<chat::Model>, DbErr> {
    chat::Entity::find()
        .filter(chat::Column::PrivateKey.eq(chat::private_key(a, b)))
        .one(db)
        .await
}

/// The members of some chats.
pub async fn members(
    db: &impl ConnectionTrait,
    chat_ids: impl IntoIterator<Item = ChatId>,
) -> Result<Vec<chat_member::Model>, DbErr> {
    chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.is_in(super::in_list(chat_ids)))
        .order_by_asc(chat_member::Column::ChatId)
        .order_by_asc(chat_member::Column::UserId)
        .all(db)
        .await
}

/// A message by id.
pub async fn message(
    db: &impl ConnectionTrait,
    id: MessageId,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find_by_id(id).one(db).await
}

/// The texts a message had before each edit, oldest first.
pub async fn revisions(
    db: &impl ConnectionTrait,
    message_id: MessageId,
) -> Result<Vec<message_revision::Model>, DbErr> {
    message_revision::Entity::find()
        .filter(message_revision::Column::MessageId.eq(message_id))
        .order_by_asc(message_revision::Column::Id)
        .all(db)
        .await
}

/// A message by its author's idempotency key.
pub async fn message_by_client_id(
    db: &impl ConnectionTrait,
    sender_id: UserId,
    client_msg_id: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::SenderId.eq(sender_id))
        .filter(message::Column::ClientMsgId.eq(client_msg_id))
        .one(db)
        .await
}

/// Who deleted each of `ids` that a member deleted (Django's moderation is not listed): one
/// read for a page's tombstones.
pub async fn deleters(
    db: &impl ConnectionTrait,
    ids: &[MessageId],
) -> Result<HashMap<MessageId, UserId>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let select = Query::select()
        .column(message::Column::Id)
        .column(message::DeletedBy::DeletedBy)
        .from(message::Entity)
        .and_where(Expr::col(message::Column::Id).is_in(super::in_list(ids.iter().copied())))
        .and_where(Expr::col(message::DeletedBy::DeletedBy).is_not_null())
        .to_owned();
    db.query_all(&select)
        .await?
        .iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// A page of a chat's history (deleted messages as tombstones), newest first: before `before`, or the oldest `limit` after
/// `after` (still returned newest first), or the newest `limit`.
pub async fn history(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    before: Option<MessageId>,
    after: Option<MessageId>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    // Deleted messages stay, as tombstones (`MessageView::deleted`).
    let mut query = message::Entity::find().filter(message::Column::ChatId.eq(chat_id));
    if let Some(before) = before {
        query = query.filter(message::Column::Id.lt(before));
    }
    if let Some(after) = after {
        query = query.filter(message::Column::Id.gt(after));
    }
    if after.is_some() && before.is_none() {
        let mut page = query
            .order_by_asc(message::Column::Id)
            .limit(limit)
            .all(db)
            .await?;
        page.reverse();
        Ok(page)
    } else {
        query
            .order_by_desc(message::Column::Id)
            .limit(limit)
            .all(db)
            .await
    }
}

/// The reactions to one message: each emoji once, in the order it was first used.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReactionCount {
    pub emoji: String,
    /// How many members reacted with it.
    pub count: u64,
    /// Whether the caller is one of them.
    pub me: bool,
}

/// The reactions to each of `message_ids` as `user` sees them (messages with none are
/// absent): one grouped query, so a page costs at most 20 rows per message, however many
/// members reacted.
pub async fn reactions(
    db: &impl ConnectionTrait,
    message_ids: &[MessageId],
    user: UserId,
) -> Result<HashMap<MessageId, Vec<ReactionCount>>, DbErr> {
    use message_reaction::Column;
    use sea_orm::sea_query::Func;
    if message_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mine = Expr::case(Expr::col(Column::UserId).eq(user), 1).finally(0);
    let query = Query::select()
        .column(Column::MessageId)
        .column(Column::Emoji)
        .expr_as(Expr::col(Column::Id).count(), "reacted")
        .expr_as(Func::max(mine), "mine")
        .expr_as(Expr::col(Column::Id).min(), "first_id")
        .from(message_reaction::Entity)
        .and_where(Expr::col(Column::MessageId).is_in(super::in_list(message_ids.iter().copied())))
        .group_by_col(Column::MessageId)
        .group_by_col(Column::Emoji)
        .order_by(
            sea_orm::sea_query::Alias::new("first_id"),
            sea_orm::Order::Asc,
        )
        .to_owned();
    let mut out: HashMap<MessageId, Vec<ReactionCount>> = HashMap::new();
    for row in db.query_all(&query).await? {
        out.entry(row.try_get::<i64>("", "message_id")?)
            .or_default()
            .push(ReactionCount {
                emoji: row.try_get("", "emoji")?,
                count: u64::try_from(row.try_get::<i64>("", "reacted")?).unwrap_or(0),
                me: row.try_get::<i32>("", "mine")? > 0,
            });
    }
    Ok(out)
}

/// The newest message of each chat.
pub async fn last_messages(
    db: &impl ConnectionTrait,
    chat_ids: &[ChatId],
) -> Result<HashMap<ChatId, message::Model>, DbErr> {
    let newest = Query::select()
        .expr(Expr::col(message::Column::Id).max())
        .from(message::Entity)
        .and_where(message::Column::ChatId.is_in(super::in_list(chat_ids.iter().copied())))
        .and_where(message::Column::DeletedAt.is_null())
        .group_by_col(message::Column::ChatId)
        .to_owned();
    let rows = message::Entity::find()
        .filter(message::Column::Id.in_subquery(newest))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| (m.chat_id, m)).collect())
}

/// Whether a message's `mentions` name `user_id` (a `LIKE` on the stored list, the pattern
/// bound; the one condition every backend reads alike).
pub fn mentions_of(user_id: UserId) -> Expr {
    Expr::cust("(',' || messages.mentions || ',')").like(format!("%,{user_id},%"))
}

/// The chats in which `user_id` muted mentions too (`chat_member::MENTIONS_MUTED`).
pub async fn mentions_muted(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<std::collections::HashSet<ChatId>, DbErr> {
    let query = Query::select()
        .column(chat_member::Column::ChatId)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::UserId).eq(user_id))
        .and_where(Expr::col(chat_member::MENTIONS_MUTED).eq(true))
        .to_owned();
    db.query_all(&query)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<ChatId>(0))
        .collect()
}

/// Whether `user_id` muted the mentions of `chat_id` too.
pub async fn mentions_muted_in(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    user_id: UserId,
) -> Result<bool, DbErr> {
    let query = Query::select()
        .column(chat_member::MENTIONS_MUTED)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::ChatId).eq(chat_id))
        .and_where(Expr::col(chat_member::Column::UserId).eq(user_id))
        .to_owned();
    match db.query_one(&query).await? {
        Some(row) => row.try_get_by_index::<bool>(0),
        None => Ok(false),
    }
}

/// Unread messages are counted up to this many per chat: a chat's count says `UNREAD_MOST`
/// when it has that many or more (clients show "999+"). Counting reads each unread message's
/// row, so an uncapped count of a busy group nobody reads grows without end with every
/// greeting and every `GET /chats/`: in the soak (clients that never mark read), ~9,000
/// unread after 7 minutes took 23 ms a greeting, and the p99 of every other message grew with
/// it.
pub const UNREAD_MOST: u64 = 1000;

/// How many messages from others `user_id` has not read, per chat, up to [`UNREAD_MOST`]
/// (chats with none are absent).
pub async fn unread_counts(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<HashMap<ChatId, i64>, DbErr> {
    unread(db, user_id, false).await
}

/// How many of the messages `user_id` has not read mention them, per chat, up to
/// [`UNREAD_MOST`] (chats with none are absent): the same unread messages, those whose
/// `mentions` list the user (read by `idx_messages_mentions`, the messages with mentions only).
pub async fn unread_mentions(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<HashMap<ChatId, i64>, DbErr> {
    unread(db, user_id, true).await
}

/// [`unread_counts`], or with `mentioned` [`unread_mentions`]: for each of the user's chats,
/// the count of a window of at most [`UNREAD_MOST`] unread messages (a correlated subquery,
/// so each chat's walk of its index stops there).
async fn unread(
    db: &impl ConnectionTrait,
    user_id: UserId,
    mentioned: bool,
) -> Result<HashMap<ChatId, i64>, DbErr> {
    let mut window = Query::select();
    if mentioned {
        window
            .and_where(Expr::col((message::Entity, message::Column::Mentions)).is_not_null())
            .and_where(mentions_of(user_id));
    }
    window
        .expr(Expr::val(1))
        .from(message::Entity)
        .and_where(
            Expr::col((message::Entity, message::Column::ChatId))
                .equals((chat_member::Entity, chat_member::Column::ChatId)),
        )
        .and_where(
            Expr::col((message::Entity, message::Column::Id)).gt(Expr::col((
                chat_member::Entity,
                chat_member::Column::LastReadMessageId,
            ))),
        )
        .and_where(Expr::col((message::Entity, message::Column::SenderId)).ne(user_id))
        .and_where(Expr::col((message::Entity, message::Column::DeletedAt)).is_null())
        .limit(UNREAD_MOST);
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(window.take(), "unread_window")
        .to_owned();
    let query = Query::select()
        .column((chat_member::Entity, chat_member::Column::ChatId))
        .expr_as(Expr::SubQuery(None, Box::new(count.into())), "unread")
        .from(chat_member::Entity)
        .and_where(Expr::col((chat_member::Entity, chat_member::Column::UserId)).eq(user_id))
        .to_owned();
    let mut counts = HashMap::new();
    for row in db.query_all(&query).await? {
        let unread = row.try_get::<i64>("", "unread")?;
        if unread > 0 {
            counts.insert(row.try_get::<i64>("", "chat_id")?, unread);
        }
    }
    Ok(counts)
}

/// The status of `message` for `viewer`, given the chat's members and their watermarks:
/// for the author, the least advanced other member; for anyone else, their own marks.
pub fn status(
    message: &message::Model,
    viewer: UserId,
    members: &[chat_member::Model],
) -> MessageStatus {
    let level = |m: &chat_member::Model| {
        if m.last_read_message_id >= message.id {
            MessageStatus::Read
        } else if m.last_delivered_message_id >= message.id {
            MessageStatus::Delivered
        } else {
            MessageStatus::Sent
        }
    };
    let rank = |s: MessageStatus| s as u8;
    if message.sender_id == viewer {
        members
            .iter()
            .filter(|m| m.user_id != viewer)
            .map(level)
            .min_by_key(|s| rank(*s))
            .unwrap_or(MessageStatus::Sent)
    } else {
        members
            .iter()
            .find(|m| m.user_id == viewer)
            .map(level)
            .unwrap_or(MessageStatus::Sent)
    }
}

/// The newest message's `CHAT_IN` sequence (0 for an empty database): the stream must have
/// reached it, or new messages would take ids already stored.
pub async fn newest_stream_seq(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let newest: Option<i64> = message::Entity::find()
        .select_only()
        .column_as(message::Column::StreamSeq.max(), "newest")
        .into_tuple()
        .one(db)
        .await?
        .flatten();
    Ok(u64::try_from(newest.unwrap_or(0)).unwrap_or(0))
}
