//! Pins: one row per pinned message, by its chat's admins (in a private chat, either member)
//! or Django. Keyed by `(chat_id, message_id)`, which is also how a chat's pins are read
//! (`GET /chats/{id}`); gone with the message (a group's deletion deletes its messages).

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
                    .table(PinnedMessages::Table)
                    .if_not_exists()
                    .col(big_integer(PinnedMessages::ChatId))
                    .col(big_integer(PinnedMessages::MessageId))
                    .col(big_integer_null(PinnedMessages::PinnedBy))
                    .col(string_len(PinnedMessages::CommandId, 128))
                    .col(timestamp_with_time_zone(PinnedMessages::PinnedAt))
                    .primary_key(
                        Index::create()
                            .col(PinnedMessages::ChatId)
                            .col(PinnedMessages::MessageId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pinned_messages_message")
                            .from(PinnedMessages::Table, PinnedMessages::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PinnedMessages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum PinnedMessages {
    Table,
    ChatId,
    MessageId,
    PinnedBy,
    CommandId,
    PinnedAt,
}
