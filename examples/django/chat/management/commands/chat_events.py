"""`manage.py chat_events`: consumes jetchat's events with a durable JetStream consumer.

The consumer (named ``django`` by default) lives in NATS, not in this process: while this command
is stopped, CHAT_EVENTS keeps the events (7 days by default) and the consumer remembers what was
acknowledged, so the next run starts exactly where the last one stopped. Each event is handled
(chat/handlers.py), then acknowledged; an event whose handler fails is redelivered.
"""

import asyncio
import json
import signal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from chat import bus
from chat.handlers import Meta, handle

#: How long jetchat's events may wait unacknowledged before JetStream redelivers them.
ACK_WAIT_SECONDS = 30


class Command(BaseCommand):
    help = "Consume chat.events.> with a durable JetStream consumer, handle and ack each event."

    def add_arguments(self, parser):
        parser.add_argument(
            "--durable",
            default=settings.JETCHAT["DURABLE"],
            help="consumer name (default %(default)s); one per Django deployment",
        )
        parser.add_argument(
            "--start",
            choices=["all", "new"],
            default="all",
            help="where a NEW durable starts: every event CHAT_EVENTS keeps, or only new ones "
            "(an existing durable always resumes where it stopped)",
        )
        parser.add_argument("--batch", type=int, default=100, help="events per pull")
        parser.add_argument(
            "--max-events", type=int, default=None, help="stop after this many events"
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON object a line"
        )

    def handle(self, *args, **options):
        asyncio.run(self.consume(**options))

    def emit(self, text: str):
        self.stdout.write(text)
        self.stdout.flush()

    async def consume(self, *, durable, start, batch, max_events, as_json, **_):
        subjects = bus.subjects()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        nc = await bus.connect(name=f"django-{durable}")
        js = nc.jetstream()
        config = ConsumerConfig(
            durable_name=durable,
            description="Django: handles jetchat events",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            deliver_policy=DeliverPolicy.ALL if start == "all" else DeliverPolicy.NEW,
            filter_subject=subjects.all_events,
            max_ack_pending=1000,
        )
        # Creates the durable the first time, binds to it afterwards (its config is kept).
        sub = await js.pull_subscribe(
            subjects.all_events, durable=durable, stream=subjects.events_stream, config=config
        )
        info = await sub.consumer_info()
        ready = {
            "ready": True,
            "durable": durable,
            "stream": subjects.events_stream,
            "pending": info.num_pending,
        }
        self.emit(
            dumps(ready)
            if as_json
            else f"consuming {subjects.all_events} as durable {durable!r} on "
            f"{subjects.events_stream} ({info.num_pending} events waiting)"
        )

        handled = 0
        while not stop.is_set() and (max_events is None or handled < max_events):
            want = batch if max_events is None else min(batch, max_events - handled)
            try:
                messages = await sub.fetch(want, timeout=1)
            except NatsTimeout:
                continue  # nothing new; look at `stop` again
            except Exception as error:  # noqa: BLE001 - NATS reconnecting, JetStream busy...
                self.stderr.write(f"pull failed ({error!r}); retrying in 1 s")
                await asyncio.sleep(1)
                continue
            for msg in messages:
                handled += 1
                await self.process(msg, as_json)
        await sub.unsubscribe()
        await nc.flush(timeout=5)  # the last acks reach the server before the connection closes
        await nc.close()

    async def process(self, msg, as_json: bool):
        meta = Meta(
            subject=msg.subject,
            stream_seq=msg.metadata.sequence.stream,
            nats_msg_id=(msg.headers or {}).get("Nats-Msg-Id"),
            num_delivered=msg.metadata.num_delivered,
        )
        try:
            event = json.loads(msg.data)
        except ValueError:
            # Nothing will ever read it: stop redelivering it.
            self.stderr.write(f"undecodable event at {meta.subject} #{meta.stream_seq}")
            await msg.term()
            return
        try:
            line = await sync_to_async(handle)(event, meta)
        except Exception as error:  # noqa: BLE001 - any failure means "try again later"
            self.stderr.write(f"handling #{meta.stream_seq} failed ({error!r}); redelivery in 5 s")
            await msg.nak(delay=5)
            return
        await msg.ack()
        if as_json:
            self.emit(
                dumps(
                    {
                        "stream_seq": meta.stream_seq,
                        "subject": meta.subject,
                        "nats_msg_id": meta.nats_msg_id,
                        "num_delivered": meta.num_delivered,
                        "event": event,
                        "handled": line,
                    }
                )
            )
        else:
            self.emit(f"#{meta.stream_seq} {meta.subject}: {line}")


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))
