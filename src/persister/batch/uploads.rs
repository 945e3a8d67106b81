//! Uploads: the row `POST /upload` asks for, once per owner and content.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel};

use super::{BatchState, Pending, Step};
use crate::{
    bus::messages::{Event, Outcome, RegisterUpload, UploadRegistered, VERSION},
    store::{upload, uploads},
};

impl BatchState {
    /// Records an upload, unless its owner has the same bytes already (or this command was
    /// applied before): then the earlier upload's id is the answer.
    pub(super) async fn register_upload(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &RegisterUpload,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let earlier = match self.uploads.get(&cmd.file_id) {
            Some((owner, _)) if *owner == cmd.owner_id => Some(cmd.file_id.clone()),
            _ => uploads::upload_by_hash(db, cmd.owner_id, &cmd.sha256)
                .await?
                .map(|row| row.id),
        };
        let created = earlier.is_none();
        let file_id = match earlier {
            Some(id) => id,
            None => {
                let row = upload::Model {
                    id: cmd.file_id.clone(),
                    owner_id: cmd.owner_id,
                    sha256: cmd.sha256.clone(),
                    size: cmd.size,
                    content_type: cmd.content_type.clone(),
                    kind: cmd.kind.clone(),
                    filename: cmd.filename.clone(),
                    storage_key: cmd.storage_key.clone(),
                    // The time JetStream stored the command: a replay rebuilds the same row.
                    created_at: at,
                };
                upload::Entity::insert(row.into_active_model())
                    .exec_without_returning(db)
                    .await?;
                // Messages later in this batch may carry it.
                self.uploads
                    .insert(cmd.file_id.clone(), (cmd.owner_id, cmd.kind.clone()));
                cmd.file_id.clone()
            }
        };
        pending.push(Pending::Ready(Event::UploadRegistered(UploadRegistered {
            v: VERSION,
            command_id: cmd.command_id.clone(),
            file_id: file_id.clone(),
            owner_id: cmd.owner_id,
            sha256: cmd.sha256.clone(),
            size: cmd.size,
            content_type: cmd.content_type.clone(),
            kind: cmd.kind.clone(),
            created,
        })));
        if let Some(reply_to) = &cmd.reply_to {
            replies.push((
                reply_to.clone(),
                Outcome::UploadReady {
                    v: VERSION,
                    command_id: cmd.command_id.clone(),
                    file_id,
                    created,
                },
            ));
        }
        Ok(())
    }
}
