//! A message revision: the text an edit replaced, kept for moderation (staff only).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_revisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub message_id: i64,
    /// Who edited (the author: only they may).
    pub editor_id: i64,
    /// The text before the edit.
    #[sea_orm(column_type = "Text")]
    pub content: String,
    /// The `edit_message` command that replaced it: one revision per command.
    pub command_id: String,
    /// When the edit replaced it (the command's time in `CHAT_IN`).
    pub replaced_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
