"""The durable consumer on ``CHAT_EVENTS``: pulls events, sends their signals, acks or retries.

``manage.py jetchat_events`` runs it; tests run it in a thread. Each event: its signals are sent
(``signals.py``); when every receiver returned, the event is acknowledged. When one raised, the
event is not: it is NAKed with the delay ``RETRY_DELAYS`` gives for its delivery count, and on
its ``PARK_AFTER``-th delivery it is parked instead (terminated, so never redelivered, logged
with its payload, and ``event_parked`` sent). A ``v`` this package does not know is logged and
acknowledged without signals (docs/events.md, "Versioning"). ``stop`` finishes the event in hand
and hands the rest of the batch back at once.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from . import bus, signals
from .version import CONTRACT_VERSION
from .conf import jetchat_settings
from .signals import EventMeta
from .subjects import Subjects

logger = logging.getLogger("jetchat_django.events")


@dataclass
class Stats:
    """What a run did."""

    handled: int = 0
    retried: int = 0
    parked: int = 0
    skipped: int = 0
    parked_ids: list = field(default_factory=list)


@dataclass
class Handled:
    """One event's fate, for the command's output."""

    meta: EventMeta
    event: dict | None
    result: str  # "acked", "retry", "parked", "skipped"
    error: str | None = None


class Consumer:
    """One durable pull consumer and the loop that feeds the signals."""

    def __init__(self, *, durable: str | None = None, start: str | None = None, batch: int = 10,
                 max_events: int | None = None, stop: asyncio.Event | None = None,
                 report=None):
        conf = jetchat_settings()
        self.conf = conf
        self.subjects = Subjects(conf.SUBJECT_PREFIX)
        self.durable = durable or conf.DURABLE
        self.start = start or conf.START
        self.batch = batch
        self.max_events = max_events
        self.stop = stop or asyncio.Event()
        self.report = report or (lambda handled: None)
        self.stats = Stats()
        self.ready = asyncio.Event()
        self.pending_at_start: int | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            description="Django (jetchat-django): events as signals",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.conf.ACK_WAIT,
            deliver_policy=DeliverPolicy.ALL if self.start == "all" else DeliverPolicy.NEW,
            filter_subject=self.subjects.all_events,
            max_ack_pending=1000,
        )

    async def run(self) -> Stats:
        """Consumes until ``stop`` is set (or ``max_events`` events were seen)."""
        nc = await bus.connect(name=f"django-{self.durable}")
        try:
            js = nc.jetstream()
            # Creates the durable the first time, binds to it afterwards (its config is kept).
            sub = await js.pull_subscribe(self.subjects.all_events, durable=self.durable,
                                          stream=self.subjects.events_stream, config=self.config())
            self.pending_at_start = (await sub.consumer_info()).num_pending
            self.ready.set()
            seen = 0
            while not self.stop.is_set() and (self.max_events is None or seen < self.max_events):
                want = self.batch if self.max_events is None else min(self.batch,
                                                                      self.max_events - seen)
                try:
                    messages = await sub.fetch(want, timeout=1)
                except NatsTimeout:
                    continue
                except Exception as error:  # noqa: BLE001 - reconnecting, JetStream busy…
                    logger.warning("pull failed (%r); again in 1 s", error)
                    await asyncio.sleep(1)
                    continue
                for index, msg in enumerate(messages):
                    if self.stop.is_set():
                        # Not started: straight back to the stream for another worker or run.
                        for rest in messages[index:]:
                            await rest.nak()
                        break
                    seen += 1
                    self.report(await self.process(msg))
            await sub.unsubscribe()
        finally:
            # The last acks reach the server before the connection closes.
            await nc.drain()
        return self.stats

    async def process(self, msg) -> Handled:
        meta = EventMeta(
            subject=msg.subject,
            stream_seq=msg.metadata.sequence.stream,
            nats_msg_id=(msg.headers or {}).get("Nats-Msg-Id"),
            num_delivered=msg.metadata.num_delivered,
        )
        try:
            event = json.loads(msg.data)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            return await self.park(msg, meta, None, error)
        if event.get("v", 1) != CONTRACT_VERSION:
            logger.warning("skipped %s #%s: contract version %r (this package speaks %s)",
                           event.get("type"), meta.stream_seq, event.get("v"), CONTRACT_VERSION)
            await msg.ack()
            self.stats.skipped += 1
            return Handled(meta, event, "skipped")
        try:
            await self.dispatch(msg, event, meta)
        except Exception as error:  # noqa: BLE001 - any failure means "not handled"
            if meta.num_delivered >= self.conf.PARK_AFTER:
                return await self.park(msg, meta, event, error)
            delay = self.conf.retry_delay(meta.num_delivered)
            logger.warning("%s #%s (%s) failed on delivery %s: %r; again in %s s",
                           event.get("type"), meta.stream_seq, meta.event_id, meta.num_delivered,
                           error, delay, exc_info=error)
            await msg.nak(delay=delay)
            self.stats.retried += 1
            return Handled(meta, event, "retry", repr(error))
        await msg.ack()
        self.stats.handled += 1
        return Handled(meta, event, "acked")

    async def dispatch(self, msg, event: dict, meta: EventMeta):
        """Sends the event's signals; keeps the event ours while slow receivers run."""

        async def keep_alive():
            while True:
                await asyncio.sleep(max(self.conf.ACK_WAIT / 3, 0.5))
                await msg.in_progress()

        alive = asyncio.create_task(keep_alive())
        try:
            await sync_to_async(close_old_connections)()
            kind = event.get("type")
            await signals.event_received.asend(sender=kind, event=event, meta=meta)
            signal = signals.BY_TYPE.get(kind)
            if signal is not None:  # unknown types may come within a version: ignored
                await signal.asend(sender=kind, event=event, meta=meta)
        finally:
            alive.cancel()
            await sync_to_async(close_old_connections)()

    async def park(self, msg, meta: EventMeta, event: dict | None, error: Exception) -> Handled:
        logger.error("parked %s #%s (%s) after %s deliveries: %r; payload: %s",
                     (event or {}).get("type"), meta.stream_seq, meta.event_id,
                     meta.num_delivered, error, msg.data[:4096].decode(errors="replace"))
        await msg.term()
        self.stats.parked += 1
        self.stats.parked_ids.append(meta.event_id)
        await signals.event_parked.asend_robust(sender=(event or {}).get("type"), event=event,
                                               meta=meta, error=error)
        return Handled(meta, event, "parked", repr(error))
