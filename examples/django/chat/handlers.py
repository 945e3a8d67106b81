"""What Django does with each jetchat event. Replace the bodies with your own logic.

Handlers run in a worker thread (through ``sync_to_async``), so they may use the ORM. They must be
idempotent: an event can arrive more than once (a redelivery after a crash, or jetchat
re-announcing a message after a retry), so key what you write on ``message.message_id``,
``chat.chat_id`` or the event's ``Nats-Msg-Id`` — for example with ``update_or_create``.
"""

from dataclasses import dataclass

from .bus import VERSION


@dataclass
class Meta:
    """Where an event came from."""

    subject: str
    stream_seq: int
    nats_msg_id: str | None
    num_delivered: int


def handle(event: dict, meta: Meta) -> str:
    """Handles one event and returns a line describing it."""
    kind = event.get("type")
    if event.get("v") != VERSION:
        # A new `v` is a breaking change this code was not written for: upgrade the handler.
        return f"skipped {kind}: contract version {event.get('v')} (this code knows {VERSION})"
    handler = HANDLERS.get(kind)
    if handler is None:
        # New event types may appear within a version; ignoring them is the contract.
        return f"ignored unknown event type {kind!r}"
    return handler(event)


def message_created(e: dict) -> str:
    m = e["message"]
    # e.g. Notification.objects.update_or_create(message_id=m["message_id"], defaults=...)
    return (
        f"message {m['message_id']} in chat {m['chat_id']} from user {m['sender_id']}: "
        f"{m['content']!r} (client_msg_id {m['client_msg_id']})"
    )


def receipt(e: dict) -> str:
    return (
        f"user {e['user_id']} marked message {e['message_id']} in chat {e['chat_id']} "
        f"{e['status']}"
    )


def chat_created(e: dict) -> str:
    c = e["chat"]
    kind = f"group {c['name']!r}" if c["is_group"] else "private chat"
    return (
        f"{kind} {c['chat_id']} created by user {c['created_by']}, members {c['member_ids']}"
        f" (command {e['command_id']})"
    )


def member_added(e: dict) -> str:
    return f"user {e['user_id']} joined chat {e['chat_id']} (command {e['command_id']})"


def member_removed(e: dict) -> str:
    return f"user {e['user_id']} left chat {e['chat_id']} (command {e['command_id']})"


def chat_renamed(e: dict) -> str:
    return f"chat {e['chat_id']} renamed {e['name']!r} (command {e['command_id']})"


def chat_updated(e: dict) -> str:
    # Follows chat_renamed for a new name; carries the settings (members_can_add) too.
    by = f" by user {e['updated_by']}" if e.get("updated_by") else ""
    return f"chat {e['chat_id']} now {e['name']!r}, settings {e['settings']}{by} (command {e['command_id']})"


def member_role_changed(e: dict) -> str:
    by = f" by user {e['changed_by']}" if e.get("changed_by") else ""
    return f"user {e['user_id']} is {e['role']} of chat {e['chat_id']}{by} (command {e['command_id']})"


def chat_deleted(e: dict) -> str:
    # The group and its history are gone in jetchat: drop your copies too.
    return f"chat {e['chat_id']} deleted with its history, members {e['member_ids']} (command {e['command_id']})"


def message_deleted(e: dict) -> str:
    return f"message {e['message_id']} in chat {e['chat_id']} deleted (command {e['command_id']})"


def message_edited(e: dict) -> str:
    # Replace your copy's text; the previous one is in jetchat's revisions (staff only).
    return f"message {e['message_id']} in chat {e['chat_id']} edited: {e['content']!r}"


def reaction_added(e: dict) -> str:
    return f"user {e['user_id']} reacted {e['emoji']} to message {e['message_id']} in chat {e['chat_id']}"


def reaction_removed(e: dict) -> str:
    return f"user {e['user_id']} took back {e['emoji']} on message {e['message_id']} in chat {e['chat_id']}"


def push_needed(e: dict) -> str:
    """Messages reached none of the member's sockets within PUSH_AFTER: notify their devices.

    Sent once per member and message (jetchat's push watermark), never for a muted chat. In a
    real project, look up the member's device tokens and send one notification per event —
    FCM for Android and the web, APNs for iOS — keyed on the event's ``Nats-Msg-Id``
    (``push:<chat>:<user>:<through>``) so a redelivered event does not notify twice::

        for device in Device.objects.filter(user_id=e["user_id"], active=True):
            send_fcm_or_apns(
                device,
                title=chat_title(e["chat_id"], e["user_id"]),
                body=preview(e["message_ids"][-1]) if e["count"] == 1 else f"{e['count']} new messages",
                collapse_key=f"chat-{e['chat_id']}",  # FCM collapse_key / APNs apns-collapse-id
                data={"chat_id": e["chat_id"], "message_id": e["through_message_id"]},
            )

    ``message_ids`` holds the newest 20 of the ``count`` messages (oldest first); read their
    text from your copy of ``message_created`` or from jetchat's history if the notification
    shows it.
    """
    return (
        f"push for user {e['user_id']}: {e['count']} message(s) in chat {e['chat_id']} "
        f"(first {e['first_message_id']}, through {e['through_message_id']}, ids {e['message_ids']})"
    )


def chat_muted(e: dict) -> str:
    until = e["muted_until"] or "not muted"
    return f"user {e['user_id']} muted chat {e['chat_id']} until {until} (command {e['command_id']})"


def command_rejected(e: dict) -> str:
    return f"{e['command']} {e['command_id']} rejected: {e['code']}: {e['detail']}"


HANDLERS = {
    "message_created": message_created,
    "receipt": receipt,
    "chat_created": chat_created,
    "member_added": member_added,
    "member_removed": member_removed,
    "chat_renamed": chat_renamed,
    "chat_updated": chat_updated,
    "member_role_changed": member_role_changed,
    "chat_deleted": chat_deleted,
    "message_deleted": message_deleted,
    "message_edited": message_edited,
    "reaction_added": reaction_added,
    "reaction_removed": reaction_removed,
    "command_rejected": command_rejected,
    "push_needed": push_needed,
    "chat_muted": chat_muted,
}
