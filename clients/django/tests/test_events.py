"""Events as signals: one signal per event, once; a failing receiver's event comes again, then is
parked; ``once`` runs a receiver once per event; the command stops cleanly on SIGTERM."""

import asyncio
import io
import os
import signal
import threading
import time
import uuid

import pytest
from django.core.management import call_command

import jetchat_django as jetchat
from jetchat_django import signals
from jetchat_django.consumer import Consumer
from jetchat_django.idempotency import once
from jetchat_django.models import HandledEvent

from .conftest import QUIET, WAIT


class Receiver:
    """A receiver that records what it was sent and can be told to fail."""

    def __init__(self, fail=lambda event, meta: False, pause=0.0):
        self.calls = []
        self.fail = fail
        self.pause = pause
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, sender, event, meta, **kwargs):
        self.started.set()
        time.sleep(self.pause)
        with self.lock:
            self.calls.append((sender, event, meta))
        if self.fail(event, meta):
            raise RuntimeError(f"refusing {meta.event_id} on delivery {meta.num_delivered}")

    def wait_for(self, predicate, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [c for c in self.calls if predicate(c[1])]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} calls expected, saw {len(found)}")

    def of(self, predicate):
        with self.lock:
            return [c for c in self.calls if predicate(c[1])]


@pytest.fixture
def connect():
    """Connects receivers for the test only."""
    connected = []

    def connect_(signal_, receiver):
        signal_.connect(receiver, weak=False)
        connected.append((signal_, receiver))
        return receiver

    yield connect_
    for signal_, receiver in connected:
        signal_.disconnect(receiver)


def group(creator, members, uid):
    return jetchat.create_chat(creator_id=creator, member_ids=members, name="Signals",
                               command_id=uid("create")).outcome["chat"]["chat_id"]


def is_message(client_msg_id):
    return lambda e: e.get("type") == "message_created" and \
        e["message"]["client_msg_id"] == client_msg_id


def test_each_event_type_fires_its_own_signal_once(server, events, connect, uid, user_ids):
    ann, bob, cat = user_ids(3)
    received = {kind: connect(signals.BY_TYPE[kind], Receiver()) for kind in signals.BY_TYPE}

    chat_id = group(ann, [bob], uid)
    jetchat.add_members(chat_id=chat_id, user_ids=[cat])
    jetchat.rename_chat(chat_id=chat_id, name="Renamed")
    message = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="hi",
                                   client_msg_id=uid("msg"))
    jetchat.delete_message(chat_id=chat_id, message_id=message.seq)
    jetchat.mute_chat(chat_id=chat_id, user_id=bob)
    jetchat.remove_members(chat_id=chat_id, user_ids=[cat])
    jetchat.upsert_user(user_id=ann, display_name=f"Ann {uid()}")
    jetchat.send_message(sender_id=ann, chat_id=987654321, content="nowhere",
                         client_msg_id=uid("refused"))
    expected = ["chat_created", "member_added", "chat_renamed", "message_created",
                "message_deleted", "chat_muted", "member_removed", "user_updated",
                "command_rejected"]
    events.wait_for(lambda e: e.get("type") == "command_rejected", "command_rejected")
    time.sleep(QUIET)

    for kind in expected:
        calls = received[kind].calls
        assert calls, f"no {kind} signal"
        ids = [meta.event_id for _, _, meta in calls]
        assert len(ids) == len(set(ids)), f"{kind} sent twice for one event: {ids}"
        for sender, event, _ in calls:
            assert sender == kind and event["type"] == kind and event["v"] == 1
    assert [e for _, e, _ in received["chat_created"].calls
            if e["chat"]["chat_id"] == chat_id][0]["chat"]["name"] == "Signals"
    # event_received saw each of them exactly once too.
    recorded = [s.meta.event_id for s in events.seen]
    assert len(recorded) == len(set(recorded))


def test_a_failing_receiver_gets_the_event_again_then_it_is_parked(server, events, connect, uid,
                                                                   user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    doomed, fine = uid("doomed"), uid("fine")
    receiver = connect(signals.message_created, Receiver(
        fail=lambda event, meta: event["message"]["client_msg_id"] == doomed))
    parked = connect(signals.event_parked, Receiver())

    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="boom", client_msg_id=doomed)
    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="ok", client_msg_id=fine)

    # PARK_AFTER = 3 in the test settings: delivered three times, then parked.
    calls = receiver.wait_for(is_message(doomed), count=3)
    parked.wait_for(lambda e: e is not None and is_message(doomed)(e))
    time.sleep(QUIET)
    assert [meta.num_delivered for _, _, meta in receiver.of(is_message(doomed))] == [1, 2, 3]
    assert len(receiver.of(is_message(fine))) == 1  # the next event was not held up for ever
    assert len(parked.calls) == 1
    _, _, meta = calls[0]
    assert events.consumer.stats.parked == 1
    assert events.consumer.stats.parked_ids == [meta.event_id]
    assert events.consumer.stats.retried == 2


def test_a_receiver_that_fails_once_is_retried_and_acked(server, events, connect, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    flaky = uid("flaky")
    receiver = connect(signals.message_created, Receiver(
        fail=lambda event, meta: event["message"]["client_msg_id"] == flaky
        and meta.num_delivered == 1))

    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="again", client_msg_id=flaky)

    receiver.wait_for(is_message(flaky), count=2)
    time.sleep(QUIET + 1)
    assert [m.num_delivered for _, _, m in receiver.of(is_message(flaky))] == [1, 2]
    assert events.consumer.stats.parked == 0


@pytest.mark.django_db(transaction=True)
def test_once_runs_a_receiver_once_per_event(server, events, connect, uid, user_ids):
    """A redelivered event (here: another receiver failed the first time) does not run a
    receiver wrapped in ``once`` twice; its row and its own writes commit together."""
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    target = uid("once")
    runs = []

    @once
    def count(sender, event, meta, **kwargs):
        if event["message"]["client_msg_id"] == target:
            runs.append(meta.num_delivered)

    connect(signals.message_created, count)
    other = connect(signals.message_created, Receiver(
        fail=lambda e, m: e["message"]["client_msg_id"] == target and m.num_delivered == 1))

    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="x", client_msg_id=target)

    other.wait_for(is_message(target), count=2)
    time.sleep(QUIET)
    assert runs == [1]
    assert HandledEvent.objects.filter(key__endswith=":" + other.of(is_message(target))[0][2]
                                       .event_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_once_leaves_no_record_when_its_receiver_fails(server, events, connect, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    target = uid("once-fails")
    runs = []

    @once
    def fails_first(sender, event, meta, **kwargs):
        if event["message"]["client_msg_id"] == target:
            runs.append(meta.num_delivered)
            if meta.num_delivered == 1:
                raise RuntimeError("not yet")

    connect(signals.message_created, fails_first)
    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="x", client_msg_id=target)

    deadline = time.monotonic() + WAIT
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(QUIET)
    assert runs == [1, 2]


def create_durable(name: str):
    """The durable a deployment's first run creates, made now so it sees what comes next."""

    async def create():
        from jetchat_django import bus

        nc = await bus.connect("test-durable")
        try:
            consumer = Consumer(durable=name, start="new")
            await nc.jetstream().add_consumer(consumer.subjects.events_stream, consumer.config())
        finally:
            await nc.close()

    asyncio.run(create())


def stop_when(condition, timeout=WAIT * 2):
    """SIGTERM to this process (as a process manager sends it) once ``condition()`` holds."""

    def watch():
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def test_the_command_says_how_many_it_parked(server, connect, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    durable = f"cmd-{uuid.uuid4().hex[:8]}"
    create_durable(durable)
    doomed = uid("doomed")
    parked = connect(signals.event_parked, Receiver())
    connect(signals.message_created, Receiver(
        fail=lambda event, meta: event["message"]["client_msg_id"] == doomed))
    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="boom", client_msg_id=doomed)
    stop_when(lambda: parked.calls)
    out, err = io.StringIO(), io.StringIO()

    call_command("jetchat_events", "--durable", durable, stdout=out, stderr=err)

    assert "parked after 3 deliveries" in out.getvalue().splitlines()[0]
    assert out.getvalue().splitlines()[-1].endswith("retried 2, parked 1, skipped 0")
    assert "parked 1 event(s)" in err.getvalue()


def test_sigterm_finishes_the_event_in_hand(server, connect, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    durable = f"term-{uuid.uuid4().hex[:8]}"
    create_durable(durable)
    slow_id = uid("slow")
    slow = connect(signals.message_created, Receiver(pause=2.0))
    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="slow", client_msg_id=slow_id)
    stop_when(lambda: slow.started.is_set())
    out = io.StringIO()

    call_command("jetchat_events", "--durable", durable, "--json", stdout=out)

    # The receiver was in hand when SIGTERM came: it finished and its event was acknowledged.
    assert len(slow.of(is_message(slow_id))) == 1
    assert '"result":"acked"' in out.getvalue()
    again = io.StringIO()
    stop_when(lambda: False, timeout=3)  # nothing should come: stop after 3 s
    call_command("jetchat_events", "--durable", durable, "--json", stdout=again)
    assert slow_id not in again.getvalue()
    assert len(slow.of(is_message(slow_id))) == 1


def publish_event(subject_tail: str, body: bytes):
    """An event written straight into CHAT_EVENTS, as no jetchat of today would write it."""

    async def put():
        from jetchat_django import bus

        nc = await bus.connect("test-odd-events")
        try:
            await nc.jetstream().publish(f"chat.events.{subject_tail}", body)
        finally:
            await nc.close()

    asyncio.run(put())


def test_an_unknown_contract_version_is_skipped_and_no_json_parked(server, events, connect):
    parked = connect(signals.event_parked, Receiver())
    created = connect(signals.message_created, Receiver())
    chat_id = 990000 + int(time.time()) % 10000

    publish_event(f"{chat_id}.message_created",
                  b'{"type":"message_created","v":2,"message":{"chat_id":%d}}' % chat_id)
    publish_event(f"{chat_id}.message_created", b"not json")

    parked.wait_for(lambda event: event is None)
    time.sleep(QUIET)
    assert events.consumer.stats.skipped == 1  # v 2: acknowledged, no signal
    assert events.consumer.stats.parked == 1  # no JSON: nothing could ever read it
    assert parked.calls[0][2].num_delivered == 1
    assert not created.of(lambda e: e["message"].get("chat_id") == chat_id)
    assert not events.matching(lambda e: e.get("message", {}).get("chat_id") == chat_id)
