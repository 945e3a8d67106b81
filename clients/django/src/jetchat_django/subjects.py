"""Subject and stream names under one prefix, built exactly as jetchat builds them.

The one place a subject name is spelled (docs/events.md, "Subjects" and "The subject prefix").
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Subjects:
    """The names for one ``SUBJECT_PREFIX`` (jetchat's ``NATS_SUBJECT_PREFIX``)."""

    prefix: str = "chat"

    @property
    def _stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9]", "_", self.prefix).upper()

    @property
    def in_stream(self) -> str:
        """The command stream: ``CHAT_IN`` for the prefix ``chat``."""
        return f"{self._stem}_IN"

    @property
    def events_stream(self) -> str:
        """The event stream: ``CHAT_EVENTS`` for the prefix ``chat``."""
        return f"{self._stem}_EVENTS"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    def events_of_type(self, event_type: str) -> str:
        """One event type in every chat, e.g. ``chat.events.*.message_created``."""
        return f"{self.prefix}.events.*.{event_type}"

    def message(self, chat_id: int) -> str:
        return f"{self.prefix}.in.{chat_id}.message"

    def direct_message(self) -> str:
        return f"{self.prefix}.in.direct.message"

    def create_chat(self) -> str:
        return f"{self.prefix}.in.chats.create"

    def upsert_user(self) -> str:
        return f"{self.prefix}.in.users.upsert"

    def erase_user(self) -> str:
        return f"{self.prefix}.in.users.erase"

    def set_block(self) -> str:
        return f"{self.prefix}.in.users.block"

    def chat_command(self, chat_id: int, verb: str) -> str:
        """``add_members``, ``remove_members``, ``rename``, ``update_chat``, ``set_member_role``,
        ``delete_chat``, ``delete_message``, ``edit_message``, ``react``, ``unreact``,
        ``pin_message``, ``receipt``, ``mute``."""
        return f"{self.prefix}.in.{chat_id}.{verb}"
