//! Blocks: one row per (blocker, blocked) pair, written by the persister only (`set_block`).
//!
//! Read by primary key prefix (a blocker's list, and the batch's set of pairs between the
//! members of its private chats) and by `blocked_id` (who blocks a socket's user, so their
//! presence is hidden from it). The journal gets a partial index for the block rows a
//! blocker's catch-up reads: they belong to no chat.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserBlocks::Table)
                    .if_not_exists()
                    .col(big_integer(UserBlocks::BlockerId))
                    .col(big_integer(UserBlocks::BlockedId))
                    .col(timestamp_with_time_zone(UserBlocks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(UserBlocks::BlockerId)
                            .col(UserBlocks::BlockedId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_user_blocks_blocked")
                    .table(UserBlocks::Table)
                    .col(UserBlocks::BlockedId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changes_blocks")
                    .table(Changes::Table)
                    .col(Changes::UserId)
                    .col(Changes::Cursor)
                    .and_where(Expr::col(Changes::Kind).eq("block_changed"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_changes_blocks")
                    .table(Changes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(UserBlocks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum UserBlocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    UserId,
    Cursor,
    Kind,
}
