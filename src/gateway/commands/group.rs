//! Group actions (`add_members`, `remove_member`, `leave_chat`, `set_member_role`,
//! `update_chat`, `delete_chat`): published to `CHAT_IN` with the user as the actor, for a
//! group the user is in (`not_a_member` otherwise); whether their role allows it is the
//! persister's to decide. Answered like every change: `command_applied` for a named request,
//! an `error` naming the `command_id` for a refusal.

use super::{
    super::{
        protocol::{FrameError, GroupChange, GroupRequest},
        socket_state::Socket,
    },
    change::command_id,
};
use crate::{
    bus::messages::{
        AddMembers, Command, DeleteChat, RemoveMembers, SetMemberRole, UpdateChat, VERSION,
    },
    domain::ErrorCode,
};

impl Socket {
    /// Publishes a group action as this user's.
    pub(in crate::gateway) async fn group(
        &mut self,
        request: GroupRequest,
    ) -> Result<(), FrameError> {
        let (command_id, named) = command_id(request.command_id);
        let (chat_id, actor_id) = (request.chat_id, Some(self.user_id));
        let reply_to = Some(self.reply_to());
        let id = command_id.clone();
        let command = match request.change {
            GroupChange::AddMembers { user_ids } => Command::AddMembers(AddMembers {
                v: VERSION,
                command_id: id,
                chat_id,
                user_ids,
                actor_id,
                reply_to,
            }),
            GroupChange::RemoveMember { user_id } => Command::RemoveMembers(RemoveMembers {
                v: VERSION,
                command_id: id,
                chat_id,
                user_ids: vec![user_id],
                actor_id,
                reply_to,
            }),
            GroupChange::Leave => Command::RemoveMembers(RemoveMembers {
                v: VERSION,
                command_id: id,
                chat_id,
                user_ids: vec![self.user_id],
                actor_id,
                reply_to,
            }),
            GroupChange::SetRole { user_id, role } => Command::SetMemberRole(SetMemberRole {
                v: VERSION,
                command_id: id,
                chat_id,
                user_id,
                role,
                actor_id,
                reply_to,
            }),
            GroupChange::Update { name, settings } => Command::UpdateChat(UpdateChat {
                v: VERSION,
                command_id: id,
                chat_id,
                name,
                settings,
                actor_id,
                reply_to,
            }),
            GroupChange::Delete => Command::DeleteChat(DeleteChat {
                v: VERSION,
                command_id: id,
                chat_id,
                actor_id,
                reply_to,
            }),
        };
        // Group actions name the vocabulary's `not_a_member` for a user outside the group.
        self.change(chat_id, &command, command_id, named)
            .await
            .map_err(|mut error| {
                if error.code == ErrorCode::Forbidden {
                    error.code = ErrorCode::NotAMember;
                }
                error
            })
    }
}
