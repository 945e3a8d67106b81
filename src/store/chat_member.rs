//! Membership of a user in a chat, with the member's delivered, read and push watermarks and
//! their mute.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub joined_at: DateTimeUtc,
    /// Every message up to this id has reached one of the member's devices.
    pub last_delivered_message_id: i64,
    /// Every message up to this id has been read by the member.
    pub last_read_message_id: i64,
    /// The newest message a `push_needed` covered for the member, or that was passed over
    /// while they had the chat muted: a message at or below it is never pushed (again).
    pub push_notified_message_id: i64,
    /// No push while this is in the future (null: not muted).
    pub muted_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::chat::Entity",
        from = "Column::ChatId",
        to = "super::chat::Column::Id",
        on_delete = "Cascade"
    )]
    Chat,
}

impl Related<super::chat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chat.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// `chat_members.mentions_muted`: a member who muted the chat muted its mentions too (no
/// `push_needed` for a message that mentions them while muted). Not in [`Model`], which every
/// batch reads for its chats' members: only a mute writes it, and only a due push and
/// `GET /chats/` read it.
#[derive(DeriveIden, Clone, Copy)]
pub enum MentionsMuted {
    MentionsMuted,
}

/// The column [`MentionsMuted`] names.
pub const MENTIONS_MUTED: MentionsMuted = MentionsMuted::MentionsMuted;
