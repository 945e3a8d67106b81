//! Groups their members run: each member's `role` (`owner`, `admin`, `member`) and a group's
//! `members_can_add` setting (off). Existing groups get an owner: their creator when still a
//! member, else the longest-serving member (earliest `joined_at`, then lowest id). Private
//! chats keep `member` for both: their members are equal.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261124_000001_create_chats::Chats, m20261124_000002_create_chat_members::ChatMembers,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The creator of each group, when still a member, becomes its owner.
const CREATORS_OWN: &str = "UPDATE chat_members SET role = 'owner' \
    WHERE EXISTS (SELECT 1 FROM chats c WHERE c.id = chat_members.chat_id \
    AND c.is_group = TRUE AND c.created_by = chat_members.user_id)";

/// A group whose creator left: its longest-serving member.
const ELDEST_OWNS: &str = "UPDATE chat_members SET role = 'owner' \
    WHERE EXISTS (SELECT 1 FROM chats c WHERE c.id = chat_members.chat_id AND c.is_group = TRUE) \
    AND NOT EXISTS (SELECT 1 FROM chat_members o WHERE o.chat_id = chat_members.chat_id \
    AND o.role = 'owner') \
    AND chat_members.user_id = (SELECT m.user_id FROM chat_members m \
    WHERE m.chat_id = chat_members.chat_id ORDER BY m.joined_at, m.user_id LIMIT 1)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .add_column(string_len(Roles::Role, 16).default("member"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Chats::Table)
                    .add_column(boolean(Roles::MembersCanAdd).default(false))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(CREATORS_OWN).await?;
        db.execute_unprepared(ELDEST_OWNS).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Chats::Table)
                    .drop_column(Roles::MembersCanAdd)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMembers::Table)
                    .drop_column(Roles::Role)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Roles {
    Role,
    MembersCanAdd,
}
