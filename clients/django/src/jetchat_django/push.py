"""Push notifications for ``push_needed`` through django-push-notifications, when installed.

jetchat decides *when* a member needs a notification (none of their sockets got a message
within its ``PUSH_AFTER``; never for a muted chat) and says so once per member and message
with ``push_needed``. This receiver sends one notification per event to each of the member's
active devices registered with django-push-notifications (``push_notifications`` in
``INSTALLED_APPS``; connected by ``apps.JetchatConfig.ready`` unless ``PUSH["ENABLED"]`` is
False): Web Push, FCM and APNs devices. It runs once per event (``idempotency.once``), so a
redelivered event notifies no one twice; a send that raises leaves the event to be retried,
then parked, like any receiver's failure (devices already notified in the failed attempt may
be notified again).

``push_needed`` carries ids, not text: the default notification says how many messages came
("1 new message"), with the chat and message ids as data for the app to open the chat.
``PUSH["NOTIFICATION"]`` names a function ``(event) -> {"title", "body"}`` to show more (the
text from your copy of ``message_created``, the chat's name), or less.
"""

import json
import logging

from django.utils.module_loading import import_string

from .conf import jetchat_settings
from .idempotency import once

logger = logging.getLogger("jetchat_django.push")


def default_notification(event) -> dict:
    """Says how many messages came; no text (the event has none)."""
    count = event["count"]
    return {"title": "New message" if count == 1 else f"{count} new messages",
            "body": "Open the chat to read it." if count == 1 else "Open the chat to read them."}


def notification(event) -> dict:
    """What a device shows, and the data the app gets with it."""
    build = jetchat_settings().PUSH.get("NOTIFICATION")
    text = (import_string(build) if isinstance(build, str) else default_notification)(event)
    return {
        "title": text["title"],
        "body": text["body"],
        # Later notifications of a chat replace earlier ones on the device.
        "collapse_key": f"chat-{event['chat_id']}",
        "data": {"chat_id": event["chat_id"], "message_id": event["through_message_id"],
                 "count": event["count"]},
    }


@once
def push_needed(sender, event, meta, **kwargs):
    """The ``push_needed`` receiver: one notification per device of the member."""
    from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

    note = notification(event)
    user_id = event["user_id"]
    sent = 0
    web = WebPushDevice.objects.filter(user_id=user_id, active=True)
    if web.exists():
        sent += len(web.send_message(json.dumps(note, separators=(",", ":"))))
    fcm = GCMDevice.objects.filter(user_id=user_id, active=True)
    if fcm.exists():  # needs firebase-admin and FCM credentials (django-push-notifications[FCM])
        # django-push-notifications makes the title an Android notification's and takes
        # collapse_key out of the data (AndroidConfig's); the rest is the message's data.
        fcm.send_message(note["body"], extra={"title": note["title"],
                                              "collapse_key": note["collapse_key"],
                                              **_strings(note["data"])})
        sent += fcm.count()
    apns = APNSDevice.objects.filter(user_id=user_id, active=True)
    if apns.exists():  # needs aioapns or apns2 and APNs credentials
        apns.send_message({"title": note["title"], "body": note["body"]},
                          thread_id=note["collapse_key"], extra=note["data"])
        sent += apns.count()
    logger.info("push for user %s in chat %s: %s device(s)", user_id, event["chat_id"], sent)
    return sent


def _strings(data: dict) -> dict:
    """FCM's data values are strings."""
    return {key: str(value) for key, value in data.items()}


def connect() -> bool:
    """Connects ``push_needed`` when django-push-notifications is installed and push is on."""
    from django.apps import apps

    from . import signals
    from .conf import raw

    if not apps.is_installed("push_notifications"):
        return False
    push = raw().get("PUSH") or {}  # at start-up: the checks report a bad value, not this
    if isinstance(push, dict) and push.get("ENABLED", True) is False:
        return False
    signals.push_needed.connect(push_needed, dispatch_uid="jetchat_django.push.push_needed")
    return True
