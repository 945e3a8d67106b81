"""`manage.py inject_message`: posts a message into a chat as a user (a bot, a notification,
moderation), through jetchat's command stream, exactly as a socket's message flows.

Built on jetchat_django: ``build_send_message`` makes the command (its ``Nats-Msg-Id`` is
``msg:<sender_id>:<client_msg_id>``), ``publish`` sends it through JetStream. With ``--wait``
it also watches the events for the outcome, which a view would rather leave to the
``message_created`` signal.

Exit status: 0 when JetStream stored the command (and, with --wait, jetchat persisted it);
1 when jetchat rejected it (--wait); 2 when it could not be published or no outcome came in time.
"""

import asyncio
import json

from django.core.management.base import BaseCommand, CommandError

from jetchat_django import bus
from jetchat_django.commands import NotPublished, build_send_message, publish
from jetchat_django.conf import jetchat_settings
from jetchat_django.subjects import Subjects


class Command(BaseCommand):
    help = "Publish a send_message command to chat.in.<chat_id>.message and wait for JetStream's ack."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--chat-id", type=int, help="a chat the sender belongs to")
        target.add_argument("--receiver-id", type=int,
                            help="a private message instead (the chat is created on first use)")
        parser.add_argument("--sender-id", type=int, required=True)
        parser.add_argument("--content", required=True)
        parser.add_argument("--content-type", default="text",
                            choices=["text", "audio", "video", "image", "file"])
        parser.add_argument("--file-url", default=None)
        parser.add_argument("--client-msg-id", default=None,
                            help="idempotency key; reuse it to retry safely (default: a new UUID)")
        parser.add_argument("--wait", action="store_true",
                            help="also wait for the outcome event: message_created or command_rejected")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        result = asyncio.run(self.inject(**options))
        if options["json"]:
            self.stdout.write(json.dumps(result, separators=(",", ":")))
        else:
            self.stdout.write(describe(result))
        if result.get("rejected"):
            raise CommandError(f"rejected: {result['rejected']['code']}", returncode=1)

    async def inject(self, *, chat_id, receiver_id, sender_id, content, content_type, file_url,
                     client_msg_id, wait, timeout, **_) -> dict:
        command = build_send_message(sender_id=sender_id, chat_id=chat_id, receiver_id=receiver_id,
                                     content=content, content_type=content_type,
                                     file_url=file_url, client_msg_id=client_msg_id)
        try:
            nc = await bus.connect(name="django-inject")
        except Exception as error:  # noqa: BLE001
            raise CommandError(f"cannot connect to NATS: {error}", returncode=2) from error
        try:
            outcome = None
            if wait:
                # Subscribed before publishing, so the outcome cannot slip past.
                outcome = asyncio.get_running_loop().create_future()
                await watch(nc, command, sender_id, outcome)
            try:
                published = await publish(nc, command)
            except NotPublished as error:
                raise CommandError(f"{error}; retry with --client-msg-id {command.command_id}",
                                   returncode=2) from error
            result = {
                "subject": published.subject,
                "client_msg_id": published.command_id,
                "nats_msg_id": published.nats_msg_id,
                "stream": published.stream,
                "seq": published.seq,
                "duplicate": published.duplicate,
            }
            if outcome is not None:
                if published.duplicate:
                    # JetStream kept the first copy: jetchat does not see this one at all.
                    result["note"] = "duplicate within the 2-minute window: nothing new to wait for"
                    return result
                try:
                    kind, event = await asyncio.wait_for(outcome, timeout)
                except asyncio.TimeoutError as error:
                    raise CommandError(f"accepted (seq {published.seq}) but no outcome within "
                                       f"{timeout} s", returncode=2) from error
                if kind == "message_created":
                    result["message"] = event["message"]
                else:
                    result["rejected"] = event
            return result
        finally:
            await nc.drain()


async def watch(nc, command, sender_id, outcome):
    """Core NATS taps on message_created and command_rejected, for this one command."""
    client_msg_id = command.command_id

    async def on_event(msg):
        if outcome.done():
            return
        event = json.loads(msg.data)
        if event.get("type") == "message_created":
            m = event["message"]
            if m["sender_id"] == sender_id and m["client_msg_id"] == client_msg_id:
                outcome.set_result(("message_created", event))
        elif event.get("type") == "command_rejected":
            # A message's rejection carries its client_msg_id as command_id.
            if event["command"] == "send_message" and event["command_id"] == client_msg_id:
                outcome.set_result(("command_rejected", event))

    subjects = Subjects(jetchat_settings().SUBJECT_PREFIX)
    await nc.subscribe(subjects.events_of_type("message_created"), cb=on_event)
    await nc.subscribe(subjects.events_of_type("command_rejected"), cb=on_event)
    await nc.flush()


def describe(result: dict) -> str:
    line = (
        f"accepted by {result['stream']} as #{result['seq']}"
        f"{' (duplicate: already stored)' if result['duplicate'] else ''}, "
        f"client_msg_id {result['client_msg_id']}"
    )
    if "message" in result:
        m = result["message"]
        line += f"; persisted as message {m['message_id']} in chat {m['chat_id']}"
    if "rejected" in result:
        r = result["rejected"]
        line += f"; rejected: {r['code']}: {r['detail']}"
    if "note" in result:
        line += f"; {result['note']}"
    return line
