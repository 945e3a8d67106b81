"""A small Django project for the package's tests; conftest.py points JETCHAT at a real jetchat."""

import os
import tempfile
from datetime import timedelta

SECRET_KEY = "jetchat-django-tests"
#: jetchat is started with the same value as its JWT_SECRET (conftest.py).
JWT_SECRET = os.environ.get("TEST_JWT_SECRET", "jetchat-django-test-secret-0123456789abcdef")
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    # The live server serves the package's static files (the client) with it.
    "django.contrib.staticfiles",
    "rest_framework_simplejwt",
    "push_notifications",
    "jetchat_django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
# A file, so the consumer's handler thread and the test see the same committed rows.
_DB_DIR = tempfile.gettempdir()
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_DB_DIR, f"jetchat-django-{os.getpid()}.sqlite3"),
        "TEST": {"NAME": os.path.join(_DB_DIR, f"jetchat-django-test-{os.getpid()}.sqlite3")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The live server (the browser test) serves the apps' static files (the client) from here.
STATIC_URL = "/static/"

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "USER_ID_CLAIM": "user_id",
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
}

JETCHAT = {
    # Replaced by conftest.py with the URL of the jetchat it starts.
    "NATS_URL": "nats://127.0.0.1:4222",
    "APP_URL": "http://127.0.0.1:8000/",
    "PROFILE": {"display_name": ["get_full_name", "get_username"], "avatar_url": ["avatar"]},
    "SYSTEM_USER_ID": 900,
    "PARK_AFTER": 3,
    "RETRY_DELAYS": [0.2, 0.4],
    "ACK_WAIT": 5,
    "PUBLISH_TIMEOUT": 3,
    # test_push.py connects the push receiver itself, for its own test only.
    "PUSH": {"ENABLED": False},
}

# django-push-notifications: Web Push to a local HTTP endpoint standing in for the browser's
# push service (test_push.py sets the URL and the VAPID key).
PUSH_NOTIFICATIONS_SETTINGS = {
    "WP_POST_URL": {"CHROME": "http://127.0.0.1:9/push"},
    "WP_PRIVATE_KEY": None,
    "WP_CLAIMS": {"sub": "mailto:push-test@example.com"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"jetchat_django": {"level": "ERROR"}},
}
