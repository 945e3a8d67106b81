//! Reactions: one row per user, message and emoji (a unique index, so a repeat is stored
//! once), read per message for history's counts.

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
                    .table(MessageReactions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessageReactions::Id))
                    .col(big_integer(MessageReactions::MessageId))
                    .col(big_integer(MessageReactions::UserId))
                    .col(string_len(MessageReactions::Emoji, 64))
                    .col(string_len(MessageReactions::CommandId, 128))
                    .col(timestamp_with_time_zone(MessageReactions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_reactions_message")
                            .from(MessageReactions::Table, MessageReactions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One of each emoji per user and message; also the index history's counts read
        // (by message_id, its first column).
        manager
            .create_index(
                Index::create()
                    .name("uq_message_reactions_message_user_emoji")
                    .table(MessageReactions::Table)
                    .col(MessageReactions::MessageId)
                    .col(MessageReactions::UserId)
                    .col(MessageReactions::Emoji)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageReactions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum MessageReactions {
    Table,
    Id,
    MessageId,
    UserId,
    Emoji,
    CommandId,
    CreatedAt,
}
