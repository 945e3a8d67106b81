"""``{% load jetchat %}``: jetchat in a signed-in user's page.

``{% jetchat_open %}``: a button that opens the web app, signed in. The page must not set
``Cross-Origin-Opener-Policy: same-origin`` (``SECURE_CROSS_ORIGIN_OPENER_POLICY =
"same-origin-allow-popups"`` in the settings, or the ``open_chat`` view, which sets it).

``{% jetchat_client %}``, in ``<head>`` before any module script: ``@jetchat/client`` in the
page itself, from the package's static files. It writes the page's import map
(``@jetchat/client`` and ``jetchat-django``, whose ``createClient()`` gives a Client for the
signed-in user with tokens from the token view, renewed before they expire) and those settings.

Both need ``jetchat_django.urls`` included and ``JETCHAT["APP_URL"]`` set.
"""

import json
from urllib.parse import urlsplit

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import mark_safe

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


#: What keeps a JSON text from ending its <script> element (as Django's json_script escapes).
_SCRIPT_SAFE = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def _script_json(value) -> str:
    return mark_safe(json.dumps(value).translate(_SCRIPT_SAFE))


@register.inclusion_tag("jetchat_django/client_setup.html", takes_context=True)
def jetchat_client(context):
    conf = jetchat_settings()
    if not conf.APP_URL:
        raise ImproperlyConfigured("JETCHAT['APP_URL'] is not set: where is jetchat?")
    imports = {
        "@jetchat/client": static("jetchat_django/client/index.js"),
        "jetchat-django": static("jetchat_django/jetchat-django.js"),
    }
    config = {
        "url": conf.APP_URL,
        "tokenUrl": reverse("jetchat_django:token"),
        "csrfToken": get_token(context["request"]),
        "renewBeforeMs": conf.TOKEN_RENEW_BEFORE * 1000,
    }
    return {"import_map": _script_json({"imports": imports}), "config": config}
