//! Edits: `messages.edited_at` (when the text last changed) and `message_revisions`, the text
//! each edit replaced, kept for moderation (staff read it over REST; members never do).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000003_create_messages::Messages;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(timestamp_with_time_zone_null(EditedAt::EditedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageRevisions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MessageRevisions::Id))
                    .col(big_integer(MessageRevisions::MessageId))
                    .col(big_integer(MessageRevisions::EditorId))
                    .col(text(MessageRevisions::Content))
                    .col(string_len(MessageRevisions::CommandId, 128))
                    .col(timestamp_with_time_zone(MessageRevisions::ReplacedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_revisions_message")
                            .from(MessageRevisions::Table, MessageRevisions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One revision per edit command: a redelivered edit finds its row and changes nothing.
        manager
            .create_index(
                Index::create()
                    .name("uq_message_revisions_message_command")
                    .table(MessageRevisions::Table)
                    .col(MessageRevisions::MessageId)
                    .col(MessageRevisions::CommandId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageRevisions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(EditedAt::EditedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EditedAt {
    EditedAt,
}

#[derive(DeriveIden)]
pub enum MessageRevisions {
    Table,
    Id,
    MessageId,
    EditorId,
    Content,
    CommandId,
    ReplacedAt,
}
