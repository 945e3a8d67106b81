//! Database schema of jetchat, one migration per file, applied in order by `Migrator`.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_chats;
mod m20261124_000002_create_chat_members;
mod m20261124_000003_create_messages;
mod m20261124_000004_add_messages_deleted_at;
mod m20261124_000010_create_uploads;
mod m20261125_000011_partial_file_id_index;
mod m20261202_000012_create_changes;
mod m20261202_000013_create_message_revisions;
mod m20261202_000020_create_message_search;
mod m20261202_000030_add_member_push_and_mute;
mod m20261202_000031_index_messages_created_at;
mod m20261203_000040_create_message_reactions;
mod m20261203_000041_add_messages_reply_and_forward;
mod m20261207_000050_create_user_profiles;
mod m20261207_000060_add_member_roles;
mod m20261207_000061_add_messages_deleted_by;
mod m20261207_000070_create_user_blocks;
mod m20261207_000072_add_mentions;
mod m20261207_000073_create_pinned_messages;
mod m20261207_000080_create_erased_users;
mod m20261207_000081_index_messages_mentions;

pub use m20261202_000020_create_message_search::POSTGRES_SEARCH_VECTOR;

/// Applies jetchat's migrations; `jetchat migrate` and `jetchat serve` both run it.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_chats::Migration),
            Box::new(m20261124_000002_create_chat_members::Migration),
            Box::new(m20261124_000003_create_messages::Migration),
            Box::new(m20261124_000004_add_messages_deleted_at::Migration),
            Box::new(m20261124_000010_create_uploads::Migration),
            Box::new(m20261125_000011_partial_file_id_index::Migration),
            Box::new(m20261202_000012_create_changes::Migration),
            Box::new(m20261202_000013_create_message_revisions::Migration),
            Box::new(m20261202_000020_create_message_search::Migration),
            Box::new(m20261202_000030_add_member_push_and_mute::Migration),
            Box::new(m20261202_000031_index_messages_created_at::Migration),
            Box::new(m20261203_000040_create_message_reactions::Migration),
            Box::new(m20261203_000041_add_messages_reply_and_forward::Migration),
            Box::new(m20261207_000050_create_user_profiles::Migration),
            Box::new(m20261207_000060_add_member_roles::Migration),
            Box::new(m20261207_000061_add_messages_deleted_by::Migration),
            Box::new(m20261207_000070_create_user_blocks::Migration),
            Box::new(m20261207_000072_add_mentions::Migration),
            Box::new(m20261207_000073_create_pinned_messages::Migration),
            Box::new(m20261207_000080_create_erased_users::Migration),
            Box::new(m20261207_000081_index_messages_mentions::Migration),
        ]
    }
}
