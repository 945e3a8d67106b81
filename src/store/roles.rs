//! Members' roles in their groups (`chat_members.role`). Read and written only by the group
//! commands and the chat listings, never on the message path: the column is not in
//! [`super::chat_member`]'s model, so the per-batch member read does not carry it.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DbErr, DeriveIden,
    sea_query::{Expr, ExprTrait, Order, Query},
};

use super::chat_member;
use crate::domain::{ChatId, Role, UserId};

/// `chat_members.role`.
#[derive(DeriveIden, Clone, Copy)]
enum Member {
    Role,
}

/// Who runs a group: its owner and its admins (every other member is a `member`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRoles {
    pub owner_id: Option<UserId>,
    /// Sorted.
    pub admin_ids: Vec<UserId>,
}

impl GroupRoles {
    /// `user_id`'s role, for a member.
    pub fn role_of(&self, user_id: UserId) -> Role {
        if self.owner_id == Some(user_id) {
            Role::Owner
        } else if self.admin_ids.binary_search(&user_id).is_ok() {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// A member's role; `None` for a user who is not a member.
pub async fn role_of(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    user_id: UserId,
) -> Result<Option<Role>, DbErr> {
    let select = Query::select()
        .column(Member::Role)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::ChatId).eq(chat_id))
        .and_where(Expr::col(chat_member::Column::UserId).eq(user_id))
        .to_owned();
    let Some(row) = db.query_one(&select).await? else {
        return Ok(None);
    };
    let name: String = row.try_get_by_index(0)?;
    Ok(Some(Role::parse(&name).unwrap_or(Role::Member)))
}

/// Sets a member's role.
pub async fn set(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
    user_id: UserId,
    role: Role,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(chat_member::Entity)
        .value(Member::Role, role.as_str())
        .and_where(Expr::col(chat_member::Column::ChatId).eq(chat_id))
        .and_where(Expr::col(chat_member::Column::UserId).eq(user_id))
        .to_owned();
    db.execute(&update).await.map(drop)
}

/// The owners and admins of `chat_ids` (the rows that are not plain members: few).
pub async fn of_chats(
    db: &impl ConnectionTrait,
    chat_ids: impl IntoIterator<Item = ChatId>,
) -> Result<HashMap<ChatId, GroupRoles>, DbErr> {
    let select = Query::select()
        .columns([chat_member::Column::ChatId, chat_member::Column::UserId])
        .column(Member::Role)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::ChatId).is_in(super::in_list(chat_ids)))
        .and_where(Expr::col(Member::Role).ne(Role::Member.as_str()))
        .order_by(chat_member::Column::UserId, Order::Asc)
        .to_owned();
    let mut roles: HashMap<ChatId, GroupRoles> = HashMap::new();
    for row in db.query_all(&select).await? {
        let chat_id: ChatId = row.try_get_by_index(0)?;
        let user_id: UserId = row.try_get_by_index(1)?;
        let role: String = row.try_get_by_index(2)?;
        let entry = roles.entry(chat_id).or_default();
        match Role::parse(&role) {
            Some(Role::Owner) => entry.owner_id = Some(user_id),
            Some(Role::Admin) => entry.admin_ids.push(user_id),
            _ => {}
        }
    }
    Ok(roles)
}

/// The roles of one group.
pub async fn of_chat(db: &impl ConnectionTrait, chat_id: ChatId) -> Result<GroupRoles, DbErr> {
    Ok(of_chats(db, [chat_id])
        .await?
        .remove(&chat_id)
        .unwrap_or_default())
}

/// Who takes a group over from an owner who left (their row gone): the longest-serving
/// admin, else the longest-serving member (earliest `joined_at`, then the lowest id); `None`
/// when nobody is left.
pub async fn successor(
    db: &impl ConnectionTrait,
    chat_id: ChatId,
) -> Result<Option<UserId>, DbErr> {
    let select = Query::select()
        .column(chat_member::Column::UserId)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::ChatId).eq(chat_id))
        .order_by_expr(
            Expr::case(Expr::col(Member::Role).eq(Role::Admin.as_str()), 0)
                .finally(1)
                .into(),
            Order::Asc,
        )
        .order_by(chat_member::Column::JoinedAt, Order::Asc)
        .order_by(chat_member::Column::UserId, Order::Asc)
        .limit(1)
        .to_owned();
    match db.query_one(&select).await? {
        Some(row) => Ok(Some(row.try_get_by_index(0)?)),
        None => Ok(None),
    }
}
