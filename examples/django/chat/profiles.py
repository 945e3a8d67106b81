"""Tell jetchat a user's name and avatar: the ``upsert_user`` command (docs/events.md).

Call ``publish_user`` after a user changes, once the change is committed, e.g. from a
``post_save`` receiver:

    @receiver(post_save, sender=User)
    def tell_jetchat(sender, instance, **kwargs):
        transaction.on_commit(lambda: profiles.publish_user(instance))

jetchat keeps the newest ``updated_at``, so updates that arrive out of order, or a token whose
claims are older, never undo a later change.
"""

import asyncio
import json
from datetime import datetime, timezone

from chat import bus
from chat.tokens import avatar_url, display_name


def publish_user(user, *, updated_at: datetime | None = None, timeout: float = 10.0) -> dict:
    """Publishes ``upsert_user`` for a Django user and waits for jetchat's outcome."""
    return asyncio.run(
        publish(
            user_id=user.pk,
            name=display_name(user),
            avatar=avatar_url(user) or None,
            updated_at=updated_at or datetime.now(timezone.utc),
            timeout=timeout,
        )
    )


async def publish(
    *,
    user_id: int,
    name: str,
    avatar: str | None,
    updated_at: datetime,
    timeout: float = 10.0,
) -> dict:
    """Publishes the command through JetStream and returns jetchat's outcome: ``applied`` (an
    older or identical update is applied too, as a no-op) or ``rejected`` with its code."""
    nc = await bus.connect(name="django-upsert-user")
    try:
        reply_to = nc.new_inbox()
        outcome = await nc.subscribe(reply_to, max_msgs=1)
        command = bus.upsert_user(
            user_id=user_id,
            display_name=name,
            avatar_url=avatar,
            updated_at=updated_at,
            reply_to=reply_to,
        )
        await nc.jetstream().publish(
            command.subject, command.body(), timeout=timeout, headers={"Nats-Msg-Id": command.msg_id}
        )
        message = await outcome.next_msg(timeout=timeout)
        return json.loads(message.data)
    finally:
        await nc.drain()
