"""`manage.py upsert_user`: tells jetchat a user's display name and avatar (``upsert_user``).

Exit status: 0 applied; 1 rejected by jetchat (the code says why); 2 not published or no
outcome in time.
"""

import asyncio
import json
from datetime import datetime, timezone

from django.core.management.base import BaseCommand, CommandError

from chat import profiles


class Command(BaseCommand):
    help = "Publish upsert_user to chat.in.users.upsert and wait for jetchat's outcome."

    def add_arguments(self, parser):
        parser.add_argument("--user-id", type=int, required=True)
        parser.add_argument("--name", required=True, help="display name (1-100 characters)")
        parser.add_argument("--avatar", default=None, help="an http(s) URL (default: none)")
        parser.add_argument(
            "--updated-at",
            default=None,
            help="RFC 3339 time of the change (default: now); an older one changes nothing",
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    def handle(self, *args, user_id, name, avatar, updated_at, timeout, **options):
        when = (
            datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
            if updated_at
            else datetime.now(timezone.utc)
        )
        try:
            outcome = asyncio.run(
                profiles.publish(
                    user_id=user_id, name=name, avatar=avatar, updated_at=when, timeout=timeout
                )
            )
        except Exception as error:  # noqa: BLE001 - no NATS, no stream, no outcome in time
            raise CommandError(f"not applied: {error!r}", returncode=2) from error
        self.stdout.write(json.dumps(outcome, separators=(",", ":")))
        if outcome.get("outcome") == "rejected":
            raise CommandError(f"rejected: {outcome['code']}: {outcome['detail']}", returncode=1)
