"""jetchat's NATS contract as Django uses it: subject and stream names, the connection, commands.

See docs/events.md in the jetchat repository for every subject and payload.
"""

import json
import re
import uuid
from dataclasses import dataclass

import nats
from django.conf import settings

#: The contract version this code was written for (the `v` field of every payload).
VERSION = 1


@dataclass(frozen=True)
class Subjects:
    """Subject and stream names under one prefix, built exactly as jetchat builds them."""

    prefix: str = "chat"

    @property
    def in_stream(self) -> str:
        """The command stream: ``CHAT_IN`` for the prefix ``chat``."""
        return f"{self._stem}_IN"

    @property
    def events_stream(self) -> str:
        """The event stream: ``CHAT_EVENTS`` for the prefix ``chat``."""
        return f"{self._stem}_EVENTS"

    @property
    def _stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9]", "_", self.prefix).upper()

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    def message(self, chat_id: int) -> str:
        return f"{self.prefix}.in.{chat_id}.message"

    def direct_message(self) -> str:
        return f"{self.prefix}.in.direct.message"

    def receipt(self, chat_id: int) -> str:
        return f"{self.prefix}.in.{chat_id}.receipt"

    def create_chat(self) -> str:
        return f"{self.prefix}.in.chats.create"

    def upsert_user(self) -> str:
        """A user's name and avatar for jetchat's user directory."""
        return f"{self.prefix}.in.users.upsert"

    def admin(self, chat_id: int, kind: str) -> str:
        """``add_members``, ``remove_members``, ``rename`` or ``delete_message``."""
        return f"{self.prefix}.in.{chat_id}.{kind}"

    def events_of_kind(self, kind: str) -> str:
        """One event type in every chat, e.g. ``chat.events.*.message_created``."""
        return f"{self.prefix}.events.*.{kind}"


def subjects() -> Subjects:
    return Subjects(settings.JETCHAT["SUBJECT_PREFIX"])


async def connect(name: str, url: str | None = None) -> nats.NATS:
    """Connects to jetchat's NATS with the settings' URL and inbox prefix."""
    return await nats.connect(
        url or settings.JETCHAT["NATS_URL"],
        name=name,
        inbox_prefix=settings.JETCHAT["INBOX_PREFIX"],
        connect_timeout=5,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
    )


def message_dedupe_id(sender_id: int, client_msg_id: str) -> str:
    """The ``Nats-Msg-Id`` of a message command, the same key jetchat's sockets use."""
    return f"msg:{sender_id}:{client_msg_id}"


@dataclass
class MessageCommand:
    """A ``send_message`` command, ready to publish."""

    subject: str
    payload: dict
    msg_id: str

    @property
    def client_msg_id(self) -> str:
        return self.payload["client_msg_id"]

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


def send_message(
    *,
    sender_id: int,
    content: str,
    chat_id: int | None = None,
    receiver_id: int | None = None,
    content_type: str = "text",
    file_url: str | None = None,
    client_msg_id: str | None = None,
) -> MessageCommand:
    """A message into ``chat_id``, or a private message to ``receiver_id``.

    Keep ``client_msg_id`` when you retry: the message is stored once however often it is sent.
    """
    if (chat_id is None) == (receiver_id is None):
        raise ValueError("give exactly one of chat_id and receiver_id")
    client_msg_id = client_msg_id or f"django-{uuid.uuid4()}"
    s = subjects()
    payload = {
        "type": "send_message",
        "v": VERSION,
        "sender_id": sender_id,
        "chat_id": chat_id,
        "receiver_id": receiver_id,
        "content": content,
        "content_type": content_type,
        "file_url": file_url,
        "client_msg_id": client_msg_id,
    }
    subject = s.message(chat_id) if chat_id is not None else s.direct_message()
    return MessageCommand(subject, payload, message_dedupe_id(sender_id, client_msg_id))


@dataclass
class Command:
    """Any other command, ready to publish."""

    subject: str
    payload: dict
    msg_id: str

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


def upsert_user(
    *,
    user_id: int,
    display_name: str,
    avatar_url: str | None,
    updated_at,
    reply_to: str | None = None,
) -> Command:
    """An ``upsert_user`` command: the newest ``updated_at`` (an aware datetime) wins."""
    stamp = updated_at.isoformat()
    command_id = f"user-{user_id}-{stamp}"
    payload = {
        "type": "upsert_user",
        "v": VERSION,
        "command_id": command_id,
        "user_id": user_id,
        "display_name": display_name,
        "avatar_url": avatar_url,
        "updated_at": stamp,
    }
    if reply_to:
        payload["reply_to"] = reply_to
    return Command(subjects().upsert_user(), payload, command_id)
