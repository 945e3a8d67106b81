"""Django system checks for ``settings.JETCHAT``: each problem with its own id and a hint.

Registered by ``apps.JetchatConfig.ready``; ``manage.py check`` (and every ``runserver`` and
``migrate``) reports them. Ids: ``jetchat.E001``…, warnings ``jetchat.W001``….
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import DEFAULTS, REQUIRED

#: A NATS subject token: no whitespace, no wildcard, not empty.
TOKEN = re.compile(r"^[^\s.*>]+$")
PROFILE_FIELDS = {"display_name", "avatar_url"}


def _subject(value) -> bool:
    return isinstance(value, str) and all(TOKEN.match(t) for t in value.split("."))


def _error(id_: int, msg: str, hint: str) -> Error:
    return Error(msg, hint=hint, id=f"jetchat.E{id_:03d}")


@register("jetchat")
def check_settings(app_configs=None, **kwargs):
    """Every problem with ``settings.JETCHAT``, at once."""
    if not hasattr(settings, "JETCHAT"):
        return [_error(1, "settings.JETCHAT is missing.",
                       'Add JETCHAT = {"NATS_URL": "nats://django:<password>@host:4222"}.')]
    given = settings.JETCHAT
    if not isinstance(given, dict):
        return [_error(1, f"settings.JETCHAT must be a dict, not {type(given).__name__}.",
                       'JETCHAT = {"NATS_URL": "nats://…", …}')]
    problems = []
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        problems.append(Warning(
            f"settings.JETCHAT has unknown keys: {', '.join(unknown)}.",
            hint=f"Known keys: {', '.join(DEFAULTS)}.", id="jetchat.W001"))

    def get(key):
        return given.get(key, DEFAULTS[key])

    url = get("NATS_URL")
    urls = [url] if isinstance(url, str) else url
    if url is REQUIRED:
        problems.append(_error(2, "JETCHAT['NATS_URL'] is not set.",
                               "jetchat's NATS, e.g. nats://django:<password>@nats:4222 (with "
                               "jetchat's embedded server: the URL in <DATA_DIR>/nats/url)."))
    elif not isinstance(urls, (list, tuple)) or not urls or not all(
        isinstance(u, str) and urlsplit(u).scheme in ("nats", "tls", "ws", "wss")
        and urlsplit(u).hostname for u in urls
    ):
        problems.append(_error(2, f"JETCHAT['NATS_URL'] is not a NATS URL: {url!r}.",
                               "nats://[user:password@]host:port (or tls://…), or a list of them."))
    if not _subject(get("SUBJECT_PREFIX")):
        problems.append(_error(3, f"JETCHAT['SUBJECT_PREFIX'] is not a subject prefix: "
                                  f"{get('SUBJECT_PREFIX')!r}.",
                               "The same value as jetchat's NATS_SUBJECT_PREFIX (default 'chat'): "
                               "dot-separated tokens, no spaces, '*' or '>'."))
    if not _subject(get("INBOX_PREFIX")):
        problems.append(_error(4, f"JETCHAT['INBOX_PREFIX'] is not a subject prefix: "
                                  f"{get('INBOX_PREFIX')!r}.",
                               "Where replies arrive, e.g. '_INBOX.django' (what the sample "
                               "nats/accounts.conf lets the django user subscribe to)."))
    durable = get("DURABLE")
    if not (isinstance(durable, str) and TOKEN.match(durable) and "/" not in durable):
        problems.append(_error(5, f"JETCHAT['DURABLE'] is not a consumer name: {durable!r}.",
                               "One word per Django deployment, e.g. 'django' (no '.', '*', '>', "
                               "'/' or spaces)."))
    if get("START") not in ("all", "new"):
        problems.append(_error(6, f"JETCHAT['START'] must be 'all' or 'new', not {get('START')!r}.",
                               "Where a new durable starts; an existing one resumes anyway."))
    app_url = get("APP_URL")
    if app_url is not None and not (
        isinstance(app_url, str) and urlsplit(app_url).scheme in ("http", "https")
        and urlsplit(app_url).hostname
    ):
        problems.append(_error(7, f"JETCHAT['APP_URL'] is not an http(s) URL: {app_url!r}.",
                               "jetchat's address, e.g. 'https://chat.example.com/', or None."))
    problems += _check_profile(get("PROFILE"))
    system = get("SYSTEM_USER_ID")
    if system is not None and not (isinstance(system, int) and not isinstance(system, bool)
                                   and system > 0):
        problems.append(_error(9, f"JETCHAT['SYSTEM_USER_ID'] must be a positive user id or "
                                  f"None: {system!r}.",
                               "The user system messages are sent as (a member of the chat)."))
    park = get("PARK_AFTER")
    if not (isinstance(park, int) and not isinstance(park, bool) and park >= 1):
        problems.append(_error(10, f"JETCHAT['PARK_AFTER'] must be an integer >= 1: {park!r}.",
                               "After this many failed deliveries an event is parked (default 5)."))
    delays = get("RETRY_DELAYS")
    if not (isinstance(delays, (list, tuple)) and delays and all(
        isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0 for d in delays
    )):
        problems.append(_error(11, f"JETCHAT['RETRY_DELAYS'] must be a non-empty list of seconds: "
                                   f"{delays!r}.",
                               "One delay per failed delivery, the last repeats: e.g. [1, 5, 30]."))
    for key, low in (("ACK_WAIT", 1), ("PUBLISH_TIMEOUT", 0.001), ("PUBLISH_ATTEMPTS", 1),
                     ("TOKEN_RENEW_BEFORE", 0)):
        value = get(key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low):
            problems.append(_error(12, f"JETCHAT[{key!r}] must be a number >= {low}: {value!r}.",
                                   f"Default {DEFAULTS[key]!r}."))
    if not isinstance(get("SYNC_USERS"), bool):
        problems.append(_error(13, f"JETCHAT['SYNC_USERS'] must be True or False: "
                                   f"{get('SYNC_USERS')!r}.", "Default True."))
    problems += _check_push(get("PUSH"))
    problems += _check_simple_jwt()
    return problems


def _check_push(push) -> list:
    hint = 'e.g. {"ENABLED": True, "NOTIFICATION": "myapp.push.notification"}'
    if not isinstance(push, dict) or set(push) - {"ENABLED", "NOTIFICATION"}:
        return [_error(14, f"JETCHAT['PUSH'] must be a dict with ENABLED and NOTIFICATION: "
                           f"{push!r}.", hint)]
    if not isinstance(push.get("ENABLED", True), bool):
        return [_error(14, "JETCHAT['PUSH']['ENABLED'] must be True or False.", hint)]
    build = push.get("NOTIFICATION")
    if build is not None:
        from django.utils.module_loading import import_string

        try:
            import_string(build)
        except ImportError as error:
            return [_error(14, f"JETCHAT['PUSH']['NOTIFICATION'] cannot be imported: {error}.",
                           "A dotted path to a function (event) -> {'title', 'body'}.")]
    return []


def _check_profile(profile) -> list:
    hint = ('A dict from jetchat\'s profile fields to user attributes, e.g. '
            '{"display_name": ["get_full_name", "username"], "avatar_url": ["avatar_url"]}.')
    if not isinstance(profile, dict):
        return [_error(8, f"JETCHAT['PROFILE'] must be a dict: {profile!r}.", hint)]
    unknown = sorted(set(profile) - PROFILE_FIELDS)
    if unknown:
        return [_error(8, f"JETCHAT['PROFILE'] names fields jetchat does not have: "
                          f"{', '.join(unknown)}.", f"Only {sorted(PROFILE_FIELDS)}. {hint}")]
    for key, attrs in profile.items():
        attrs = [attrs] if isinstance(attrs, str) else attrs
        if not isinstance(attrs, (list, tuple)) or not all(
            isinstance(a, str) and a.isidentifier() for a in attrs
        ):
            return [_error(8, f"JETCHAT['PROFILE'][{key!r}] must be attribute names: {attrs!r}.",
                           hint)]
    return []


def _check_simple_jwt() -> list:
    """jetchat reads ``user_id`` from an HS256 token by default; SimpleJWT must agree."""
    if "rest_framework_simplejwt" not in settings.INSTALLED_APPS:
        return []
    simple_jwt = getattr(settings, "SIMPLE_JWT", {}) or {}
    problems = []
    if simple_jwt.get("USER_ID_CLAIM", "user_id") != "user_id":
        problems.append(Warning(
            f"SIMPLE_JWT['USER_ID_CLAIM'] is {simple_jwt['USER_ID_CLAIM']!r}.",
            hint="jetchat reads 'user_id' unless its JWT_USER_ID_CLAIM says otherwise: set both "
                 "to the same claim.", id="jetchat.W002"))
    if simple_jwt.get("ALGORITHM", "HS256") not in ("HS256", "HS384", "HS512", "RS256", "ES256"):
        problems.append(Warning(
            f"SIMPLE_JWT['ALGORITHM'] is {simple_jwt['ALGORITHM']!r}.",
            hint="jetchat verifies the algorithm its JWT_ALGORITHM names (HS256 by default).",
            id="jetchat.W003"))
    return problems
