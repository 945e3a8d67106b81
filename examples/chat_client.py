#!/usr/bin/env python3
"""A tiny interactive jetchat client: prints every frame, sends what you type.

    python3 examples/chat_client.py TOKEN [ws://127.0.0.1:8000/ws/chat]

A development token for user 1: `target/release/jetchat token 1` (signed with JWT_SECRET).

Type a line to send:
    @<user> <text>    a private message to that user id, e.g. "@2 hello" (creates the chat)
    #<chat> <text>    a message to a chat you are a member of, e.g. "#7 hello team"
    !read <id>        mark message <id> read ("!delivered <id>" marks it delivered)
    {"action": ...}   any raw JSON frame (docs/protocol.md)

Ctrl-C or Ctrl-D quits; when the server closes the socket the client says why and exits.
"""
import asyncio
import base64
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

# The close codes of docs/protocol.md.
CLOSE_CODES = {
    1000: "closed normally",
    1001: "the server is shutting down; reconnect (to another instance)",
    1006: "the connection dropped without a close frame",
    1009: "a frame was over MAX_FRAME_BYTES",
    4001: "the token expired; reconnect with a new one",
    4008: "too many undelivered frames (slow consumer); reconnect and read history",
    4029: "too many frames over the rate limit",
}


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
    raise ValueError("start with @<user id>, #<chat id>, !read <id>, !delivered <id> or {json}")


def user_of(token: str):
    """The token's user id (read, not verified: the server does that), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["user_id"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def hint(me):
    if me is None:
        return "type @<user id> <text> to write to a user, #<chat id> <text> to a chat"
    other = 2 if me == 1 else 1
    return (f"you are user {me}; type @{other} hello to write to user {other}, "
            f"#<chat id> <text> to a chat, !read <message id> to mark one read")


async def stdin_lines():
    """Lines of stdin without a blocking thread, so quitting never waits for Enter."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode(errors="replace").strip()


async def main(token: str, url: str) -> int:
    try:
        ws = await websockets.connect(f"{url}?token={token}")
    except InvalidStatus as refused:
        body = refused.response.body.decode(errors="replace")
        print(f"! the server refused the socket: HTTP {refused.response.status_code} {body}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"! cannot reach {url}: {error}", file=sys.stderr)
        return 1
    print(f"connected to {url}; {hint(user_of(token))}", flush=True)

    async def show():
        try:
            async for message in ws:
                print("<", message, flush=True)
        except ConnectionClosed:
            pass

    async def type_lines():
        async for line in stdin_lines():
            if not line:
                continue
            try:
                await ws.send(json.dumps(frame_for(line)))
            except ValueError as error:
                print("!", error, flush=True)
            except ConnectionClosed:
                return

    reading = asyncio.create_task(show())
    typing = asyncio.create_task(type_lines())
    try:
        await asyncio.wait([reading, typing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        typing.cancel()
        if not reading.done():
            await ws.close()  # Ctrl-D or Ctrl-C: close properly
        reading.cancel()
    code = ws.close_code if ws.close_code is not None else 1006
    why = CLOSE_CODES.get(code, "")
    reason = f" ({ws.close_reason})" if ws.close_reason else ""
    print(f"socket closed: {code} {why}{reason}", flush=True)
    return 0 if code in (1000, 1001) else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "ws://127.0.0.1:8000/ws/chat")))
    except KeyboardInterrupt:
        print("\nbye", flush=True)
        sys.exit(130)
