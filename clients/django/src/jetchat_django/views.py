"""jetchat for the signed-in user: a page that opens the web app, a page with
``@jetchat/client`` in it, and the tokens both are handed.

The hand-over is the one jetchat's web app accepts (clients/web/src/signin.ts): the Django page
opens the app in a new window; the app posts ``{type: "jetchat:ready"}`` to its opener; the
page answers ``{type: "jetchat:token", token}`` to the app's origin, and again with a fresh
token ``TOKEN_RENEW_BEFORE`` seconds before each one expires, for as long as the page stays
open. The app takes tokens only from its opener and only from an origin listed in jetchat's
``CORS_ALLOWED_ORIGINS`` (README "The web app inside Django pages" says what to set).
"""

from datetime import datetime, timezone

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .conf import jetchat_settings
from .tokens import access_token


@never_cache
@require_POST
@login_required
def token(request):
    """``POST``: a fresh access token for the signed-in user, and when it expires (epoch s)."""
    issued = access_token(request.user)
    expires_at = int(issued["exp"])
    return JsonResponse({
        "token": str(issued),
        "expires_at": expires_at,
        "renew_in": max(expires_at - int(datetime.now(timezone.utc).timestamp())
                        - jetchat_settings().TOKEN_RENEW_BEFORE, 5),
    })


@never_cache
@login_required
def open_chat(request):
    """A page with the button that opens the app (``{% jetchat_open %}``)."""
    if not jetchat_settings().APP_URL:
        raise ImproperlyConfigured("JETCHAT['APP_URL'] is not set")
    response = render(request, "jetchat_django/open_chat.html")
    # Django's default (same-origin) would cut the app off from its opener: no hand-over.
    response["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
    return response


@never_cache
@login_required
def client_page(request):
    """A chat in the Django page itself, on ``@jetchat/client`` (``{% jetchat_client %}``)."""
    return render(request, "jetchat_django/client.html")
