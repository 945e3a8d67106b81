//! `idx_messages_created_at`: the push scanner reads the messages that became due for a push
//! since its last round (`created_at` in a window, docs/operations.md "Push notifications").
//! `created_at` is the time JetStream stored the command, so inserts append to the index's
//! right edge: about one leaf page per batch.

use sea_orm_migration::prelude::*;

use crate::m20261124_000003_create_messages::Messages;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_messages_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Messages::Table)
                    .col(Messages::CreatedAt)
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
