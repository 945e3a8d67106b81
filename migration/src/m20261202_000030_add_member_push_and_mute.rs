//! Each member's push watermark and mute: `push_notified_message_id` is the newest message a
//! `push_needed` has covered for the member (or that was passed over while they were muted),
//! `muted_until` the time until which the chat is muted for them (null: not muted).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000002_create_chat_members::ChatMembers;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .add_column(big_integer(PushAndMute::PushNotifiedMessageId).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .add_column(timestamp_with_time_zone_null(PushAndMute::MutedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [PushAndMute::MutedUntil, PushAndMute::PushNotifiedMessageId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ChatMembers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PushAndMute {
    PushNotifiedMessageId,
    MutedUntil,
}
