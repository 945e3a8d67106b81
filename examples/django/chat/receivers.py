"""What this project does with jetchat's events: receivers of jetchat_django's signals.

They run while ``manage.py jetchat_events`` runs, in a thread where the ORM may be used. Each
logs a line; a real project writes instead (e.g. ``Notification.objects.update_or_create``),
keyed on the event's ids or wrapped in ``jetchat_django.idempotency.once``, since an event can
come twice.
"""

import logging

from django.dispatch import receiver

from jetchat_django import signals

logger = logging.getLogger("chat.events")


@receiver(signals.message_created)
def message_created(sender, event, meta, **kwargs):
    m = event["message"]
    logger.info("message %s in chat %s from user %s: %r", m["message_id"], m["chat_id"],
                m["sender_id"], m["content"])


@receiver(signals.chat_created)
def chat_created(sender, event, meta, **kwargs):
    c = event["chat"]
    logger.info("chat %s created by user %s, members %s", c["chat_id"], c["created_by"],
                c["member_ids"])


@receiver(signals.push_needed)
def push_needed(sender, event, meta, **kwargs):
    # Look up the user's devices and notify them once per event (meta.event_id is
    # push:<chat>:<user>:<through>).
    logger.info("push for user %s: %s message(s) in chat %s", event["user_id"], event["count"],
                event["chat_id"])


@receiver(signals.command_rejected)
def command_rejected(sender, event, meta, **kwargs):
    logger.warning("%s %s rejected: %s: %s", event["command"], event["command_id"], event["code"],
                   event["detail"])
