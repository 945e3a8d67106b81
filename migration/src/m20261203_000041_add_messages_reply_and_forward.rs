//! Replies and forwards: the message a reply answers, with a short quote of it (its author
//! and first characters, kept current by the persister: cleared when it is deleted, renewed
//! when it is edited), and the original a forward came from.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000003_create_messages::Messages;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            big_integer_null(ReplyColumns::ReplyToMessageId),
            big_integer_null(ReplyColumns::ReplyQuoteSenderId),
            text_null(ReplyColumns::ReplyQuoteText),
            big_integer_null(ReplyColumns::ForwardedFromChatId),
            big_integer_null(ReplyColumns::ForwardedFromMessageId),
            big_integer_null(ReplyColumns::ForwardedFromSenderId),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // The replies of a message, whose quotes change with it. Partial: the messages that are
        // no reply (nearly all) cost their insert no index entry.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_reply_to")
                    .table(Messages::Table)
                    .col(ReplyColumns::ReplyToMessageId)
                    .and_where(Expr::col(ReplyColumns::ReplyToMessageId).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_reply_to")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            ReplyColumns::ForwardedFromSenderId,
            ReplyColumns::ForwardedFromMessageId,
            ReplyColumns::ForwardedFromChatId,
            ReplyColumns::ReplyQuoteText,
            ReplyColumns::ReplyQuoteSenderId,
            ReplyColumns::ReplyToMessageId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ReplyColumns {
    ReplyToMessageId,
    ReplyQuoteSenderId,
    ReplyQuoteText,
    ForwardedFromChatId,
    ForwardedFromMessageId,
    ForwardedFromSenderId,
}
