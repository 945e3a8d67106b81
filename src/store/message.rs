//! A message: one row per message, whatever the size of the chat.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chat_id: i64,
    pub sender_id: i64,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub content_type: String,
    pub file_url: Option<String>,
    /// The upload the message carries (`uploads.id`), checked to be the sender's; the members
    /// of the chat may fetch it.
    pub file_id: Option<String>,
    pub client_msg_id: String,
    pub created_at: DateTimeUtc,
    /// The `CHAT_IN` sequence of the command it was persisted from.
    pub stream_seq: i64,
    /// Set when the message was deleted; its content is erased then.
    pub deleted_at: Option<DateTimeUtc>,
    /// When the author last changed the text (`edit_message`); `None` for an unedited one.
    pub edited_at: Option<DateTimeUtc>,
    /// The message of the same chat this one answers.
    pub reply_to_message_id: Option<i64>,
    /// The answered message's author, while it is not deleted.
    pub reply_quote_sender_id: Option<i64>,
    /// The answered message's first characters (`REPLY_QUOTE_CHARS`), while it is not
    /// deleted; renewed when it is edited.
    #[sea_orm(column_type = "Text", nullable)]
    pub reply_quote_text: Option<String>,
    /// A forward's original: its chat, id and author.
    pub forwarded_from_chat_id: Option<i64>,
    pub forwarded_from_message_id: Option<i64>,
    pub forwarded_from_sender_id: Option<i64>,
    /// The members the message mentions (`domain::stored_mentions`: ascending ids,
    /// comma-separated); null for none.
    #[sea_orm(column_type = "Text", nullable)]
    pub mentions: Option<String>,
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

/// `messages.deleted_by`: who deleted a message (its author, or an admin or the owner of its
/// group; null for Django's moderation). Not in [`Model`]: new messages are inserted from the
/// model on the message path, which this column must not cost anything; only a deletion
/// writes it and only history's tombstones read it.
#[derive(DeriveIden, Clone, Copy)]
pub enum DeletedBy {
    DeletedBy,
}
