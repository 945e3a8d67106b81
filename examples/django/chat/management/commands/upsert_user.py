"""`manage.py upsert_user`: tells jetchat a user's display name and avatar (``upsert_user``),
with ``jetchat_django.upsert_user(..., wait=True)``. Saving a Django user does the same by
itself (jetchat_django's ``post_save`` receiver); this is for users Django does not have.

Exit status: 0 applied; 1 rejected by jetchat (the code says why); 2 not published or no
outcome in time.
"""

import json
from datetime import datetime, timezone

from django.core.management.base import BaseCommand, CommandError

import jetchat_django as jetchat


class Command(BaseCommand):
    help = "Publish upsert_user to chat.in.users.upsert and wait for jetchat's outcome."

    def add_arguments(self, parser):
        parser.add_argument("--user-id", type=int, required=True)
        parser.add_argument("--name", required=True, help="display name (1-100 characters)")
        parser.add_argument("--avatar", default=None, help="an http(s) URL (default: none)")
        parser.add_argument("--updated-at", default=None,
                            help="RFC 3339 time of the change (default: now); an older one changes nothing")

    def handle(self, *args, user_id, name, avatar, updated_at, **options):
        when = (datetime.fromisoformat(updated_at.replace("Z", "+00:00")) if updated_at
                else datetime.now(timezone.utc))
        try:
            published = jetchat.upsert_user(user_id=user_id, display_name=name, avatar_url=avatar,
                                            updated_at=when, wait=True)
        except jetchat.CommandRejected as refused:
            self.stdout.write(json.dumps(refused.outcome, separators=(",", ":")))
            raise CommandError(f"rejected: {refused.code}: {refused.detail}",
                               returncode=1) from refused
        except Exception as error:  # noqa: BLE001 - no NATS, no stream, no outcome in time
            raise CommandError(f"not applied: {error!r}", returncode=2) from error
        self.stdout.write(json.dumps(published.outcome or {"outcome": "duplicate"},
                                     separators=(",", ":")))
