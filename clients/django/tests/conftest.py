"""A real jetchat (the binary in JETCHAT_BIN, with its embedded nats-server from
NATS_SERVER_BIN; its database SQLite, or JETCHAT_DATABASE_URL) for the whole session, and
helpers that read like the tests' story.

No mocks: every command goes through JetStream to jetchat, every event comes back through a
durable consumer on CHAT_EVENTS.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
from django.conf import settings

WAIT = 20.0
QUIET = 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# pytest-django's live_server (the browser test's Django site) listens here, so the jetchat
# started below can list its origin in CORS_ALLOWED_ORIGINS before the site exists.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", f"127.0.0.1:{_free_port()}")
LIVE_ORIGIN = "http://" + os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"]


@dataclass
class Jetchat:
    """A running jetchat: its address, its NATS URL and ways to ask it things as a user."""

    url: str
    nats_url: str
    secret: str
    log: Path

    def token(self, user_id: int) -> str:
        now = int(time.time())
        return jwt.encode({"user_id": user_id, "token_type": "access", "exp": now + 600,
                           "iat": now}, self.secret, algorithm="HS256")

    def get(self, path: str, as_user: int, token: str | None = None):
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {token or self.token(as_user)}"})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def pytest_collection_modifyitems(config, items):
    """With jetchat on PostgreSQL (``django_package_test.sh --postgres``: the test command's
    second pass) only the tests that talk to jetchat run. The others (system checks, schemas,
    packaging, the vendored client, the pages' HTML) never reach jetchat's database and ran on
    the SQLite pass already."""
    if not os.environ.get("JETCHAT_DATABASE_URL"):
        return
    talks = [item for item in items if "server" in item.fixturenames]
    config.hook.pytest_deselected(items=[item for item in items if item not in talks])
    items[:] = talks


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("JETCHAT_BIN")
    nats_server = os.environ.get("NATS_SERVER_BIN") or shutil.which("nats-server")
    if not binary or not nats_server:
        pytest.fail("set JETCHAT_BIN and NATS_SERVER_BIN (scripts/django_package_test.sh does)")
    work = Path(tempfile.mkdtemp(prefix="jetchat-django-pkg."))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    if os.environ.get("JETCHAT_DATABASE_URL"):  # PostgreSQL (django_package_test.sh --postgres)
        env["DATABASE_URL"] = os.environ["JETCHAT_DATABASE_URL"]
    env.update(DATA_DIR=str(work / "data"), MEDIA_DIR=str(work / "media"),
               BIND_ADDR=f"127.0.0.1:{port}", JWT_SECRET=settings.JWT_SECRET,
               NATS_SERVER_BIN=nats_server, RUST_LOG=os.environ.get("RUST_LOG", "info"),
               PUSH_AFTER="1s", CORS_ALLOWED_ORIGINS=LIVE_ORIGIN, DEV_LOGIN="false")
    log = work / "jetchat.log"
    with open(log, "wb") as out:
        # From the work dir so no .env of a checkout is read.
        process = subprocess.Popen([binary, "serve"], cwd=work, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        url_file = work / "data" / "nats" / "url"
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"jetchat exited during start-up:\n{log.read_text()[-3000:]}")
            if url_file.exists() and url_file.read_text().strip():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        healthy = r.status == 200
                except OSError:
                    pass
            if healthy:
                break
            time.sleep(0.1)
        if not healthy:
            pytest.fail(f"jetchat never became healthy:\n{log.read_text()[-3000:]}")
        nats_url = url_file.read_text().strip()
        settings.JETCHAT["NATS_URL"] = nats_url
        yield Jetchat(f"http://127.0.0.1:{port}", nats_url, settings.JWT_SECRET, log)
    finally:
        from jetchat_django import bus

        bus.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if os.environ.get("KEEP_JETCHAT_LOG"):
            print(f"jetchat's log: {log}")
        else:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class Seen:
    event: dict
    meta: object


@dataclass
class Events:
    """A durable consumer of this test's own (starting at "new"), run in a thread, and what
    its signals delivered."""

    durable: str
    seen: list = field(default_factory=list)
    typed: list = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    consumer: object = None
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stats: object = None
    error: BaseException | None = None

    def record(self, sender, event, meta, **kwargs):
        with self.lock:
            self.seen.append(Seen(event, meta))
            self.lock.notify_all()

    def record_typed(self, sender, event, meta, **kwargs):
        """What the signal of the event's own type (``signals.BY_TYPE``) delivered."""
        with self.lock:
            self.typed.append((sender, meta.event_id))

    def start(self):
        from jetchat_django.consumer import Consumer

        ready = threading.Event()

        def run():
            async def main():
                self.loop = asyncio.get_running_loop()
                self.consumer = Consumer(durable=self.durable, start="new", batch=10)
                task = asyncio.create_task(self.consumer.run())
                ready_task = asyncio.create_task(self.consumer.ready.wait())
                await asyncio.wait([task, ready_task], return_when=asyncio.FIRST_COMPLETED)
                ready_task.cancel()
                ready.set()
                self.stats = await task

            try:
                asyncio.run(main())
            except BaseException as error:  # noqa: BLE001 - reported by the test
                self.error = error
                ready.set()

        self.thread = threading.Thread(target=run, name=f"consumer-{self.durable}", daemon=True)
        self.thread.start()
        assert ready.wait(WAIT), "the consumer never became ready"
        assert self.error is None, self.error
        return self

    def stop(self):
        if self.loop is not None and self.consumer is not None:
            self.loop.call_soon_threadsafe(self.consumer.stop.set)
        if self.thread is not None:
            self.thread.join(WAIT)
        return self.stats

    def matching(self, predicate) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if predicate(s.event)]

    def wait_for(self, predicate, what: str, count: int = 1, timeout: float = WAIT) -> list[Seen]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = [s for s in self.seen if predicate(s.event)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [s.event.get("type") for s in self.seen]
                    raise AssertionError(f"no {what} within {timeout}s; saw {kinds}")
                self.lock.wait(left)

    def exactly_once(self, predicate, what: str) -> Seen:
        """The one matching event, after watching QUIET seconds for a second one."""
        first = self.wait_for(predicate, what)[0]
        time.sleep(QUIET)
        found = self.matching(predicate)
        assert len(found) == 1, f"{what} {len(found)} times: {[s.event for s in found]}"
        kind = first.event.get("type")
        with self.lock:
            typed = self.typed.count((kind, first.meta.event_id))
        assert typed == 1, f"{what}: signals.{kind} sent {typed} times"
        return first


@pytest.fixture
def events(server):
    """Starts a consumer of the test's own; every event is recorded through ``event_received``,
    and ``exactly_once`` checks the signal of its own type was sent once for it too."""
    from jetchat_django import signals

    recorder = Events(durable=f"test-{uuid.uuid4().hex[:10]}")
    signals.event_received.connect(recorder.record, weak=False)
    for signal in signals.BY_TYPE.values():
        signal.connect(recorder.record_typed, weak=False)
    try:
        yield recorder.start()
    finally:
        recorder.stop()
        signals.event_received.disconnect(recorder.record)
        for signal in signals.BY_TYPE.values():
            signal.disconnect(recorder.record_typed)


@pytest.fixture
def uid():
    """A fresh id for commands and messages."""
    return lambda label="t": f"{label}-{uuid.uuid4().hex[:12]}"


_next_user = iter(range(10_000, 1_000_000))


@pytest.fixture
def user_ids():
    """Fresh user ids, so tests do not meet each other's chats."""
    return lambda n=1: [next(_next_user) for _ in range(n)]
