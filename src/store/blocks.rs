//! The queries behind blocks: a blocker's list, who blocks a user, and which of given pairs
//! are blocks (a batch's private messages), each in one statement.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use super::user_block;
use crate::domain::UserId;

/// Users per `IN (…)` list (well under SQLite's and PostgreSQL's parameter limits).
const CHUNK: usize = 500;

/// Pairs per `OR`: SQLite limits expression depth (1000 by default); a power of two, so a
/// padded chunk is no longer.
const PAIR_CHUNK: usize = 128;

/// The users `blocker` blocks, with when, oldest block first.
pub async fn blocked_by(
    db: &impl ConnectionTrait,
    blocker: UserId,
) -> Result<Vec<user_block::Model>, DbErr> {
    user_block::Entity::find()
        .filter(user_block::Column::BlockerId.eq(blocker))
        .order_by_asc(user_block::Column::CreatedAt)
        .order_by_asc(user_block::Column::BlockedId)
        .all(db)
        .await
}

/// The users who block `user`: whose presence `user` does not see.
pub async fn blockers_of(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<UserId>, DbErr> {
    user_block::Entity::find()
        .select_only()
        .column(user_block::Column::BlockerId)
        .filter(user_block::Column::BlockedId.eq(user))
        .into_tuple()
        .all(db)
        .await
}

/// Which of the `(blocker, blocked)` pairs hold: one `OR` of exact pairs per [`PAIR_CHUNK`]
/// (the primary key answers each with one probe), however many pairs a batch asks about.
pub async fn holding(
    db: &impl ConnectionTrait,
    pairs: &HashSet<(UserId, UserId)>,
) -> Result<HashSet<(UserId, UserId)>, DbErr> {
    let pairs: Vec<&(UserId, UserId)> = pairs.iter().collect();
    let mut found = HashSet::new();
    for chunk in pairs.chunks(PAIR_CHUNK) {
        // Padded like an `IN` list: a batch's pair count takes a few statement shapes, not
        // one per count.
        let any = super::in_list(chunk.iter().copied()).into_iter().fold(
            Condition::any(),
            |any, (blocker, blocked)| {
                any.add(
                    Condition::all()
                        .add(user_block::Column::BlockerId.eq(*blocker))
                        .add(user_block::Column::BlockedId.eq(*blocked)),
                )
            },
        );
        let rows: Vec<(UserId, UserId)> = user_block::Entity::find()
            .select_only()
            .columns([user_block::Column::BlockerId, user_block::Column::BlockedId])
            .filter(any)
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Those of `users` who block `blocked`, in id order.
pub async fn blockers_among(
    db: &impl ConnectionTrait,
    blocked: UserId,
    users: &[UserId],
) -> Result<Vec<UserId>, DbErr> {
    let mut found = Vec::new();
    for chunk in users.chunks(CHUNK) {
        let rows: Vec<UserId> = user_block::Entity::find()
            .select_only()
            .column(user_block::Column::BlockerId)
            .filter(user_block::Column::BlockedId.eq(blocked))
            .filter(user_block::Column::BlockerId.is_in(super::in_list(chunk.iter().copied())))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    found.sort_unstable();
    Ok(found)
}

/// Stores a block, or removes it; whether anything changed (a repeat changes nothing).
pub async fn set(
    db: &impl ConnectionTrait,
    blocker: UserId,
    blocked: UserId,
    block: bool,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let changed = if block {
        let row = user_block::ActiveModel {
            blocker_id: sea_orm::ActiveValue::Set(blocker),
            blocked_id: sea_orm::ActiveValue::Set(blocked),
            created_at: sea_orm::ActiveValue::Set(at),
        };
        user_block::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([user_block::Column::BlockerId, user_block::Column::BlockedId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?
    } else {
        user_block::Entity::delete_many()
            .filter(user_block::Column::BlockerId.eq(blocker))
            .filter(user_block::Column::BlockedId.eq(blocked))
            .exec(db)
            .await?
            .rows_affected
    };
    Ok(changed > 0)
}
