"""jetchat's events as Django signals, sent by ``manage.py jetchat_events``.

One signal per event type of docs/schemas/event.json, named like the type, sent with
``sender`` the type (a str), ``event`` the parsed payload (a ``schema.events`` TypedDict) and
``meta`` (an ``EventMeta``: subject, stream sequence, ``Nats-Msg-Id``, delivery count)::

    from django.dispatch import receiver
    from jetchat_django import signals

    @receiver(signals.message_created)
    def on_message(sender, event, meta, **kwargs):
        Notification.objects.update_or_create(message_id=event["message"]["message_id"], ...)

Sync receivers run in a thread where they may use the ORM; async receivers on the consumer's
loop. A receiver that raises leaves the event unacknowledged: it comes again later
(``RETRY_DELAYS``) and, on its ``PARK_AFTER``-th delivery, is parked (``event_parked``).
Events can come twice: ``jetchat_django.idempotency.once`` runs a receiver once per event.
"""

from dataclasses import dataclass

from django.dispatch import Signal

from .schema.events import EVENT_TYPES


@dataclass(frozen=True)
class EventMeta:
    """Where an event came from."""

    subject: str
    stream_seq: int
    #: The event's ``Nats-Msg-Id``: equal ids mean the same fact (docs/events.md).
    nats_msg_id: str | None
    #: 1 the first time; more after a failure or a crash.
    num_delivered: int

    @property
    def event_id(self) -> str:
        """What identifies the fact: its ``Nats-Msg-Id``, else its stream sequence."""
        return self.nats_msg_id or f"seq:{self.stream_seq}"


message_created = Signal()
receipt = Signal()
chat_created = Signal()
member_added = Signal()
member_removed = Signal()
chat_renamed = Signal()
message_deleted = Signal()
command_rejected = Signal()
upload_registered = Signal()
message_edited = Signal()
reaction_added = Signal()
reaction_removed = Signal()
chat_muted = Signal()
push_needed = Signal()
user_updated = Signal()
chat_updated = Signal()
member_role_changed = Signal()
chat_deleted = Signal()
block_changed = Signal()
message_pinned = Signal()
message_unpinned = Signal()
#: An ``erase_user`` is done (also sent for a repeat): ``event["user_id"]``.
user_erased = Signal()

#: Every event, known type or not, before its own signal (logging, metrics, a generic copy).
event_received = Signal()
#: An event given up on after ``PARK_AFTER`` failed deliveries: ``event`` (None when it was no
#: JSON), ``meta`` and ``error``. Receivers must not raise (they are sent robustly).
event_parked = Signal()

#: The signal of each event type.
BY_TYPE: dict[str, Signal] = {kind: globals()[kind] for kind in EVENT_TYPES}
