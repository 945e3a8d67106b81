"""Access tokens jetchat accepts: SimpleJWT's, with the profile claims jetchat records.

jetchat verifies SimpleJWT's access tokens with the same key (its ``JWT_SECRET`` is SimpleJWT's
``SIGNING_KEY``), reads the user from ``user_id`` and, when present, the user's display name and
avatar from ``name`` and ``avatar`` (its ``JWT_NAME_CLAIM`` and ``JWT_AVATAR_CLAIM``).
"""

from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import AccessToken

from .profiles import avatar_url, display_name


def profile_claims(user) -> dict:
    """The claims jetchat records in its user directory (``""``: no avatar)."""
    return {"name": display_name(user), "avatar": avatar_url(user) or ""}


def access_token(user) -> AccessToken:
    """A fresh access token for ``user`` with the profile claims: what the web app is handed."""
    token = AccessToken.for_user(user)
    for claim, value in profile_claims(user).items():
        token[claim] = value
    return token


class JetchatTokenObtainPairSerializer(TokenObtainPairSerializer):
    """SimpleJWT's login serializer with the profile claims (``TOKEN_OBTAIN_SERIALIZER``)."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        for claim, value in profile_claims(user).items():
            token[claim] = value
        return token
