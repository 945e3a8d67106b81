//! The queries behind uploads and media access: find an upload, a user's usage, and whether a
//! user may fetch a file because a message in one of their chats carries it.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, Func, Query},
};

use super::{chat_member, message, upload};
use crate::domain::UserId;

/// An upload by its file id.
pub async fn upload(
    db: &impl ConnectionTrait,
    file_id: &str,
) -> Result<Option<upload::Model>, DbErr> {
    upload::Entity::find_by_id(file_id).one(db).await
}

/// `owner`'s earlier upload of the same content, if any.
pub async fn upload_by_hash(
    db: &impl ConnectionTrait,
    owner: UserId,
    sha256: &str,
) -> Result<Option<upload::Model>, DbErr> {
    upload::Entity::find()
        .filter(upload::Column::OwnerId.eq(owner))
        .filter(upload::Column::Sha256.eq(sha256))
        .one(db)
        .await
}

/// The bytes `owner` has uploaded, counted per upload row (shared blobs count for each user).
pub async fn uploaded_bytes(db: &impl ConnectionTrait, owner: UserId) -> Result<u64, DbErr> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back so both backends return an i64.
    let total = Func::cast_as(
        Func::coalesce([
            Expr::from(Func::sum(Expr::col(upload::Column::Size))),
            Expr::val(0),
        ]),
        Alias::new("BIGINT"),
    );
    let total: Option<i64> = upload::Entity::find()
        .select_only()
        .expr_as(total, "total")
        .filter(upload::Column::OwnerId.eq(owner))
        .into_tuple()
        .one(db)
        .await?;
    Ok(total.unwrap_or(0).max(0) as u64)
}

/// True when a live message carrying `file_id` is in a chat `user` belongs to.
pub async fn shared_with(
    db: &impl ConnectionTrait,
    file_id: &str,
    user: UserId,
) -> Result<bool, DbErr> {
    let my_chats = Query::select()
        .column(chat_member::Column::ChatId)
        .from(chat_member::Entity)
        .and_where(chat_member::Column::UserId.eq(user))
        .to_owned();
    let found: Option<i64> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::FileId.eq(file_id))
        .filter(message::Column::DeletedAt.is_null())
        .filter(message::Column::ChatId.in_subquery(my_chats))
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.is_some())
}
