"""The web app for the signed-in user: a token jetchat accepts, and the page that hands it over."""

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.template import Context, Template
from django.test import RequestFactory

from jetchat_django.tokens import JetchatTokenObtainPairSerializer


@pytest.fixture
def ann(db, user_ids):
    user_id, = user_ids(1)
    return get_user_model().objects.create(id=user_id, username=f"ann{user_id}",
                                           first_name="Ann", last_name="Lee")


def test_the_token_view_gives_a_token_jetchat_accepts(server, client, ann, settings):
    client.force_login(ann)

    response = client.post("/chat/token/")

    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    claims = jwt.decode(body["token"], settings.JWT_SECRET, algorithms=["HS256"])
    assert str(claims["user_id"]) == str(ann.pk) and claims["token_type"] == "access"
    assert claims["name"] == "Ann Lee" and claims["avatar"] == ""
    assert body["expires_at"] == claims["exp"]
    # Renewed TOKEN_RENEW_BEFORE (60 s) before it expires (a 5-minute token in the tests).
    assert 230 <= body["renew_in"] <= 240
    status, chats = server.get("/chats/", as_user=ann.pk, token=body["token"])
    assert status == 200 and chats == []


def test_the_token_view_wants_a_signed_in_post(client, ann):
    assert client.post("/chat/token/").status_code == 302  # to the login page
    client.force_login(ann)
    assert client.get("/chat/token/").status_code == 405


def test_the_token_view_checks_csrf(ann):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    assert client.post("/chat/token/").status_code == 403


def test_the_page_opens_the_app_and_keeps_its_opener(client, ann):
    client.force_login(ann)

    response = client.get("/chat/")

    assert response.status_code == 200
    # Without it, Django's default COOP (same-origin) would cut the app off from this page.
    assert response["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
    page = response.content.decode()
    assert 'data-app-url="http://127.0.0.1:8000/"' in page
    assert 'data-app-origin="http://127.0.0.1:8000"' in page
    assert 'data-token-url="/chat/token/"' in page
    assert "jetchat:ready" in page and "jetchat:token" in page


def test_the_template_tag_in_any_page(ann):
    request = RequestFactory().get("/")
    request.user = ann
    html = Template("{% load jetchat %}{% jetchat_open 'Messages' %}").render(
        Context({"request": request}))
    assert ">Messages</button>" in html and 'data-csrf="' in html


def test_login_tokens_carry_the_profile_claims(ann):
    access = JetchatTokenObtainPairSerializer.get_token(ann).access_token
    assert access["name"] == "Ann Lee" and access["avatar"] == ""


def test_the_client_page_names_the_client_and_its_settings(client, ann):
    import json
    import re

    assert client.get("/chat/client/").status_code == 302  # to the login page
    client.force_login(ann)

    response = client.get("/chat/client/")

    assert response.status_code == 200
    page = response.content.decode()
    import_map = json.loads(re.search(r'<script type="importmap">(.*?)</script>', page, re.S)[1])
    assert import_map == {"imports": {
        "@jetchat/client": "/static/jetchat_django/client/index.js",
        "jetchat-django": "/static/jetchat_django/jetchat-django.js"}}
    config = json.loads(re.search(r'<script id="jetchat-config" type="application/json">(.*?)'
                                  r"</script>", page, re.S)[1])
    assert config["url"] == "http://127.0.0.1:8000/" and config["tokenUrl"] == "/chat/token/"
    assert config["renewBeforeMs"] == 60_000 and config["csrfToken"]
    # The import map comes before the module that uses it.
    assert page.index('type="importmap"') < page.index("chat-page.js")


def test_the_client_tag_needs_app_url(ann, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.JETCHAT = {**settings.JETCHAT, "APP_URL": None}
    request = RequestFactory().get("/")
    request.user = ann
    with pytest.raises(ImproperlyConfigured, match="APP_URL"):
        Template("{% load jetchat %}{% jetchat_client %}").render(Context({"request": request}))
