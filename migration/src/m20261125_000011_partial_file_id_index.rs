//! The `file_id` index covers only the messages that carry a file (`idx_messages_with_file`
//! replaces `idx_messages_file_id`): most messages carry none, and every insert into the full
//! index was a B-tree write the persister paid for nothing.
//! `file_id = ?` (the media access check) implies `file_id IS NOT NULL`, so SQLite and
//! PostgreSQL both still use it.

use sea_orm_migration::prelude::*;

use crate::{m20261124_000003_create_messages::Messages, m20261124_000010_create_uploads::FileId};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The index on every message.
const FULL: &str = "idx_messages_file_id";
/// The index on the messages with a file.
const PARTIAL: &str = "idx_messages_with_file";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, FULL).await?;
        manager
            .create_index(
                Index::create()
                    .name(PARTIAL)
                    .table(Messages::Table)
                    .col(FileId::FileId)
                    .and_where(Expr::col(FileId::FileId).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, PARTIAL).await?;
        manager
            .create_index(
                Index::create()
                    .name(FULL)
                    .table(Messages::Table)
                    .col(FileId::FileId)
                    .to_owned(),
            )
            .await
    }
}

async fn drop_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(Messages::Table).to_owned())
        .await
}
