"""The token hand-over in a real browser: a signed-in Django user clicks the button of
``jetchat_django``'s page, the web app opens signed in as them, and the page renews its token.

Chromium (Debian's, ``CHROMIUM``), the Django site on pytest-django's live server (an origin
jetchat's CORS_ALLOWED_ORIGINS lists, conftest.py), the app served by the real jetchat.
"""

import os
import shutil

import pytest
from django.contrib.auth import get_user_model

from .conftest import LIVE_ORIGIN, WAIT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no chromium at {CHROMIUM} (set CHROMIUM)")


@pytest.fixture
def signed_in(live_server, client, settings, user_ids, server):
    """Ann, signed in to the Django site: her session cookie, for the browser."""
    assert live_server.url == LIVE_ORIGIN
    # A 5-minute token renewed 295 s before it expires: every 5 s.
    settings.JETCHAT = {**settings.JETCHAT, "APP_URL": f"{server.url}/",
                        "TOKEN_RENEW_BEFORE": 295}
    user_id, = user_ids(1)
    ann = get_user_model().objects.create(id=user_id, username=f"ann{user_id}",
                                          first_name="Ann", last_name="Lee")
    client.force_login(ann)
    return ann, client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
def test_the_button_opens_the_app_signed_in_and_renews_its_token(signed_in, live_server):
    from playwright.sync_api import expect, sync_playwright

    ann, session = signed_in
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-background-networking"])
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            page.goto(f"{live_server.url}/chat/")
            with context.expect_page(timeout=WAIT * 1000) as opened:
                page.get_by_role("button", name="Open chat").click()
            app = opened.value

            app.locator('.state[data-state="open"]').wait_for(timeout=WAIT * 1000)
            # Her name, from the profile the package keeps in jetchat (the user sync and the
            # token's claims); the app may draw "User <id>" until its directory answers.
            expect(app.locator('[data-testid="me"]')).to_have_text("Ann Lee", timeout=WAIT * 1000)

            # Renewal: the page posts a fresh token unasked before the current one expires.
            app.evaluate("""() => {
                window.tokens_ = [];
                addEventListener('message', (e) => {
                    if (e.data?.type === 'jetchat:token') window.tokens_.push(e.data.token);
                });
            }""")
            # (Past any answer to the app's own second `jetchat:ready` at sign-in.)
            app.wait_for_timeout(1500)
            app.evaluate("() => { window.tokens_ = []; }")
            app.wait_for_function("() => window.tokens_.length >= 1", timeout=WAIT * 1000)
            renewed = app.evaluate("() => window.tokens_[0]")
            assert renewed.count(".") == 2
            assert app.locator('.state[data-state="open"]').count() == 1
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_a_django_page_with_the_client_sends_receives_and_renews_its_token(
        signed_in, live_server, server, events, user_ids, monkeypatch):
    """``jetchat_django:client``: @jetchat/client from the package's static files, in the
    Django page itself, with tokens from the token view that it renews on its own."""
    import jetchat_django as jetchat
    from datetime import timedelta

    from playwright.sync_api import expect, sync_playwright
    from rest_framework_simplejwt.tokens import AccessToken

    # 8-second tokens: the client renews each at half its life (TOKEN_RENEW_BEFORE is longer),
    # so within a test the first ones expire while the socket stays open on their successors.
    monkeypatch.setattr(AccessToken, "lifetime", timedelta(seconds=8))
    ann, session = signed_in
    bob, = user_ids(1)
    chat_id = jetchat.create_chat(creator_id=ann.pk, member_ids=[bob],
                                  name="Page").outcome["chat"]["chat_id"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-background-networking"])
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{live_server.url}/chat/client/?chat={chat_id}")
            expect(page.locator("body")).to_have_attribute("data-chat", str(chat_id),
                                                           timeout=WAIT * 1000)
            assert page.locator("body").get_attribute("data-state") == "open"
            messages = page.locator("#jetchat-messages li")

            # Receive: Bob's message, sent from Django, appears.
            jetchat.send_message(sender_id=bob, chat_id=chat_id, content="Hi Ann, from Bob")
            expect(messages.filter(has_text="Hi Ann, from Bob")).to_have_count(
                1, timeout=WAIT * 1000)

            # Send: Ann's message goes through the page's socket and is stored once.
            page.get_by_label("Message", exact=True).fill("Hi Bob, from the page")
            page.get_by_role("button", name="Send").click()
            sent = events.exactly_once(
                lambda e: e.get("type") == "message_created"
                and e["message"]["content"] == "Hi Bob, from the page", "message_created")
            assert sent.event["message"]["sender_id"] == ann.pk
            expect(messages.filter(has_text="Hi Bob, from the page")).to_have_count(1)

            # Renewal: a token every ~4 s, so by the fifth (~16 s) the first token is past its
            # exp plus jetchat's TOKEN_EXPIRY_GRACE (8 + 5 s), when jetchat closes a socket not
            # given a fresh one (4001). The same socket (no reconnect) still sends.
            page.wait_for_function("() => Number(document.body.dataset.tokens) >= 5",
                                   timeout=WAIT * 2 * 1000)
            page.get_by_label("Message", exact=True).fill("Still here")
            page.get_by_role("button", name="Send").click()
            events.exactly_once(lambda e: e.get("type") == "message_created"
                                and e["message"]["content"] == "Still here", "message_created")
            assert page.locator("body").get_attribute("data-sockets") == "1"
            assert errors == []
        finally:
            browser.close()
