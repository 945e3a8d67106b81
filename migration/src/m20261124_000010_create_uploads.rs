//! Uploaded files: one row per user and content, pointing at a blob stored once per SHA-256;
//! and `messages.file_id`, the upload a message carries, which lets the members of its chat
//! fetch the file.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000003_create_messages::Messages;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Uploads::Table)
                    .if_not_exists()
                    .col(string_len(Uploads::Id, 36).primary_key())
                    .col(big_integer(Uploads::OwnerId))
                    .col(string_len(Uploads::Sha256, 64))
                    .col(big_integer(Uploads::Size))
                    .col(string_len(Uploads::ContentType, 64))
                    .col(string_len(Uploads::Kind, 8))
                    .col(string_len(Uploads::Filename, 255))
                    .col(string_len(Uploads::StorageKey, 128))
                    .col(timestamp_with_time_zone(Uploads::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // The same user uploading the same bytes again gets the same file back (and is not
        // charged twice against the quota); the quota sums a user's rows through this index.
        manager
            .create_index(
                Index::create()
                    .name("uq_uploads_owner_sha256")
                    .table(Uploads::Table)
                    .col(Uploads::OwnerId)
                    .col(Uploads::Sha256)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Several users' rows may share a blob; a future clean-up finds them by hash.
        manager
            .create_index(
                Index::create()
                    .name("idx_uploads_sha256")
                    .table(Uploads::Table)
                    .col(Uploads::Sha256)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(string_len_null(FileId::FileId, 36))
                    .to_owned(),
            )
            .await?;
        // "May this user fetch this file": messages WHERE file_id = ? joined to memberships.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_file_id")
                    .table(Messages::Table)
                    .col(FileId::FileId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_file_id")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(FileId::FileId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Uploads::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Uploads {
    Table,
    Id,
    OwnerId,
    Sha256,
    Size,
    ContentType,
    Kind,
    Filename,
    StorageKey,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum FileId {
    FileId,
}
