//! A reaction: one user's emoji on one message (unique per user, message and emoji).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_reactions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub message_id: i64,
    pub user_id: i64,
    /// One grapheme cluster (see `persister::batch::rules::emoji`).
    pub emoji: String,
    /// The `react` command that added it: its repeat is announced again, another one's is not.
    pub command_id: String,
    /// When it was added (the command's time in `CHAT_IN`).
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
