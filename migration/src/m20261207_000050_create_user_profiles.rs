//! The user directory: one row per user Django named (access-token claims or `upsert_user`),
//! written by the persister only. Read by primary key (the directory's lookups and the
//! "differs?" check of a socket's claims); no other index.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserProfiles::Table)
                    .if_not_exists()
                    .col(big_integer(UserProfiles::UserId).primary_key().not_null())
                    .col(string_len(UserProfiles::DisplayName, 100))
                    .col(text_null(UserProfiles::AvatarUrl))
                    .col(timestamp_with_time_zone(UserProfiles::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserProfiles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum UserProfiles {
    Table,
    UserId,
    DisplayName,
    AvatarUrl,
    UpdatedAt,
}
