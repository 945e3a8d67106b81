//! Messages: one row per message (never a copy per member), idempotent per sender and
//! `client_msg_id`, with the `CHAT_IN` stream sequence it was persisted from.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_chats::Chats;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Messages::Id))
                    .col(big_integer(Messages::ChatId))
                    .col(big_integer(Messages::SenderId))
                    .col(text(Messages::Content))
                    .col(string_len(Messages::ContentType, 16))
                    .col(string_null(Messages::FileUrl))
                    .col(string_len(Messages::ClientMsgId, 64))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(big_integer(Messages::StreamSeq))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_chat")
                            .from(Messages::Table, Messages::ChatId)
                            .to(Chats::Table, Chats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A client's retry (same sender, same client_msg_id) can never become a second row.
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_sender_client_msg")
                    .table(Messages::Table)
                    .col(Messages::SenderId)
                    .col(Messages::ClientMsgId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // History pages: WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT n.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_chat_id")
                    .table(Messages::Table)
                    .col(Messages::ChatId)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Messages {
    Table,
    Id,
    ChatId,
    SenderId,
    Content,
    ContentType,
    FileUrl,
    ClientMsgId,
    CreatedAt,
    StreamSeq,
}
