//! A user of the directory: the name and avatar Django gave, and when it changed them.

use sea_orm::entity::prelude::*;

use crate::domain::UserProfile;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// Trimmed, 1 to 100 characters (`domain::rules::display_name`).
    pub display_name: String,
    /// An http(s) URL (`domain::rules::avatar_url`); null: no avatar.
    pub avatar_url: Option<String>,
    /// When Django changed the profile: an update older than this is ignored.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The profile as REST, frames and events show it.
    pub fn view(&self) -> UserProfile {
        UserProfile {
            user_id: self.user_id,
            display_name: self.display_name.clone(),
            avatar_url: self.avatar_url.clone(),
            updated_at: Some(self.updated_at),
        }
    }
}
