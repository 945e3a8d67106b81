"""``push_needed`` becomes a Web Push request through django-push-notifications, sent to a local
HTTP endpoint standing in for the browser's push service, once per event."""

import base64
import http.server
import json
import os
import threading
import time

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from push_notifications.models import WebPushDevice
from py_vapid import Vapid

import jetchat_django as jetchat
from jetchat_django import push, signals

from .conftest import QUIET, WAIT


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class PushService:
    """An HTTP server that records every request, as a push service would receive it."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers, body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture
def push_service(tmp_path):
    service = PushService()
    vapid = Vapid()
    vapid.generate_keys()
    vapid.save_key(str(tmp_path / "vapid.pem"))
    # django-push-notifications reads this very dict (its settings module keeps a reference).
    conf = settings.PUSH_NOTIFICATIONS_SETTINGS
    saved = dict(conf)
    conf.update(WP_POST_URL={"CHROME": service.url}, WP_PRIVATE_KEY=str(tmp_path / "vapid.pem"))
    signals.push_needed.connect(push.push_needed, dispatch_uid="test_push")
    try:
        yield service
    finally:
        signals.push_needed.disconnect(dispatch_uid="test_push")
        conf.clear()
        conf.update(saved)
        service.server.shutdown()


def browser_subscription():
    """What a browser's pushManager.subscribe gives: its key pair and auth secret."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
    auth = os.urandom(16)
    return private_key, b64url(public), auth


# The stand-in's endpoint is plain http, so django-push-notifications builds it from
# WP_POST_URL and the registration id, and warns that browsers give full https endpoints.
@pytest.mark.filterwarnings("ignore:registration_id should be the full endpoint")
@pytest.mark.django_db(transaction=True)
def test_push_needed_sends_one_web_push_to_the_members_device(server, events, push_service, uid,
                                                              user_ids):
    ann_id, bob_id = user_ids(2)
    User = get_user_model()
    User.objects.create(id=ann_id, username=f"ann{ann_id}")
    bob = User.objects.create(id=bob_id, username=f"bob{bob_id}")
    private_key, p256dh, auth = browser_subscription()
    WebPushDevice.objects.create(user=bob, registration_id="bob-browser", browser="CHROME",
                                 p256dh=p256dh, auth=b64url(auth))
    chat_id = jetchat.create_chat(creator_id=ann_id, member_ids=[bob_id],
                                  command_id=uid("create")).outcome["chat"]["chat_id"]

    # Bob has no socket open: jetchat's scanner says so after PUSH_AFTER (1 s here).
    message = jetchat.send_message(sender_id=ann_id, chat_id=chat_id, content="are you there?",
                                   client_msg_id=uid("msg"))

    events.wait_for(lambda e: e.get("type") == "push_needed" and e["user_id"] == bob_id,
                    "push_needed for bob", timeout=WAIT + 10)
    requests = push_service.wait_for(1)
    time.sleep(QUIET)
    assert len(push_service.requests) == 1, push_service.requests
    path, headers, body = requests[0]
    assert path == "/push/bob-browser"
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["authorization"].startswith("vapid t=")
    shown = json.loads(http_ece.decrypt(body, private_key=private_key, auth_secret=auth,
                                        version="aes128gcm"))
    assert shown["title"] == "New message"
    assert shown["collapse_key"] == f"chat-{chat_id}"
    assert shown["data"] == {"chat_id": chat_id, "message_id": message.seq, "count": 1}


@pytest.mark.django_db(transaction=True)
def test_a_member_without_devices_gets_no_request(server, events, push_service, uid, user_ids):
    ann_id, bob_id = user_ids(2)
    chat_id = jetchat.create_chat(creator_id=ann_id, member_ids=[bob_id],
                                  command_id=uid("create")).outcome["chat"]["chat_id"]
    jetchat.send_message(sender_id=ann_id, chat_id=chat_id, content="hi", client_msg_id=uid("m"))

    events.wait_for(lambda e: e.get("type") == "push_needed" and e["user_id"] == bob_id,
                    "push_needed for bob", timeout=WAIT + 10)
    time.sleep(QUIET)
    assert push_service.requests == []
    assert events.consumer.stats.parked == 0 and events.consumer.stats.retried == 0


def test_the_receiver_is_connected_when_the_app_is_installed_and_push_is_on():
    uid = "jetchat_django.push.push_needed"  # what apps.JetchatConfig.ready connects
    with override_settings(JETCHAT={**settings.JETCHAT, "PUSH": {"ENABLED": True}}):
        assert push.connect() is True
    assert signals.push_needed.disconnect(dispatch_uid=uid) is True  # it was connected
    with override_settings(JETCHAT={**settings.JETCHAT, "PUSH": {"ENABLED": False}}):
        assert push.connect() is False
    assert signals.push_needed.disconnect(dispatch_uid=uid) is False
