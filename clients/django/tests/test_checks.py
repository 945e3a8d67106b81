"""``manage.py check`` names each problem with ``JETCHAT`` (no jetchat needed)."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from jetchat_django.checks import check_settings

GOOD = {"NATS_URL": "nats://django:secret@nats:4222"}


def ids(**jetchat):
    with override_settings(JETCHAT={**GOOD, **jetchat}):
        return [problem.id for problem in check_settings()]


def test_good_settings_pass():
    assert ids() == []
    assert ids(NATS_URL=["nats://a:4222", "tls://b:4222"], SUBJECT_PREFIX="staging.chat",
               APP_URL="https://chat.example.com/", SYSTEM_USER_ID=1,
               PROFILE={"avatar_url": "avatar"},
               PUSH={"NOTIFICATION": "jetchat_django.push.default_notification"}) == []


def test_missing_setting():
    with override_settings():
        del settings.JETCHAT
        assert [p.id for p in check_settings()] == ["jetchat.E001"]
    with override_settings(JETCHAT="nats://x"):
        assert [p.id for p in check_settings()] == ["jetchat.E001"]


@pytest.mark.parametrize("setting, value, expected", [
    ("NATS_URL", None, "jetchat.E002"),
    ("NATS_URL", "http://nats:4222", "jetchat.E002"),
    ("NATS_URL", [], "jetchat.E002"),
    ("SUBJECT_PREFIX", "chat.>", "jetchat.E003"),
    ("SUBJECT_PREFIX", "chat..x", "jetchat.E003"),
    ("INBOX_PREFIX", "_INBOX django", "jetchat.E004"),
    ("DURABLE", "django.events", "jetchat.E005"),
    ("START", "last", "jetchat.E006"),
    ("APP_URL", "chat.example.com", "jetchat.E007"),
    ("PROFILE", {"nickname": "username"}, "jetchat.E008"),
    ("PROFILE", {"display_name": "get full name"}, "jetchat.E008"),
    ("PROFILE", ["username"], "jetchat.E008"),
    ("SYSTEM_USER_ID", 0, "jetchat.E009"),
    ("SYSTEM_USER_ID", "1", "jetchat.E009"),
    ("PARK_AFTER", 0, "jetchat.E010"),
    ("RETRY_DELAYS", [], "jetchat.E011"),
    ("RETRY_DELAYS", [1, -1], "jetchat.E011"),
    ("ACK_WAIT", 0, "jetchat.E012"),
    ("PUBLISH_ATTEMPTS", 0, "jetchat.E012"),
    ("SYNC_USERS", "yes", "jetchat.E013"),
    ("NATS_ULR", "typo", "jetchat.W001"),
])
def test_each_problem_has_its_own_id(setting, value, expected):
    assert ids(**{setting: value}) == [expected]


def test_missing_nats_url():
    with override_settings(JETCHAT={}):
        problems = check_settings()
    assert [p.id for p in problems] == ["jetchat.E002"]
    assert "nats/url" in problems[0].hint  # says where the embedded server's URL is


def test_simple_jwt_must_use_the_claim_jetchat_reads():
    with override_settings(JETCHAT=GOOD, SIMPLE_JWT={**settings.SIMPLE_JWT, "USER_ID_CLAIM": "uid",
                                                     "ALGORITHM": "EdDSA"}):
        assert [p.id for p in check_settings()] == ["jetchat.W002", "jetchat.W003"]


def test_manage_py_check_fails_with_the_message():
    with override_settings(JETCHAT={**GOOD, "SUBJECT_PREFIX": "chat.*"}):
        with pytest.raises(SystemCheckError, match=r"jetchat.E003.*SUBJECT_PREFIX"):
            call_command("check")


@pytest.mark.parametrize("value", [
    "on", {"ENABLED": "yes"}, {"ENABLED": True, "SOUND": 1},
    {"NOTIFICATION": "no.such.module.function"},
])
def test_push_settings(value):
    assert ids(PUSH=value) == ["jetchat.E014"]
