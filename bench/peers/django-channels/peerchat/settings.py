"""Settings of the Django Channels peer, from the environment (run.sh sets them).

PEER_DATABASE_URL  postgres://user@host:port/name   the PostgreSQL database
PEER_REDIS_URL     redis://host:port/0              the channel layer's Redis
JWT_SECRET                                          the HS256 key SimpleJWT verifies with
"""

import os
from urllib.parse import urlsplit

SECRET_KEY = os.environ.get("JWT_SECRET", "dev-insecure-django-secret-key-change-me")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "channels",
    "chat",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "peerchat.urls"
ASGI_APPLICATION = "peerchat.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

_db = urlsplit(os.environ.get("PEER_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/peerchat"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname,
        "PORT": str(_db.port or 5432),
    }
}
if os.environ.get("PEER_DB_CONNECTIONS", "pool") == "pool":
    # Django 5.1+'s psycopg 3 pool, which Django's docs advise under ASGI (CONN_MAX_AGE must
    # then stay 0). database_sync_to_async runs the ORM in one thread per process (a thread
    # pool with PEER_THREAD_SENSITIVE=0).
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 8}}
else:
    # Persistent connections, the classic set-up of a Channels app: the one ORM thread of a
    # process keeps its connection (close_old_connections, which Channels calls before every
    # event, then has nothing to close).
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

CHANNEL_LAYERS = {
    "default": {
        # The original, stable layer (RedisPubSubChannelLayer is still marked beta).
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0"),
                    # A bound on the pool of each worker (redis-py 6: unbounded; redis-py 8:
                    # 100, and MaxConnectionsError past it). A thousand sockets that join or
                    # leave their groups at once borrow a connection each.
                    "max_connections": 2000,
                }
            ],
            # The documented knob: events a channel holds before more are dropped (silently).
            # One worker's channels share one Redis key, and each socket has a local buffer of
            # this size: at the default, 100, a fan-out backlog would lose deliveries.
            "capacity": 10_000,
        },
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Users live in the Django that mints the tokens: no user table here, as in jetchat.
        "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "USER_ID_CLAIM": "user_id",
    "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.AccessToken",),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # channels_redis tells at INFO when group_send drops messages over capacity.
    "loggers": {"channels_redis": {"level": "INFO"}},
}
