//! What frame a stored change becomes and whose sockets get it: one answer for the live
//! router and for a catch-up, so a client that syncs sees exactly what it would have seen
//! online. A new message is rendered from its view (`router::LiveMessage`).

use axum::extract::ws::Utf8Bytes;

use super::protocol::ServerFrame;
use crate::{bus::messages::Event, domain::UserId, metrics::FrameOut};

/// Whose sockets in the chat get a change's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every member's.
    Members,
    /// Only this user's (a receipt goes to the author of the marked message).
    User(UserId),
}

impl Audience {
    pub fn includes(self, user: UserId) -> bool {
        match self {
            Audience::Members => true,
            Audience::User(only) => only == user,
        }
    }
}

/// The frame of a change other than a new message, and who gets it; `None` for events no
/// socket is told of (refusals, uploads, pushes) and for new messages.
pub fn frame(event: &Event) -> Option<(FrameOut, Utf8Bytes, Audience)> {
    let cursor = event.cursor();
    let (frame, audience) = match event {
        Event::Receipt(e) => (
            ServerFrame::StatusUpdate {
                message_id: e.message_id,
                chat_id: e.chat_id,
                user_id: e.user_id,
                status: e.status,
                cursor,
            },
            Audience::User(e.sender_id),
        ),
        Event::ChatCreated(e) => (
            ServerFrame::ChatCreated {
                chat: &e.chat,
                profiles: &e.profiles,
                cursor,
            },
            Audience::Members,
        ),
        Event::MemberAdded(e) => (
            ServerFrame::MemberAdded {
                chat_id: e.chat_id,
                user_id: e.user_id,
                added_by: e.added_by,
                chat: e.chat.as_ref(),
                profiles: &e.profiles,
                cursor,
            },
            Audience::Members,
        ),
        Event::MemberRemoved(e) => (
            ServerFrame::MemberRemoved {
                chat_id: e.chat_id,
                user_id: e.user_id,
                removed_by: e.removed_by,
                cursor,
            },
            Audience::Members,
        ),
        Event::MemberRoleChanged(e) => (
            ServerFrame::MemberRoleChanged {
                chat_id: e.chat_id,
                user_id: e.user_id,
                role: e.role,
                changed_by: e.changed_by,
                cursor,
            },
            Audience::Members,
        ),
        Event::ChatUpdated(e) => (
            ServerFrame::ChatUpdated {
                chat_id: e.chat_id,
                name: e.name.as_deref(),
                settings: e.settings,
                updated_by: e.updated_by,
                cursor,
            },
            Audience::Members,
        ),
        Event::ChatDeleted(e) => (
            ServerFrame::ChatDeleted {
                chat_id: e.chat_id,
                deleted_by: e.deleted_by,
                cursor,
            },
            Audience::Members,
        ),
        Event::ChatRenamed(e) => (
            ServerFrame::ChatRenamed {
                chat_id: e.chat_id,
                name: &e.name,
                cursor,
            },
            Audience::Members,
        ),
        Event::MessageDeleted(e) => (
            ServerFrame::MessageDeleted {
                chat_id: e.chat_id,
                message_id: e.message_id,
                deleted_by: e.deleted_by,
                cursor,
            },
            Audience::Members,
        ),
        Event::MessageEdited(e) => (
            ServerFrame::MessageEdited {
                chat_id: e.chat_id,
                message_id: e.message_id,
                sender_id: e.sender_id,
                content: &e.content,
                edited_at: e.edited_at,
                cursor,
            },
            Audience::Members,
        ),
        Event::ReactionAdded(e) => (
            ServerFrame::ReactionAdded {
                chat_id: e.chat_id,
                message_id: e.message_id,
                user_id: e.user_id,
                emoji: &e.emoji,
                cursor,
            },
            Audience::Members,
        ),
        Event::ReactionRemoved(e) => (
            ServerFrame::ReactionRemoved {
                chat_id: e.chat_id,
                message_id: e.message_id,
                user_id: e.user_id,
                emoji: &e.emoji,
                cursor,
            },
            Audience::Members,
        ),
        Event::ChatMuted(e) => (
            ServerFrame::ChatMuted {
                chat_id: e.chat_id,
                muted_until: e.muted_until,
                mentions_muted: e.mentions_muted,
                cursor,
            },
            Audience::User(e.user_id),
        ),
        Event::MessagePinned(e) => (
            ServerFrame::MessagePinned {
                chat_id: e.chat_id,
                message_id: e.message_id,
                by: e.by,
                cursor,
            },
            Audience::Members,
        ),
        Event::MessageUnpinned(e) => (
            ServerFrame::MessageUnpinned {
                chat_id: e.chat_id,
                message_id: e.message_id,
                by: e.by,
                cursor,
            },
            Audience::Members,
        ),
        Event::BlockChanged(e) => (
            ServerFrame::BlockChanged {
                user_id: e.blocked_id,
                blocked: e.blocked,
                cursor,
            },
            Audience::User(e.user_id),
        ),
        Event::MessageCreated(_)
        | Event::CommandRejected(_)
        | Event::UploadRegistered(_)
        | Event::PushNeeded(_)
        | Event::UserUpdated(_)
        | Event::UserErased(_) => {
            return None;
        }
    };
    Some((frame.kind(), frame.render(), audience))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bus::messages::{MemberRemoved, ReceiptEvent, VERSION},
        domain::ReceiptStatus,
    };

    #[test]
    fn a_receipt_goes_to_the_author_only_and_carries_its_cursor() {
        let event = Event::Receipt(ReceiptEvent {
            v: VERSION,
            cursor: Some(42),
            chat_id: 7,
            message_id: 9,
            user_id: 2,
            status: ReceiptStatus::Read,
            sender_id: 1,
        });
        let (kind, frame, audience) = frame(&event).expect("a receipt has a frame");
        assert_eq!(kind, FrameOut::StatusUpdate);
        assert_eq!(audience, Audience::User(1));
        assert!(audience.includes(1) && !audience.includes(2));
        let json: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(json["action"], "status_update");
        assert_eq!(json["cursor"], 42);
        assert_eq!(json["status"], "read");
    }

    #[test]
    fn group_changes_go_to_every_member_and_say_who() {
        use crate::{
            bus::messages::{ChatDeleted, MemberRoleChanged},
            domain::Role,
        };
        let role = Event::MemberRoleChanged(MemberRoleChanged {
            v: VERSION,
            cursor: Some(5),
            chat_id: 7,
            user_id: 2,
            role: Role::Owner,
            changed_by: None,
            command_id: "c".into(),
        });
        let (kind, rendered, audience) = frame(&role).unwrap();
        assert_eq!(
            (kind, audience),
            (FrameOut::MemberRoleChanged, Audience::Members)
        );
        let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action":"member_role_changed","chat_id":7,"user_id":2,"role":"owner","cursor":5})
        );
        let deleted = Event::ChatDeleted(ChatDeleted {
            v: VERSION,
            cursor: Some(6),
            chat_id: 7,
            member_ids: vec![1, 2],
            deleted_by: Some(1),
            command_id: "d".into(),
        });
        let (_, rendered, audience) = frame(&deleted).unwrap();
        assert_eq!(audience, Audience::Members);
        let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(json["deleted_by"], 1);
        assert!(
            json.get("member_ids").is_none(),
            "who was told stays on the bus"
        );
    }

    #[test]
    fn a_change_without_a_cursor_renders_without_one() {
        let event = Event::MemberRemoved(MemberRemoved {
            v: VERSION,
            cursor: None,
            chat_id: 7,
            user_id: 3,
            command_id: None,
            removed_by: None,
        });
        let (_, frame, audience) = frame(&event).unwrap();
        assert_eq!(audience, Audience::Members);
        let json: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(json["action"], "member_removed");
        assert!(json.get("cursor").is_none());
    }
}
