"""`manage.py jetchat_events`: jetchat's events as Django signals, from a durable consumer.

Run one (or several, on the same durable) per deployment, under a process manager. SIGTERM or
Ctrl-C finishes the event in hand, acknowledges it and exits 0. At the end it says how many
events it handled and how many it parked (given up on after ``PARK_AFTER`` deliveries).
"""

import asyncio
import json
import signal

from django.core.management.base import BaseCommand

from jetchat_django.conf import jetchat_settings
from jetchat_django.consumer import Consumer, Handled


class Command(BaseCommand):
    help = "Consume CHAT_EVENTS with a durable JetStream consumer and send a signal per event."

    def add_arguments(self, parser):
        parser.add_argument("--durable", default=None,
                            help="consumer name (default JETCHAT['DURABLE'])")
        parser.add_argument("--start", choices=["all", "new"], default=None,
                            help="where a NEW durable starts (default JETCHAT['START']); an "
                                 "existing one resumes where it stopped")
        parser.add_argument("--batch", type=int, default=10, help="events per pull")
        parser.add_argument("--max-events", type=int, default=None,
                            help="stop after this many deliveries")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help="one JSON object a line")

    def handle(self, *args, durable, start, batch, max_events, as_json, **options):
        self.as_json = as_json
        stats = asyncio.run(self.consume(durable, start, batch, max_events))
        summary = {"handled": stats.handled, "retried": stats.retried, "parked": stats.parked,
                   "skipped": stats.skipped}
        if as_json:
            self.emit(json.dumps({"done": True, **summary, "parked_ids": stats.parked_ids}))
        else:
            self.emit(f"handled {stats.handled}, retried {stats.retried}, parked {stats.parked}"
                      f", skipped {stats.skipped}")
        if stats.parked:
            self.stderr.write(f"parked {stats.parked} event(s): {', '.join(stats.parked_ids)} "
                              "(logged with their payloads on 'jetchat_django.events')")

    def emit(self, line: str):
        self.stdout.write(line)
        self.stdout.flush()

    async def consume(self, durable, start, batch, max_events):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        consumer = Consumer(durable=durable, start=start, batch=batch, max_events=max_events,
                            stop=stop, report=self.report)
        run = asyncio.create_task(consumer.run())
        ready = asyncio.create_task(consumer.ready.wait())
        await asyncio.wait([run, ready], return_when=asyncio.FIRST_COMPLETED)
        if consumer.ready.is_set():
            conf = jetchat_settings()
            stream = consumer.subjects.events_stream
            if self.as_json:
                self.emit(json.dumps({"ready": True, "durable": consumer.durable, "stream": stream,
                                      "pending": consumer.pending_at_start}))
            else:
                self.emit(f"consuming {consumer.subjects.all_events} as durable "
                          f"{consumer.durable!r} on {stream} ({consumer.pending_at_start} events "
                          f"waiting; parked after {conf.PARK_AFTER} deliveries)")
        ready.cancel()
        return await run

    def report(self, handled: Handled):
        meta = handled.meta
        if self.as_json:
            self.emit(json.dumps({
                "stream_seq": meta.stream_seq, "subject": meta.subject,
                "nats_msg_id": meta.nats_msg_id, "num_delivered": meta.num_delivered,
                "result": handled.result, "error": handled.error, "event": handled.event,
            }, separators=(",", ":")))
        else:
            kind = (handled.event or {}).get("type")
            line = f"#{meta.stream_seq} {meta.subject} {kind}: {handled.result}"
            if handled.error:
                line += f" ({handled.error})"
            self.emit(line)
