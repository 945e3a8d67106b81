//! A pinned message of a chat (`store::pins` reads a chat's).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pinned_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: i64,
    /// Who pinned it; null when Django did.
    pub pinned_by: Option<i64>,
    /// The `pin_message` command that pinned it: its repeat is announced again.
    pub command_id: String,
    pub pinned_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
