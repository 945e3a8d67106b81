"""Keeps jetchat's user directory in step with the user model: ``upsert_user`` on ``post_save``,
``erase_user`` on ``post_delete``.

Connected by ``apps.JetchatConfig.ready`` when ``SYNC_USERS`` is on. The command is published
once the saving transaction commits (a rolled-back save tells jetchat nothing), stamped with the
time of the save so the newest change wins in jetchat whatever the order of arrival. A publish
that fails is logged, not raised: the user's save has happened; their next save, or the name
claims of their next token, bring jetchat up to date.

Deleting a user erases them from jetchat once the deleting transaction commits (docs/events.md,
"Erasure": nothing is left but their messages' tombstones); ``signals.user_erased`` says when it
is done. A publish that fails is logged, not raised (the user is deleted in Django): publish
``erase_user(user_id=...)`` again, which is safe to repeat.
"""

import logging
from datetime import datetime, timezone

from django.db import transaction

from . import commands
from .profiles import avatar_url, display_name

logger = logging.getLogger("jetchat_django.users")


def publish_profile(user, updated_at: datetime | None = None):
    """Publishes the user's profile now (blocks until JetStream stored it)."""
    return commands.upsert_user(user_id=user.pk, display_name=display_name(user),
                                avatar_url=avatar_url(user),
                                updated_at=updated_at or datetime.now(timezone.utc))


#: Saves of only these fields change nothing jetchat shows (a login updates ``last_login``).
NOT_PROFILE_FIELDS = frozenset({"last_login", "password"})


def user_saved(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    """``post_save`` receiver of the user model."""
    if raw or instance.pk is None:  # loaddata: not a change made by anyone
        return
    if update_fields and set(update_fields) <= NOT_PROFILE_FIELDS:
        return
    stamp = datetime.now(timezone.utc)

    def publish():
        try:
            publish_profile(instance, stamp)
        except Exception:  # noqa: BLE001 - see the module's docstring
            logger.exception("upsert_user for user %s not published", instance.pk)

    transaction.on_commit(publish, using=using)


def user_deleted(sender, instance, using=None, origin=None, **kwargs):
    """``post_delete`` receiver of the user model: erases the user from jetchat."""
    user_id = instance.pk
    if user_id is None:
        return

    def publish():
        try:
            commands.erase_user(user_id=user_id)
        except Exception:  # noqa: BLE001 - see the module's docstring
            logger.exception("erase_user for user %s not published", user_id)

    transaction.on_commit(publish, using=using)
