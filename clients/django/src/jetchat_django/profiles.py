"""A Django user's jetchat profile (display name, avatar URL) from the fields ``PROFILE`` names.

Used by the ``post_save`` receiver (``users.py``) and by the token claims (``tokens.py``), so
both say the same.
"""

from .conf import jetchat_settings


def _first(user, attributes) -> str:
    for attribute in [attributes] if isinstance(attributes, str) else attributes:
        value = getattr(user, attribute, None)
        if callable(value):
            value = value()
        if value:
            return str(value).strip()
    return ""


def display_name(user) -> str:
    """jetchat trims it and wants 1-100 characters: ``User <id>`` when every field is empty."""
    name = _first(user, jetchat_settings().PROFILE.get("display_name") or [])
    return (name or f"User {user.pk}")[:100]


def avatar_url(user) -> str | None:
    """An absolute http(s) URL, or None."""
    return _first(user, jetchat_settings().PROFILE.get("avatar_url") or []) or None
