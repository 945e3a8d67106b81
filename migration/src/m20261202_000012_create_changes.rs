//! The change journal behind `sync`: one row per stored change a member's sockets are told
//! about (a message, a receipt, a membership change, a rename, a deletion), in commit order.
//!
//! `cursor` is assigned by the persister from `sync_state.last_cursor` at the end of each
//! batch's transaction, so cursors increase in the order batches commit — across every
//! instance — and a snapshot of the journal always holds a prefix of it. `event_key` (the
//! event's `Nats-Msg-Id`) keeps a re-emitted event (a redelivered or replayed command) from
//! taking a second row. A message row carries its id only: catch-up renders the message as
//! it is stored now (deleted, later edited), never from a copy.
//!
//! `chat_members.joined_cursor` bounds a member's catch-up in a chat to what happened since
//! they joined it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000002_create_chat_members::ChatMembers;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .if_not_exists()
                    .col(big_integer(Changes::Cursor).primary_key())
                    .col(big_integer(Changes::ChatId))
                    .col(string_len(Changes::Kind, 32))
                    .col(big_integer_null(Changes::UserId))
                    .col(big_integer_null(Changes::MessageId))
                    .col(text_null(Changes::Event))
                    .col(string_len_uniq(Changes::EventKey, 300))
                    .col(timestamp_with_time_zone(Changes::CommittedAt))
                    .to_owned(),
            )
            .await?;
        // A member's catch-up reads each of their chats from a cursor on.
        manager
            .create_index(
                Index::create()
                    .name("idx_changes_chat_cursor")
                    .table(Changes::Table)
                    .col(Changes::ChatId)
                    .col(Changes::Cursor)
                    .to_owned(),
            )
            .await?;
        // The chats a user left while away: their catch-up ends at the removal.
        manager
            .create_index(
                Index::create()
                    .name("idx_changes_removals")
                    .table(Changes::Table)
                    .col(Changes::UserId)
                    .col(Changes::Cursor)
                    .and_where(Expr::col(Changes::Kind).eq("member_removed"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SyncState::Table)
                    .if_not_exists()
                    .col(integer(SyncState::Id).primary_key())
                    .col(big_integer(SyncState::LastCursor).default(0))
                    .col(big_integer(SyncState::PrunedThrough).default(0))
                    .col(string_len(SyncState::Epoch, 64))
                    .to_owned(),
            )
            .await?;
        // One row; the epoch names this database's cursors (a rebuilt database gets another).
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(SyncState::Table)
                    .columns([SyncState::Id, SyncState::Epoch])
                    .values_panic([1.into(), epoch.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .add_column(big_integer(JoinedCursor::JoinedCursor).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .drop_column(JoinedCursor::JoinedCursor)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SyncState::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Changes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Changes {
    Table,
    Cursor,
    ChatId,
    Kind,
    UserId,
    MessageId,
    Event,
    EventKey,
    CommittedAt,
}

#[derive(DeriveIden)]
pub enum SyncState {
    Table,
    Id,
    LastCursor,
    PrunedThrough,
    Epoch,
}

#[derive(DeriveIden)]
pub enum JoinedCursor {
    JoinedCursor,
}
