//! Chats: private (two members, unique per pair through `private_key`) or group.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Chats::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Chats::Id))
                    .col(string_null(Chats::Name))
                    .col(boolean(Chats::IsGroup))
                    // "<low user id>:<high user id>" for private chats, NULL for groups.
                    .col(string_null(Chats::PrivateKey).unique_key())
                    // The id of the command that created a group, so a redelivery cannot
                    // create it twice.
                    .col(string_null(Chats::CreateCommandId).unique_key())
                    .col(big_integer(Chats::CreatedBy))
                    .col(timestamp_with_time_zone(Chats::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Chats::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Chats {
    Table,
    Id,
    Name,
    IsGroup,
    PrivateKey,
    CreateCommandId,
    CreatedBy,
    CreatedAt,
}
