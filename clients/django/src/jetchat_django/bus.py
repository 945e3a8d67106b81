"""The process's NATS connection for commands: one per process, shared by sync and async code.

A background thread runs an event loop that owns the connection, so a sync view (WSGI, a
management command, a Celery task) and an async one (ASGI) publish through the same connection
without opening one per call. After a fork (gunicorn's pre-loading) the child opens its own.
The event consumer (``consumer.py``) has a connection of its own.
"""

import asyncio
import logging
import os
import threading
from concurrent.futures import Future

import nats

from .conf import jetchat_settings
from .errors import NotPublished

logger = logging.getLogger("jetchat_django.nats")


async def _log_error(error: Exception):
    logger.warning("NATS: %r", error)


async def connect(name: str) -> nats.NATS:
    """A connection with the settings' URL(s) and inbox prefix; once connected it reconnects
    for ever (the first connection too keeps trying: bound it with ``asyncio.wait_for``)."""
    conf = jetchat_settings()
    return await nats.connect(
        servers=conf.servers,
        name=name,
        inbox_prefix=conf.INBOX_PREFIX,
        connect_timeout=5,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        error_cb=_log_error,
    )


class _Loop:
    """An event loop in a daemon thread, with the connection it owns."""

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.nc: nats.NATS | None = None
        self.lock: asyncio.Lock | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="jetchat-nats",
                                       daemon=True)
        self.thread.start()

    def submit(self, coroutine) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def connection(self) -> nats.NATS:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.nc is None or self.nc.is_closed:
                conf = jetchat_settings()
                # A command must not wait for ever for a NATS that is not there.
                limit = conf.PUBLISH_TIMEOUT * conf.PUBLISH_ATTEMPTS
                try:
                    self.nc = await asyncio.wait_for(connect(name=f"django-{os.getpid()}"), limit)
                except (asyncio.TimeoutError, OSError, nats.errors.Error) as error:
                    raise NotPublished(f"cannot connect to NATS at {_redacted(conf.servers)} "
                                       f"within {limit:g} s ({error!r})") from error
            return self.nc

    async def close(self):
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()
        self.nc = None


def _redacted(servers: list[str]) -> str:
    """The URLs without their passwords, for messages and logs."""
    from urllib.parse import urlsplit

    shown = []
    for url in servers:
        parts = urlsplit(url)
        host = parts.hostname or ""
        shown.append(f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}")
    return ", ".join(shown)


_state_lock = threading.Lock()
_state: _Loop | None = None


def _current() -> _Loop:
    global _state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():
            _state = _Loop()
        return _state


def run_sync(make_coroutine, timeout: float | None = None):
    """Runs ``make_coroutine(nc)`` on the shared connection; blocks for its result."""
    state = _current()

    async def call():
        return await make_coroutine(await state.connection())

    return state.submit(call()).result(timeout)


async def run_async(make_coroutine):
    """The same from async code: awaits the result without blocking the caller's loop."""
    state = _current()

    async def call():
        return await make_coroutine(await state.connection())

    return await asyncio.wrap_future(state.submit(call()))


def close():
    """Drains and closes the shared connection (tests, or a worker shutting down)."""
    global _state
    with _state_lock:
        state, _state = _state, None
    if state is not None and state.pid == os.getpid():
        state.submit(state.close()).result(10)
        state.loop.call_soon_threadsafe(state.loop.stop)
        state.thread.join(5)
