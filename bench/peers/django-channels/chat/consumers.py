"""The WebSocket consumer of /ws/chat: the subset of jetchat's protocol that jetchat-load's
`pairs` and `fanout` speak (send_message, acknowledge/read/delivered, ping), written the way
the Channels tutorial writes a chat: one AsyncJsonWebsocketConsumer per socket, the ORM through
database_sync_to_async, group_send to the chat's group."""

import os
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import frames, store

MAX_CONTENT_CHARS = 10_000
CONTENT_TYPES = {"text", "audio", "video", "image", "file"}

# database_sync_to_async runs every ORM call of a process in one thread by default
# (thread_sensitive, what Django and Channels advise). PEER_THREAD_SENSITIVE=0 runs them on a
# thread pool instead, each thread with its own pooled connection: an experiment of run.sh
# (BENCHMARKS.md), not the peer as measured.
THREAD_SENSITIVE = os.environ.get("PEER_THREAD_SENSITIVE", "1") != "0"
memberships = database_sync_to_async(store.memberships, thread_sensitive=THREAD_SENSITIVE)
store_message = database_sync_to_async(store.store_message, thread_sensitive=THREAD_SENSITIVE)
mark = database_sync_to_async(store.mark, thread_sensitive=THREAD_SENSITIVE)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user_id = self.scope.get("user_id")
        if self.user_id is None:
            await self.close()  # refused before the upgrade: HTTP 403
            return
        # {chat_id: the other member of a private chat, or None}
        self.chats = await memberships(self.user_id)
        self.groups_joined = [frames.user_group(self.user_id)]
        self.groups_joined += [frames.chat_group(chat_id) for chat_id in self.chats]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    @classmethod
    async def decode_json(cls, text_data):
        """A frame that is not JSON is answered like an unknown action, not a crash."""
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        if action == "send_message":
            await self.send_message(content)
        elif action in ("acknowledge", "read", "delivered"):
            await self.mark(content, read=action != "delivered")
        elif action == "ping":
            await self.send_json({"action": "pong"})
        else:
            await self.send_json(frames.error("unknown_action", f"unknown action {action!r}"))

    async def send_message(self, content):
        client_msg_id = content.get("client_msg_id") or str(uuid.uuid4())
        chat_id = content.get("chat_id")
        text = content.get("content")
        content_type = content.get("content_type") or "text"
        refusal = None
        if not isinstance(client_msg_id, str) or len(client_msg_id) > 64:
            refusal = ("invalid_field", "client_msg_id must be 1 to 64 characters")
        elif not isinstance(chat_id, int) or chat_id not in self.chats:
            refusal = ("forbidden", "you are not a member of this chat")
        elif not isinstance(text, str) or not text.strip() or len(text) > MAX_CONTENT_CHARS:
            refusal = ("invalid_field", f"content must be 1 to {MAX_CONTENT_CHARS} characters")
        elif content_type not in CONTENT_TYPES:
            refusal = ("invalid_field", "unknown content_type")
        if refusal is not None:
            client_msg_id = client_msg_id if isinstance(client_msg_id, str) else None
            await self.send_json(frames.error(*refusal, client_msg_id=client_msg_id))
            return
        message, created = await store_message(
            chat_id, self.user_id, text, content_type, content.get("file_url"), client_msg_id
        )
        # The row is committed: the message is durable from here on.
        await self.send_json(frames.message_accepted(client_msg_id, message.chat_id))
        await self.send_json(frames.message_ack(message))
        if created:
            frame = frames.new_message(message, self.chats.get(message.chat_id))
            # Encoded once here, not once per member in the handler.
            await self.channel_layer.group_send(
                frames.chat_group(message.chat_id),
                {"type": "chat.frame", "text": frames.encode(frame), "origin": self.channel_name},
            )

    async def mark(self, content, read):
        message_id = content.get("message_id")
        if not isinstance(message_id, int):
            await self.send_json(frames.error("invalid_field", "message_id must be an integer"))
            return
        marked = await mark(self.user_id, message_id, read)
        if marked is None:
            return  # not a message of another member, or the watermark was past it: no news
        chat_id, author_id = marked
        status = "read" if read else "delivered"
        frame = frames.status_update(message_id, chat_id, self.user_id, status)
        await self.channel_layer.group_send(
            frames.user_group(author_id),
            {"type": "chat.frame", "text": frames.encode(frame), "origin": None},
        )

    # Channel-layer events.

    async def chat_frame(self, event):
        """A frame for every socket of the group but the one it came from."""
        if event["origin"] != self.channel_name:
            await self.send(text_data=event["text"])

    async def chat_joined(self, event):
        """A chat this user is now a member of (created after the socket opened)."""
        chat_id = event["chat_id"]
        if chat_id not in self.chats:
            self.chats[chat_id] = event["receivers"].get(str(self.user_id))
            group = frames.chat_group(chat_id)
            self.groups_joined.append(group)
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send(text_data=event["text"])
