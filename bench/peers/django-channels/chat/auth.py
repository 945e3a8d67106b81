"""WebSocket authentication: the SimpleJWT access token of `?token=` (or `Authorization:
Bearer`), verified like DRF's JWTStatelessUserAuthentication does it (no user table)."""

from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken


def token_of(scope):
    """The raw token of a handshake: the query's `token`, else the Bearer header."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value.lower().startswith(b"bearer "):
            return value[7:].decode("latin-1")
    return None


def user_id_of(raw_token):
    """The user id a valid access token carries; None for any invalid token."""
    if not raw_token:
        return None
    try:
        token = AccessToken(raw_token)
        return int(token[api_settings.USER_ID_CLAIM])
    except (TokenError, KeyError, TypeError, ValueError):
        return None


class QueryTokenAuthMiddleware(BaseMiddleware):
    """Puts `user_id` (or None) into the scope, as Channels' docs suggest for token auth."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope, user_id=user_id_of(token_of(scope)))
        return await super().__call__(scope, receive, send)
