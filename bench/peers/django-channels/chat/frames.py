"""The server → client frames of jetchat's protocol (docs/protocol.md) that the peer sends,
and the names of the channel-layer groups: pure functions, unit-tested in tests.py."""

import json


def chat_group(chat_id):
    """Every socket of every member of a chat."""
    return f"chat.{chat_id}"


def user_group(user_id):
    """Every socket of one user."""
    return f"user.{user_id}"


def timestamp(moment):
    """RFC 3339 with microseconds and an offset, like jetchat's."""
    return moment.isoformat(timespec="microseconds")


def encode(frame):
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def message_accepted(client_msg_id, chat_id):
    return {"action": "message_accepted", "client_msg_id": client_msg_id, "chat_id": chat_id}


def message_ack(message):
    return {
        "action": "message_ack",
        "client_msg_id": message.client_msg_id,
        "message_id": message.id,
        "chat_id": message.chat_id,
        "timestamp": timestamp(message.created_at),
    }


def new_message(message, receiver_id):
    """`receiver_id` is the other member of a private chat, None in a group."""
    return {
        "action": "new_message",
        "message_id": message.id,
        "chat_id": message.chat_id,
        "sender_id": message.sender_id,
        "receiver_id": receiver_id,
        "content": message.content,
        "content_type": message.content_type,
        "file_url": message.file_url,
        "client_msg_id": message.client_msg_id,
        "timestamp": timestamp(message.created_at),
        "status": "sent",
    }


def status_update(message_id, chat_id, user_id, status):
    return {
        "action": "status_update",
        "message_id": message_id,
        "chat_id": chat_id,
        "user_id": user_id,
        "status": status,
    }


def chat_created(chat, member_ids):
    return {
        "action": "chat_created",
        "chat": {
            "chat_id": chat.id,
            "name": chat.name,
            "is_group": chat.is_group,
            "created_by": chat.created_by,
            "created_at": timestamp(chat.created_at),
            "member_ids": member_ids,
        },
    }


def error(code, detail, client_msg_id=None):
    frame = {"action": "error", "code": code, "detail": detail, "error": detail}
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return frame
