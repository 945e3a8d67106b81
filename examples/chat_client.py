#!/usr/bin/env python3
"""A tiny interactive jetchat client: prints every frame, sends what you type.

    python3 examples/chat_client.py TOKEN [ws://127.0.0.1:8000/ws/chat]

Type a line to send:
    @2 hello          a private message to user 2 (creates the chat on first use)
    #7 hello          a message to chat 7
    !read 42          mark message 42 read ("!delivered 42" marks it delivered)
    {"action": ...}   any raw JSON frame
"""
import asyncio
import json
import sys

import websockets


def frame_for(line: str):
    if line.startswith("{"):
        return json.loads(line)
    if line.startswith("@") or line.startswith("#"):
        target, _, content = line[1:].partition(" ")
        key = "receiver_id" if line[0] == "@" else "chat_id"
        return {"action": "send_message", key: int(target), "content": content, "content_type": "text"}
    if line.startswith("!"):
        action, _, message_id = line[1:].partition(" ")
        return {"action": "acknowledge" if action == "read" else action, "message_id": int(message_id)}
    raise ValueError("start with @user, #chat, !read, !delivered or {json}")


async def main(token: str, url: str):
    async with websockets.connect(f"{url}?token={token}") as ws:
        print(f"connected to {url}; type @2 hello, #7 hello or !read 42", flush=True)

        async def show():
            async for message in ws:
                print("<", message, flush=True)

        async def type_lines():
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    await ws.send(json.dumps(frame_for(line)))
                except ValueError as error:
                    print("!", error, flush=True)

        done, pending = await asyncio.wait(
            [asyncio.create_task(show()), asyncio.create_task(type_lines())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "ws://127.0.0.1:8000/ws/chat"))
