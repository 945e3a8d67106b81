//! The user directory: Django's names and avatars (`upsert_user`), the newest one kept.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel, sea_query::OnConflict};

use super::{BatchState, Pending, Step, applied};
use crate::{
    bus::messages::{Event, Outcome, UpsertUser, UserUpdated, VERSION},
    domain::rules::display_name,
    store::{user_profile, users},
};

impl BatchState {
    /// Stores a user's name and avatar unless the directory has a newer (or the same) one, and
    /// tells the members of the user's chats when something changed. An older or identical
    /// update is applied as a no-op: it is no error of the sender's.
    pub(super) async fn upsert_user(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &UpsertUser,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        // Checked by the rules already: trimmed here as it is stored.
        let name = display_name(&cmd.display_name)?.to_owned();
        let row = user_profile::Model {
            user_id: cmd.user_id,
            display_name: name,
            avatar_url: cmd.avatar_url.clone(),
            updated_at: cmd.updated_at.unwrap_or(at),
        };
        let stored = users::profile(db, cmd.user_id).await?;
        let changes = match &stored {
            None => true,
            Some(old) if old.updated_at > row.updated_at => false,
            Some(old) => old.display_name != row.display_name || old.avatar_url != row.avatar_url,
        };
        if changes {
            user_profile::Entity::insert(row.clone().into_active_model())
                .on_conflict(
                    OnConflict::column(user_profile::Column::UserId)
                        .update_columns([
                            user_profile::Column::DisplayName,
                            user_profile::Column::AvatarUrl,
                            user_profile::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
            let chat_ids = users::chats_of(db, cmd.user_id).await?;
            pending.push(Pending::Ready(Event::UserUpdated(UserUpdated {
                v: VERSION,
                command_id: cmd.command_id.clone(),
                user: row.view(),
                chat_ids,
            })));
        } else if let Some(old) = stored.filter(|old| old.updated_at < row.updated_at) {
            // The same name and avatar, said later: remember when, so an update made between
            // the two (and arriving late) stays ignored.
            let mut newer = old.into_active_model();
            newer.updated_at = sea_orm::ActiveValue::Set(row.updated_at);
            user_profile::Entity::update(newer).exec(db).await?;
        }
        applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }
}
