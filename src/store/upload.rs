//! An upload: one row per user and content. Rows of different users with the same bytes share
//! one blob, whose storage key is the content's SHA-256.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "uploads")]
pub struct Model {
    /// The public file id (a UUID), as `/media/{id}` shows it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: i64,
    /// Lowercase hex SHA-256 of the content; also the entity tag.
    pub sha256: String,
    pub size: i64,
    /// The MIME type detected from the content (never the client's).
    pub content_type: String,
    /// `audio`, `video` or `image`.
    pub kind: String,
    /// The client's file name, sanitised; metadata only, never a path.
    pub filename: String,
    /// Where the blob lives in the storage backend.
    pub storage_key: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
