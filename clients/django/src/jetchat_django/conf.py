"""The ``JETCHAT`` setting: one dict, its defaults, and typed access to it.

Checked at start-up by ``checks.py`` (``manage.py check`` shows every problem at once); code
reads it through ``jetchat_settings()`` so a test's ``override_settings`` is seen at once.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: Every key of ``JETCHAT`` and its default (``REQUIRED``: no default).
REQUIRED = object()
DEFAULTS = {
    # Where jetchat's NATS is; may carry credentials: nats://django:<password>@host:4222.
    # A list of URLs for a cluster.
    "NATS_URL": REQUIRED,
    # jetchat's NATS_SUBJECT_PREFIX: subjects chat.in.>, chat.events.>; streams CHAT_IN, ...
    "SUBJECT_PREFIX": "chat",
    # Where replies arrive; the sample nats/accounts.conf lets the django user read only there.
    "INBOX_PREFIX": "_INBOX.django",
    # The durable consumer on CHAT_EVENTS: one per Django deployment.
    "DURABLE": "django",
    # Where a new durable starts: "all" (everything CHAT_EVENTS keeps) or "new".
    "START": "all",
    # The web app's URL (jetchat's own address, e.g. https://chat.example.com/); None: no view.
    "APP_URL": None,
    # Which user fields become the jetchat profile: jetchat's field -> user attributes tried in
    # order (a method is called); the first non-empty value wins.
    "PROFILE": {"display_name": ["get_full_name", "get_username"], "avatar_url": []},
    # Upsert the profile on every post_save of the user model.
    "SYNC_USERS": True,
    # The user Django's "system" messages are sent as (a bot account that is a member).
    "SYSTEM_USER_ID": None,
    # A failing handler's event is redelivered; on its PARK_AFTER-th delivery it is parked
    # (terminated and logged) instead.
    "PARK_AFTER": 5,
    # Seconds before a failed event comes again: one per delivery, the last repeats.
    "RETRY_DELAYS": [1, 5, 30],
    # Seconds JetStream waits for an ack before redelivering (a handler slower than this is
    # given the event twice; the consumer extends it while a handler runs).
    "ACK_WAIT": 30,
    # Seconds a command waits for JetStream's ack, and how often it is tried (same Nats-Msg-Id).
    "PUBLISH_TIMEOUT": 5.0,
    "PUBLISH_ATTEMPTS": 3,
    # Renew the web app's token this many seconds before it expires.
    "TOKEN_RENEW_BEFORE": 60,
    # push_needed -> django-push-notifications (when installed): on or off, and a function
    # "module.function" (event) -> {"title", "body"} for the text (default: a count).
    "PUSH": {"ENABLED": True, "NOTIFICATION": None},
}


@dataclass(frozen=True)
class JetchatSettings:
    """``settings.JETCHAT`` with the defaults filled in."""

    NATS_URL: str | list[str]
    SUBJECT_PREFIX: str = "chat"
    INBOX_PREFIX: str = "_INBOX.django"
    DURABLE: str = "django"
    START: str = "all"
    APP_URL: str | None = None
    PROFILE: dict = field(default_factory=dict)
    SYNC_USERS: bool = True
    SYSTEM_USER_ID: int | None = None
    PARK_AFTER: int = 5
    RETRY_DELAYS: list = field(default_factory=list)
    ACK_WAIT: float = 30
    PUBLISH_TIMEOUT: float = 5.0
    PUBLISH_ATTEMPTS: int = 3
    TOKEN_RENEW_BEFORE: int = 60
    PUSH: dict = field(default_factory=dict)

    @property
    def servers(self) -> list[str]:
        return [self.NATS_URL] if isinstance(self.NATS_URL, str) else list(self.NATS_URL)

    def retry_delay(self, delivery: int) -> float:
        """Seconds before the event that failed on its ``delivery``-th delivery comes again."""
        delays = self.RETRY_DELAYS or [5]
        return float(delays[min(delivery, len(delays)) - 1])


def raw() -> dict:
    """``settings.JETCHAT`` as given (``{}`` when absent)."""
    value = getattr(settings, "JETCHAT", {})
    return value if isinstance(value, dict) else {}


def jetchat_settings() -> JetchatSettings:
    """The settings with their defaults (``checks.py`` has said what is wrong with them)."""
    given = raw()
    values = {key: given.get(key, default) for key, default in DEFAULTS.items()}
    if values["NATS_URL"] is REQUIRED:
        raise ImproperlyConfigured("JETCHAT['NATS_URL'] is not set (manage.py check says more)")
    profile = dict(DEFAULTS["PROFILE"])
    profile.update(values["PROFILE"] or {})
    values["PROFILE"] = profile
    values["PUSH"] = {**DEFAULTS["PUSH"], **(values["PUSH"] or {})}
    return JetchatSettings(**values)
