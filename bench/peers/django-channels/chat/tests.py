"""Unit tests of the pure parts (frames, decoding): `python -m unittest chat.tests` (no
database, no Redis)."""

import datetime
import json
import unittest
from types import SimpleNamespace

from . import frames

WHEN = datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc)


def message(**fields):
    base = dict(
        id=42, chat_id=7, sender_id=1, content='a "quoted" word', content_type="text",
        file_url=None, client_msg_id="c1", created_at=WHEN,
    )
    return SimpleNamespace(**{**base, **fields})


class FramesTest(unittest.TestCase):
    def test_new_message_has_jetchats_fields(self):
        frame = json.loads(frames.encode(frames.new_message(message(), receiver_id=2)))
        self.assertEqual(
            frame,
            {
                "action": "new_message", "message_id": 42, "chat_id": 7, "sender_id": 1,
                "receiver_id": 2, "content": 'a "quoted" word', "content_type": "text",
                "file_url": None, "client_msg_id": "c1",
                "timestamp": "2026-11-24T10:00:00.000000+00:00", "status": "sent",
            },
        )

    def test_ack_and_accepted_name_the_client_msg_id(self):
        ack = frames.message_ack(message())
        self.assertEqual((ack["action"], ack["client_msg_id"], ack["message_id"]),
                         ("message_ack", "c1", 42))
        self.assertEqual(frames.message_accepted("c1", 7),
                         {"action": "message_accepted", "client_msg_id": "c1", "chat_id": 7})

    def test_errors_repeat_detail_and_carry_the_send(self):
        frame = frames.error("forbidden", "no", client_msg_id="c1")
        self.assertEqual(frame["error"], "no")
        self.assertEqual(frame["client_msg_id"], "c1")
        self.assertNotIn("client_msg_id", frames.error("forbidden", "no"))

    def test_group_names_are_valid_channel_layer_names(self):
        # Channels allows ASCII alphanumerics, hyphens, underscores and periods, < 100 chars.
        for name in (frames.chat_group(2**62), frames.user_group(2**62)):
            self.assertRegex(name, r"^[a-zA-Z\d\-_.]{1,99}$")


class ConsumerDecodingTest(unittest.TestCase):
    def test_a_frame_that_is_not_json_decodes_to_nothing(self):
        import asyncio
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerchat.settings")
        django.setup()  # no database is opened: decoding needs none
        from .consumers import ChatConsumer

        self.assertIsNone(asyncio.run(ChatConsumer.decode_json("{not json")))
        self.assertEqual(asyncio.run(ChatConsumer.decode_json('{"action":"ping"}')),
                         {"action": "ping"})


if __name__ == "__main__":
    unittest.main()
