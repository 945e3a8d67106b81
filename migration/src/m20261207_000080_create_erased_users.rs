//! The erased users (`erase_user`): one row per user Django erased, the tombstone that keeps
//! an erased user's still-valid access token from creating anything again (a private chat, a
//! group, a membership) and lets a repeated erasure answer without a sweep. Read by primary
//! key only, off the message path.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ErasedUsers::Table)
                    .if_not_exists()
                    .col(big_integer(ErasedUsers::UserId).primary_key().not_null())
                    .col(timestamp_with_time_zone(ErasedUsers::ErasedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ErasedUsers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ErasedUsers {
    Table,
    UserId,
    ErasedAt,
}
