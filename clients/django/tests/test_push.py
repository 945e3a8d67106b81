"""``push_needed`` becomes a Web Push request through django-push-notifications, sent to a local
HTTP endpoint standing in for the browser's push service, once per event."""

import base64
import http.server
import json
import os
import threading
import time
import urllib.parse

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


class FcmService:
    """A stand-in for FCM's HTTP v1 API and Google's OAuth token endpoint, on loopback.

    firebase-admin names FCM's address in its code (``https://fcm.googleapis.com``, no setting
    and no emulator), so the stand-in is reached the way any HTTPS service is reached through
    a proxy: ``HTTPS_PROXY`` points requests (which firebase-admin sends through) here, this
    server answers the tunnel's CONNECT itself and speaks TLS as ``fcm.googleapis.com`` with a
    certificate of a CA made for the test (``REQUESTS_CA_BUNDLE``). The service account's
    ``token_uri`` (a field of its JSON) points at the same server, in plain HTTP.
    """

    HOST = "fcm.googleapis.com"

    def __init__(self, tmp_path):
        import datetime
        import ssl

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jetchat test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(hours=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                           crl_sign=True, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.HOST)]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(self.HOST)]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_file = tmp_path / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(pem))
        (tmp_path / "fcm.pem").write_bytes(leaf.public_bytes(pem))
        (tmp_path / "fcm.key").write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tmp_path / "fcm.pem", tmp_path / "fcm.key")
        # The service account's key, whose signed assertion the token endpoint is sent.
        account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.account_public_key = account_key.public_key()

        self.requests = []  # (host, method, path, headers, body) of every request to FCM
        self.token_requests = []
        outer = self

        class Fcm(http.server.BaseHTTPRequestHandler):
            """Requests inside the tunnel: FCM's API."""

            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((outer.HOST, "POST", self.path, headers, body))
                project = self.path.split("/")[3]
                answer = json.dumps({"name": f"projects/{project}/messages/1"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        class Proxy(http.server.BaseHTTPRequestHandler):
            """The proxy's side: the tunnel to FCM, and the token endpoint."""

            def do_CONNECT(self):
                if self.path != f"{outer.HOST}:443":
                    self.send_error(403, f"only {outer.HOST} here")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                inner = tls.wrap_socket(self.connection, server_side=True)
                Fcm(inner, self.client_address, self.server)
                self.close_connection = True

            def do_POST(self):  # the service account's token_uri
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.token_requests.append(body)
                answer = json.dumps({"access_token": "fcm-test-access-token",
                                     "expires_in": 3600, "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.account = {
            "type": "service_account",
            "project_id": "jetchat-push-test",
            "private_key_id": "test-key",
            "private_key": account_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
            "client_email": "push@jetchat-push-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.address}/token",
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture
def fcm_service(tmp_path, monkeypatch):
    firebase_admin = pytest.importorskip("firebase_admin")
    from firebase_admin import credentials

    service = FcmService(tmp_path)
    monkeypatch.setenv("HTTPS_PROXY", service.address)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.ca_file))
    # django-push-notifications sends a device without application_id through the default app.
    app = firebase_admin.initialize_app(credentials.Certificate(service.account))
    signals.push_needed.connect(push.push_needed, dispatch_uid="test_push")
    try:
        yield service
    finally:
        signals.push_needed.disconnect(dispatch_uid="test_push")
        firebase_admin.delete_app(app)
        service.server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_push_needed_sends_one_fcm_message_to_the_members_device(server, events, fcm_service,
                                                                 uid, user_ids):
    import jwt as pyjwt
    from push_notifications.models import GCMDevice

    ann_id, bob_id = user_ids(2)
    User = get_user_model()
    User.objects.create(id=ann_id, username=f"ann{ann_id}")
    bob = User.objects.create(id=bob_id, username=f"bob{bob_id}")
    GCMDevice.objects.create(user=bob, registration_id="bob-phone", cloud_message_type="FCM")
    chat_id = jetchat.create_chat(creator_id=ann_id, member_ids=[bob_id],
                                  command_id=uid("create")).outcome["chat"]["chat_id"]

    message = jetchat.send_message(sender_id=ann_id, chat_id=chat_id, content="call me",
                                   client_msg_id=uid("msg"))

    events.wait_for(lambda e: e.get("type") == "push_needed" and e["user_id"] == bob_id,
                    "push_needed for bob", timeout=WAIT + 10)
    requests = fcm_service.wait_for(1)
    time.sleep(QUIET)
    assert len(fcm_service.requests) == 1, fcm_service.requests
    host, method, path, headers, body = requests[0]
    assert (host, method, path) == (FcmService.HOST, "POST",
                                    "/v1/projects/jetchat-push-test/messages:send")
    assert headers["authorization"] == "Bearer fcm-test-access-token"
    sent = json.loads(body)["message"]
    data = {"chat_id": str(chat_id), "message_id": str(message.seq), "count": "1"}
    assert sent["token"] == "bob-phone" and sent["data"] == data
    assert sent["android"] == {
        "collapse_key": f"chat-{chat_id}",  # a newer notification of the chat replaces it
        "data": data,
        "notification": {"title": "New message", "body": "Open the chat to read it."},
    }
    # The access token was asked for with an assertion signed by the service account's key.
    form = urllib.parse.parse_qs(fcm_service.token_requests[0].decode())
    claims = pyjwt.decode(form["assertion"][0], fcm_service.account_public_key,
                          algorithms=["RS256"], audience="https://oauth2.googleapis.com/token")
    assert claims["iss"] == fcm_service.account["client_email"]
    assert "https://www.googleapis.com/auth/cloud-platform" in claims["scope"].split()
    assert GCMDevice.objects.get(registration_id="bob-phone").active  # not deactivated
