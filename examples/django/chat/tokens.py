"""Access tokens that carry the user's name and avatar, for jetchat's user directory.

jetchat reads two optional claims (its settings ``JWT_NAME_CLAIM`` and ``JWT_AVATAR_CLAIM``,
default ``name`` and ``avatar``) and records them when a socket opens or its token is
refreshed, if they differ from what it has. Wire the serializer into SimpleJWT:

    SIMPLE_JWT = {..., "TOKEN_OBTAIN_SERIALIZER": "chat.tokens.ChatTokenObtainPairSerializer"}

SimpleJWT copies a refresh token's claims into every access token made from it, so a token
refreshed later still says what the user was called at login: publish ``upsert_user``
(``chat.profiles``) when a user changes, and jetchat keeps whichever is newer.
"""

from rest_framework_simplejwt.serializers import TokenObtainPairSerializer


def display_name(user) -> str:
    """What others see: the full name, else the username (jetchat trims it; 1-100 characters)."""
    return (user.get_full_name() or user.get_username() or f"User {user.pk}").strip()[:100]


def avatar_url(user) -> str:
    """An absolute http(s) URL, or "" for none. Adapt to where your project keeps avatars
    (a profile model's ImageField: ``request.build_absolute_uri(profile.avatar.url)``)."""
    return getattr(user, "avatar_url", "") or ""


def profile_claims(user) -> dict:
    """The claims jetchat reads: ``name`` and ``avatar``."""
    return {"name": display_name(user), "avatar": avatar_url(user)}


class ChatTokenObtainPairSerializer(TokenObtainPairSerializer):
    """SimpleJWT's login serializer, adding the profile claims to the tokens it issues."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        for claim, value in profile_claims(user).items():
            token[claim] = value
        return token
