//! `idx_messages_mentions`: a member's unread mentions per chat (`GET /chats/`'s
//! `unread_mentions`) read the chat's messages that mention someone, not every unread message
//! of it. Partial: a message without mentions (nearly all) costs its insert no index entry.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_messages_mentions";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Messages::Table)
                    .col(Messages::ChatId)
                    .col(Messages::Id)
                    .and_where(Expr::col(Messages::Mentions).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Messages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ChatId,
    Id,
    Mentions,
}
