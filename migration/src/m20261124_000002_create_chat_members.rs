//! Chat membership with each member's delivered and read watermarks.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_chats::Chats;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChatMembers::Table)
                    .if_not_exists()
                    .col(big_integer(ChatMembers::ChatId))
                    .col(big_integer(ChatMembers::UserId))
                    .col(timestamp_with_time_zone(ChatMembers::JoinedAt))
                    .col(big_integer(ChatMembers::LastDeliveredMessageId).default(0))
                    .col(big_integer(ChatMembers::LastReadMessageId).default(0))
                    .primary_key(
                        Index::create()
                            .col(ChatMembers::ChatId)
                            .col(ChatMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chat_members_chat")
                            .from(ChatMembers::Table, ChatMembers::ChatId)
                            .to(Chats::Table, Chats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "my chats" is looked up by user.
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_members_user")
                    .table(ChatMembers::Table)
                    .col(ChatMembers::UserId)
                    .col(ChatMembers::ChatId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChatMembers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ChatMembers {
    Table,
    ChatId,
    UserId,
    JoinedAt,
    LastDeliveredMessageId,
    LastReadMessageId,
}
