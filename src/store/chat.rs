//! A chat: private (exactly two members, one per pair) or a group.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: Option<String>,
    pub is_group: bool,
    /// `"<low id>:<high id>"` for a private chat.
    pub private_key: Option<String>,
    pub create_command_id: Option<String>,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
    /// A group's setting: plain members may add others (off by default).
    pub members_can_add: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::chat_member::Entity")]
    Members,
    #[sea_orm(has_many = "super::message::Entity")]
    Messages,
}

impl Related<super::chat_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Members.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The key that makes a private chat unique per pair of users.
pub fn private_key(a: i64, b: i64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}
