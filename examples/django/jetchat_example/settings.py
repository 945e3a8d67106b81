"""Settings of the jetchat example project.

Everything that ties Django to jetchat comes from the environment:

- ``JWT_SECRET``: the key SimpleJWT signs access tokens with; jetchat verifies them with the same
  value (its own ``JWT_SECRET``). Defaults to the development secret in jetchat's ``.env``.
- ``NATS_URL``: where jetchat's NATS server is (``nats://user:password@host:port`` with the
  sample ``nats/accounts.conf``).
- ``NATS_SUBJECT_PREFIX``: the same value as jetchat's (default ``chat``).
- ``NATS_INBOX_PREFIX``: where replies come back (``_INBOX.django``: the sample NATS permissions
  let the django user subscribe there only).
"""

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# jetchat's development value (its .env); never use it outside a laptop.
DEV_JWT_SECRET = "dev-insecure-django-secret-key-change-me"
JWT_SECRET = os.environ.get("JWT_SECRET") or DEV_JWT_SECRET

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or JWT_SECRET
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
    "jetchat_django",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "jetchat_example.urls"

# The token endpoints and jetchat_django's `once` receivers use the database (`manage.py
# migrate` first); the commands below do not touch it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
}

# What jetchat expects (its JWT_ALGORITHM, JWT_SECRET, JWT_USER_ID_CLAIM).
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=60),
    # Adds the name and avatar claims jetchat records in its user directory.
    "TOKEN_OBTAIN_SERIALIZER": "jetchat_django.tokens.JetchatTokenObtainPairSerializer",
}

# jetchat_django's one setting (clients/django/README.md lists every key; `manage.py check`
# says what is wrong with it).
JETCHAT = {
    "NATS_URL": os.environ.get("NATS_URL") or "nats://127.0.0.1:4222",
    "SUBJECT_PREFIX": os.environ.get("NATS_SUBJECT_PREFIX") or "chat",
    "INBOX_PREFIX": os.environ.get("NATS_INBOX_PREFIX") or "_INBOX.django",
    # The durable consumer on CHAT_EVENTS: one name per Django deployment.
    "DURABLE": os.environ.get("JETCHAT_DURABLE") or "django",
    # What jetchat shows of a user: the full name, else the username; the avatar from an
    # `avatar_url` attribute (adapt to where your project keeps avatars).
    "PROFILE": {"display_name": ["get_full_name", "get_username"], "avatar_url": ["avatar_url"]},
    "APP_URL": os.environ.get("JETCHAT_URL") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
