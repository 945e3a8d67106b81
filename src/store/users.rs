//! The queries behind the user directory: profiles by id, and who may see whose.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{chat_member, user_profile};
use crate::domain::{ChatId, UserId, UserProfile};

/// Ids per `IN (…)` list (well under SQLite's and PostgreSQL's parameter limits).
const CHUNK: usize = 500;

/// One user's directory entry, if any.
pub async fn profile(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Option<user_profile::Model>, DbErr> {
    user_profile::Entity::find_by_id(user_id).one(db).await
}

/// The profiles of `ids`, each once, in id order; a user without an entry gets
/// [`UserProfile::unknown`].
pub async fn profiles(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = UserId>,
) -> Result<Vec<UserProfile>, DbErr> {
    let ids: BTreeSet<UserId> = ids.into_iter().collect();
    let mut found: HashMap<UserId, UserProfile> = HashMap::with_capacity(ids.len());
    let list: Vec<UserId> = ids.iter().copied().collect();
    for chunk in list.chunks(CHUNK) {
        let rows = user_profile::Entity::find()
            .filter(user_profile::Column::UserId.is_in(super::in_list(chunk.iter().copied())))
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(|row| (row.user_id, row.view())));
    }
    Ok(ids
        .into_iter()
        .map(|id| {
            found
                .remove(&id)
                .unwrap_or_else(|| UserProfile::unknown(id))
        })
        .collect())
}

/// Which of `ids` `viewer` may see: themselves and whoever shares a chat with them now.
pub async fn visible_to(
    db: &impl ConnectionTrait,
    viewer: UserId,
    ids: &[UserId],
) -> Result<Vec<UserId>, DbErr> {
    let others: Vec<UserId> = ids.iter().copied().filter(|id| *id != viewer).collect();
    let mut visible: BTreeSet<UserId> = ids.iter().copied().filter(|id| *id == viewer).collect();
    if others.is_empty() {
        return Ok(visible.into_iter().collect());
    }
    // The members among `others` of any chat `viewer` is a member of.
    let mine = Query::select()
        .column(chat_member::Column::ChatId)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::UserId).eq(viewer))
        .to_owned();
    let shared: Vec<UserId> = chat_member::Entity::find()
        .select_only()
        .column(chat_member::Column::UserId)
        .distinct()
        .filter(chat_member::Column::UserId.is_in(super::in_list(others)))
        .filter(chat_member::Column::ChatId.in_subquery(mine))
        .into_tuple()
        .all(db)
        .await?;
    visible.extend(shared);
    Ok(visible.into_iter().collect())
}

/// The chats `user_id` is a member of: whose members a change of theirs is told to.
pub async fn chats_of(db: &impl ConnectionTrait, user_id: UserId) -> Result<Vec<ChatId>, DbErr> {
    chat_member::Entity::find()
        .select_only()
        .column(chat_member::Column::ChatId)
        .filter(chat_member::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await
}
