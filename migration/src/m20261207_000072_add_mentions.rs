//! Mentions: `messages.mentions`, the members a message names (their ids, comma-separated,
//! ascending; null for none), and `chat_members.mentions_muted`, whether a member who muted a
//! chat muted its mentions too. Unread mentions are counted by `idx_messages_mentions`
//! (migration 000081); the push scanner reads the column of its window's messages only.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(text_null(Messages::Mentions))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .add_column(boolean(ChatMembers::MentionsMuted).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .drop_column(ChatMembers::MentionsMuted)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::Mentions)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Mentions,
}

#[derive(DeriveIden)]
enum ChatMembers {
    Table,
    MentionsMuted,
}
