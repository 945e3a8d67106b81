#!/usr/bin/env python
"""End-to-end test of the Django example against a running jetchat (run by scripts/django_e2e.sh).

Environment:
  JETCHAT_URL  http://127.0.0.1:PORT of a running jetchat
  NATS_URL     its NATS server (the embedded one's URL is in $DATA_DIR/nats/url)
  JWT_SECRET   the secret jetchat verifies tokens with (Django signs with it)

It starts only the Django side: tokens through `mint_token`, the `jetchat_events` consumer and
`inject_message` as subprocesses (as an operator would run them), and one WebSocket client per
user. Every wait is bounded. Prints `N passed, M failed` and exits non-zero on any failure.
"""

import asyncio
import io
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jetchat_example.settings")

import django  # noqa: E402
import jwt  # noqa: E402  (PyJWT, installed with SimpleJWT)
import websockets  # noqa: E402
from django.core.management import call_command  # noqa: E402

#: Longest wait for any one thing (a frame, an event, a process).
WAIT = 15.0
#: How long "nothing more arrives" is watched.
QUIET = 1.5


class Failed(Exception):
    """A check that did not hold."""


class Run:
    """Named checks, run in order; after a failure the rest are skipped (they build on it)."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.broken = False

    async def check(self, name, step):
        if self.broken:
            self.skipped += 1
            print(f"skip  {name}", flush=True)
            return None
        started = time.monotonic()
        try:
            value = await step()
        except Exception as error:  # noqa: BLE001 - a test failure of any kind
            self.failed += 1
            self.broken = True
            kind = "" if isinstance(error, Failed) else f"{type(error).__name__}: "
            print(f"FAIL  {name}: {kind}{error}", flush=True)
            return None
        self.passed += 1
        print(f"ok    {name} ({time.monotonic() - started:.2f}s)", flush=True)
        return value


def need(condition, message):
    if not condition:
        raise Failed(message)


class Socket:
    """A jetchat WebSocket client that waits for frames matching a predicate."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.seen = []

    async def send(self, frame):
        await self.ws.send(json.dumps(frame))

    async def expect(self, what, match, timeout=WAIT):
        """The first frame for which `match` is true; other frames (receipts...) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{self.name}: no {what} within {timeout}s; saw {self.seen[-5:]}")
            try:
                text = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            frame = json.loads(text)
            self.seen.append(frame)
            if frame.get("action") == "error" and "error" not in what:
                raise Failed(f"{self.name}: error frame while waiting for {what}: {frame}")
            if match(frame):
                return frame

    async def expect_none(self, what, match, quiet=QUIET):
        try:
            frame = await self.expect(what, match, timeout=quiet)
        except Failed:
            return
        raise Failed(f"{self.name}: unexpected {what}: {frame}")


class Consumer:
    """`manage.py jetchat_events --json` as a subprocess; its events arrive on a queue."""

    def __init__(self, env):
        self.env = env
        self.proc = None
        self.events = asyncio.Queue()
        self.stderr = b""
        self.reader = None

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "manage.py"),
            "jetchat_events",
            "--json",
            cwd=HERE,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.reader = asyncio.create_task(self._read())
        ready = await self.next(lambda line: line.get("ready"), "the consumer's ready line")
        return ready

    async def _read(self):
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
                if "event" in line or "ready" in line:  # not the final summary
                    await self.events.put(line)
            except ValueError:
                print(f"      consumer: {raw.decode().rstrip()}", flush=True)
        self.stderr = await self.proc.stderr.read()
        await self.events.put(None)

    async def next(self, match, what, timeout=WAIT):
        """The first line for which `match` is true; returns it with the lines skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"consumer: no {what} within {timeout}s")
            try:
                line = await asyncio.wait_for(self.events.get(), left)
            except asyncio.TimeoutError:
                continue
            if line is None:
                raise Failed(
                    f"consumer exited ({self.proc.returncode}) before {what}: "
                    f"{self.stderr.decode()[-800:]}"
                )
            if match(line):
                return line

    async def expect_none(self, match, what, quiet=QUIET):
        """Fails if a line for which `match` is true arrives within `quiet` seconds."""
        deadline = time.monotonic() + quiet
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(self.events.get(), left)
            except asyncio.TimeoutError:
                return
            if line is None:
                return
            if match(line):
                raise Failed(f"consumer: unexpected {what}: {line}")

    async def stop(self):
        """SIGTERM, as a process manager would; the consumer finishes and acks what it has."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), WAIT)
        except asyncio.TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self.reader:
            await asyncio.wait_for(self.reader, WAIT)
        return code


async def manage(env, *args):
    """Runs a management command in a subprocess; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "manage.py"),
        *args,
        cwd=HERE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), WAIT + 5)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise Failed(f"manage.py {' '.join(args)} did not finish in time")
    return proc.returncode, out.decode(), err.decode()


async def inject(env, *args):
    code, out, err = await manage(env, "inject_message", "--json", "--wait", *args)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise Failed(f"inject_message exited {code}: {out} {err}") from None
    return code, result


def mint(user_id, *extra):
    out = io.StringIO()
    call_command("mint_token", str(user_id), *extra, stdout=out)
    return out.getvalue().strip()


def get_json(url, token):
    """GET with a bearer token (blocking; run in a thread)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return json.loads(response.read())


async def users_seen(jetchat_url, token, ids):
    """``GET /users?ids=…`` as the token's user: the profiles by id."""
    url = f"{jetchat_url}/users?ids={','.join(map(str, ids))}"
    profiles = await asyncio.to_thread(get_json, url, token)
    return {p["user_id"]: p for p in profiles}


async def main():
    jetchat_url = os.environ["JETCHAT_URL"].rstrip("/")
    ws_url = jetchat_url.replace("http://", "ws://", 1) + "/ws/chat"
    secret = os.environ["JWT_SECRET"]
    env = dict(os.environ)
    django.setup()

    run = Run()
    state = {}
    consumer = Consumer(env)
    sockets = []
    tag = uuid.uuid4().hex[:8]

    async def tokens():
        state["tokens"] = {user: mint(user) for user in (1, 2)}
        for user, token in state["tokens"].items():
            claims = jwt.decode(token, secret, algorithms=["HS256"])
            need(claims["token_type"] == "access", f"not an access token: {claims}")
            need(str(claims["user_id"]) == str(user), f"wrong user_id claim: {claims}")

    async def consumer_starts():
        ready = await consumer.start()
        need(ready["durable"] == "django", f"durable name: {ready}")
        need(ready["stream"].endswith("_EVENTS"), f"stream: {ready}")

    async def sockets_connect():
        for user in (1, 2):
            ws = await websockets.connect(
                f"{ws_url}?token={state['tokens'][user]}", open_timeout=WAIT
            )
            sockets.append(ws)
            state[user] = Socket(ws, f"user {user}")

    async def private_message():
        cid = f"e2e-{tag}-private"
        state["private_cid"] = cid
        alice = state[1]
        await alice.send(
            {
                "action": "send_message",
                "receiver_id": 2,
                "content": "hello bob",
                "content_type": "text",
                "client_msg_id": cid,
            }
        )
        await alice.expect(
            "message_accepted",
            lambda f: f["action"] == "message_accepted" and f["client_msg_id"] == cid,
        )
        ack = await alice.expect(
            "message_ack", lambda f: f["action"] == "message_ack" and f["client_msg_id"] == cid
        )
        state["chat_id"] = ack["chat_id"]
        state["first_id"] = ack["message_id"]

    async def bob_receives():
        cid = state["private_cid"]
        frame = await state[2].expect(
            "new_message", lambda f: f["action"] == "new_message" and f["client_msg_id"] == cid
        )
        need(frame["content"] == "hello bob", f"content: {frame}")
        need(frame["sender_id"] == 1 and frame["receiver_id"] == 2, f"users: {frame}")
        need(frame["chat_id"] == state["chat_id"], f"chat: {frame}")

    async def django_consumes_it():
        line = await consumer.next(
            lambda l: l["event"]["type"] == "message_created"
            and l["event"]["message"]["client_msg_id"] == state["private_cid"],
            "message_created for the private message",
        )
        event, message = line["event"], line["event"]["message"]
        chat_id = state["chat_id"]
        need(event["v"] == 1, f"version: {event}")
        need(line["subject"].endswith(f".events.{chat_id}.message_created"), f"subject: {line}")
        need(message["message_id"] == state["first_id"], f"message id: {message}")
        need(line["nats_msg_id"] == f"created:{state['first_id']}", f"Nats-Msg-Id: {line}")
        need(isinstance(event["stream_seq"], int) and event["stream_seq"] > 0, f"seq: {event}")

    async def django_injects():
        cid = f"e2e-{tag}-injected"
        state["injected_cid"] = cid
        code, result = await inject(
            env,
            "--chat-id", str(state["chat_id"]),
            "--sender-id", "1",
            "--content", "hello from django",
            "--client-msg-id", cid,
        )  # fmt: skip
        need(code == 0, f"exit {code}: {result}")
        need(result["stream"].endswith("_IN") and not result["duplicate"], f"ack: {result}")
        need(result["nats_msg_id"] == f"msg:1:{cid}", f"Nats-Msg-Id: {result}")
        need(result["message"]["chat_id"] == state["chat_id"], f"outcome: {result}")
        state["injected_id"] = result["message"]["message_id"]

    async def socket_receives_injected():
        cid = state["injected_cid"]
        for user in (2, 1):  # the recipient, and the author's own (other) socket
            frame = await state[user].expect(
                "the injected new_message",
                lambda f: f["action"] == "new_message" and f["client_msg_id"] == cid,
            )
            need(frame["content"] == "hello from django", f"content: {frame}")
            need(frame["sender_id"] == 1, f"sender: {frame}")
            need(frame["message_id"] == state["injected_id"], f"id: {frame}")

    async def django_consumes_injected():
        line = await consumer.next(
            lambda l: l["event"]["type"] == "message_created"
            and l["event"]["message"]["client_msg_id"] == state["injected_cid"],
            "message_created for the injected message",
        )
        need(line["event"]["message"]["message_id"] == state["injected_id"], f"{line}")

    async def retry_is_deduplicated():
        cid = state["injected_cid"]
        code, result = await inject(
            env,
            "--chat-id", str(state["chat_id"]),
            "--sender-id", "1",
            "--content", "hello from django",
            "--client-msg-id", cid,
        )  # fmt: skip
        need(code == 0 and result["duplicate"], f"JetStream should report a duplicate: {result}")
        await state[2].expect_none(
            "second copy of the injected message",
            lambda f: f["action"] == "new_message" and f["client_msg_id"] == cid,
        )

    async def rejection_correlates():
        cid = f"e2e-{tag}-rejected"
        code, result = await inject(
            env,
            "--chat-id", "999999",
            "--sender-id", "1",
            "--content", "into the void",
            "--client-msg-id", cid,
        )  # fmt: skip
        need(code == 1, f"exit {code} (1 expected for a rejection): {result}")
        rejected = result.get("rejected") or {}
        need(rejected.get("command_id") == cid, f"command_id: {result}")
        need(rejected.get("code") == "not_found", f"code: {result}")
        line = await consumer.next(
            lambda l: l["event"]["type"] == "command_rejected"
            and l["event"]["command_id"] == cid,
            "command_rejected for the refused message",
        )
        need(line["subject"].endswith(".events.999999.command_rejected"), f"subject: {line}")

    async def durable_resumes():
        code = await consumer.stop()
        need(code == 0, f"consumer exit code {code} after SIGTERM")
        # Its last pull request lives on in the server for up to a second; an event handed to it
        # would come back only after ack_wait (30 s). Let it expire first.
        await asyncio.sleep(1.5)
        cid = f"e2e-{tag}-while-down"
        code, result = await inject(
            env,
            "--chat-id", str(state["chat_id"]),
            "--sender-id", "2",
            "--content", "sent while django was down",
            "--client-msg-id", cid,
        )  # fmt: skip
        need(code == 0, f"exit {code}: {result}")
        restarted = Consumer(env)
        state["consumer2"] = restarted
        ready = await restarted.start()
        need(ready["pending"] >= 1, f"the restarted durable has nothing pending: {ready}")
        seen = []
        line = await restarted.next(
            lambda l: seen.append(l) or (
                l["event"]["type"] == "message_created"
                and l["event"]["message"]["client_msg_id"] == cid
            ),
            "the message sent while the consumer was down",
            timeout=WAIT + 30,  # covers one ack_wait, should the event still hit a stale pull
        )
        need(line["event"]["message"]["sender_id"] == 2, f"{line}")
        earlier = [
            l["event"]["message"]["message_id"]
            for l in seen
            if l["event"]["type"] == "message_created"
            and l["event"]["message"]["message_id"] < line["event"]["message"]["message_id"]
        ]
        need(not earlier, f"acked messages delivered again: {earlier}")

    async def offline_member_is_pushed_once():
        # User 3 has no socket: jetchat's scanner finds the message undelivered after PUSH_AFTER
        # (2 s here) and Django is told once; users 1 and 2, online, never are.
        cid = f"e2e-{tag}-for-offline"
        alice = state[1]
        await alice.send(
            {"action": "send_message", "receiver_id": 3, "content": "are you there?",
             "client_msg_id": cid}
        )  # fmt: skip
        ack = await alice.expect(
            "message_ack", lambda f: f["action"] == "message_ack" and f["client_msg_id"] == cid
        )
        consumer2 = state["consumer2"]
        line = await consumer2.next(
            lambda l: l["event"]["type"] == "push_needed",
            "push_needed for the offline member",
            timeout=WAIT + 30,  # PUSH_AFTER and a scan round
        )
        event = line["event"]
        need(event["user_id"] == 3, f"the push is for user 3 only: {event}")
        need(event["chat_id"] == ack["chat_id"], f"chat: {event}")
        need(event["message_ids"] == [ack["message_id"]] and event["count"] == 1, f"{event}")
        need(event["first_message_id"] == ack["message_id"], f"{event}")
        need(line["subject"].endswith(f".events.{ack['chat_id']}.push_needed"), f"subject: {line}")
        need(
            line["nats_msg_id"] == f"push:{ack['chat_id']}:3:{ack['message_id']}",
            f"Nats-Msg-Id: {line}",
        )
        await consumer2.expect_none(
            lambda l: l["event"]["type"] == "push_needed",
            "second push_needed",
            quiet=QUIET * 3,  # a few scan rounds
        )

    async def login_tokens_carry_the_claims():
        # What /api/token/ issues (SimpleJWT's TOKEN_OBTAIN_SERIALIZER), for an unsaved user.
        from django.contrib.auth import get_user_model
        from jetchat_django.tokens import JetchatTokenObtainPairSerializer

        user = get_user_model()(pk=5, username="eve", first_name="Eve", last_name="Example")
        access = JetchatTokenObtainPairSerializer.get_token(user).access_token
        need(access["name"] == "Eve Example" and access["avatar"] == "", f"{access.payload}")

    async def claims_name_a_user():
        # User 1's socket shares a chat with user 2: a token of user 2 carrying the profile
        # claims names them in jetchat's directory as the socket opens.
        token = mint(2, "--name", "Bob Example", "--avatar", "https://cdn.example.com/bob.png")
        claims = jwt.decode(token, secret, algorithms=["HS256"])
        need(claims.get("name") == "Bob Example", f"name claim: {claims}")
        ws = await websockets.connect(f"{ws_url}?token={token}", open_timeout=WAIT)
        sockets.append(ws)
        deadline = time.monotonic() + WAIT
        while True:
            seen = await users_seen(jetchat_url, state["tokens"][1], [2])
            if seen.get(2, {}).get("display_name") == "Bob Example":
                break
            need(time.monotonic() < deadline, f"user 1 does not see the claimed name: {seen}")
            await asyncio.sleep(0.2)
        need(seen[2]["avatar_url"] == "https://cdn.example.com/bob.png", f"{seen}")

    async def upsert_user_renames():
        code, out, err = await manage(
            env, "upsert_user", "--user-id", "1", "--name", f"Alice {tag}",
            "--avatar", "https://cdn.example.com/alice.png",
        )  # fmt: skip
        need(code == 0, f"upsert_user exited {code}: {out} {err}")
        need(json.loads(out.strip().splitlines()[-1])["outcome"] == "applied", out)
        frame = await state[2].expect(
            "user_updated",
            lambda f: f["action"] == "user_updated" and f["user"]["user_id"] == 1,
        )
        need(frame["user"]["display_name"] == f"Alice {tag}", f"{frame}")
        seen = await users_seen(jetchat_url, state["tokens"][2], [1, 2, 99])
        need(seen[1]["display_name"] == f"Alice {tag}", f"{seen}")
        need(99 not in seen, f"a user who shares no chat is not shown: {seen}")
        # An older change is applied as a no-op; a bad URL is refused with its code.
        code, out, _ = await manage(
            env, "upsert_user", "--user-id", "1", "--name", "Old Alice",
            "--updated-at", "2000-01-01T00:00:00Z",
        )  # fmt: skip
        need(code == 0, f"an older update is applied: {out}")
        code, out, err = await manage(
            env, "upsert_user", "--user-id", "1", "--name", "Alice", "--avatar", "javascript:x"
        )
        need(code == 1 and "invalid_avatar_url" in out + err, f"exit {code}: {out} {err}")
        seen = await users_seen(jetchat_url, state["tokens"][2], [1])
        need(seen[1]["display_name"] == f"Alice {tag}", f"{seen}")

    try:
        await run.check("Django mints SimpleJWT access tokens for users 1 and 2", tokens)
        await run.check("the durable consumer 'django' starts on CHAT_EVENTS", consumer_starts)
        await run.check("both users connect to jetchat with Django's tokens", sockets_connect)
        await run.check("user 1 sends a private message to user 2 (accepted, acked)", private_message)
        await run.check("user 2 receives it as new_message", bob_receives)
        await run.check("Django's consumer receives message_created", django_consumes_it)
        await run.check("Django injects a message into the chat as user 1", django_injects)
        await run.check("the sockets receive the injected message", socket_receives_injected)
        await run.check("Django's consumer receives the injected message_created", django_consumes_injected)
        await run.check("a retry with the same Nats-Msg-Id is stored once", retry_is_deduplicated)
        await run.check("a refused command comes back as command_rejected with its id", rejection_correlates)
        await run.check("a restarted durable consumer gets what it missed, nothing twice", durable_resumes)
        await run.check("an offline member's message comes to Django as push_needed, once", offline_member_is_pushed_once)
        await run.check("login tokens carry the name and avatar claims", login_tokens_carry_the_claims)
        await run.check("a token's name and avatar claims name its user in jetchat", claims_name_a_user)
        await run.check("Django's upsert_user renames a user; the co-member's socket is told", upsert_user_renames)
    finally:
        for ws in sockets:
            await ws.close()
        await consumer.stop()
        if "consumer2" in state:
            await state["consumer2"].stop()

    summary = f"{run.passed} passed, {run.failed} failed"
    if run.skipped:
        summary += f", {run.skipped} skipped"
    print(summary, flush=True)
    return 0 if run.failed == 0 and run.skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
