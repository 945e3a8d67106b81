"""``{% load jetchat %}{% jetchat_open %}``: a button that opens the web app, signed in.

Put it in any page of a signed-in user (the page needs ``jetchat_django.urls`` included and
must not set ``Cross-Origin-Opener-Policy: same-origin``; ``SECURE_CROSS_ORIGIN_OPENER_POLICY
= "same-origin-allow-popups"`` in the settings, or the ``open_chat`` view, which sets it).
"""

from urllib.parse import urlsplit

from django import template
from django.middleware.csrf import get_token
from django.urls import reverse

from ..conf import jetchat_settings

register = template.Library()


@register.inclusion_tag("jetchat_django/open.html", takes_context=True)
def jetchat_open(context, label: str = "Open chat"):
    request = context["request"]
    app_url = jetchat_settings().APP_URL
    parts = urlsplit(app_url)
    return {
        "label": label,
        "app_url": app_url,
        "app_origin": f"{parts.scheme}://{parts.netloc}",
        "token_url": reverse("jetchat_django:token"),
        "csrf_token": get_token(request),
    }
