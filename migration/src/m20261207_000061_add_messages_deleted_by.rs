//! Who deleted a message (`deleted_by`): its author, or an admin or the owner of its group;
//! null for Django's moderation and for messages deleted before this was recorded. History
//! shows it on the tombstone. Written only by a deletion, never on the message path (the
//! column is not in the sea-orm model new messages are inserted from).

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
                    .add_column(big_integer_null(DeletedBy::DeletedBy))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(DeletedBy::DeletedBy)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum DeletedBy {
    DeletedBy,
}
