"""Receivers that run once per event, however often the event is delivered.

An event can come twice (a redelivery after a crash or a failure, or jetchat announcing a fact
again after two minutes; docs/events.md, "Delivery guarantees"). ``once`` records the event's id
in the same database transaction as the receiver's own writes, so either both happen or
neither: a receiver that raises leaves no record, and the redelivered event runs it again.
"""

import functools
import hashlib
import inspect

from django.db import transaction

from .signals import EventMeta


def event_key(receiver_name: str, meta: EventMeta) -> str:
    """One row per receiver and event: two receivers of one event are independent."""
    key = f"{receiver_name}:{meta.event_id}"
    if len(key) > 255:
        key = f"{receiver_name[:150]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def once(receiver=None, *, using: str | None = None):
    """Decorates a sync receiver to run at most once per event (by its ``Nats-Msg-Id``).

    ::

        @receiver(signals.message_created)
        @once
        def on_message(sender, event, meta, **kwargs):
            ...  # in a transaction; runs once per event
    """

    def decorate(function):
        if inspect.iscoroutinefunction(function):
            raise TypeError("once() wraps sync receivers (it runs them in a transaction)")
        name = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def wrapper(*args, meta: EventMeta, **kwargs):
            from .models import HandledEvent

            with transaction.atomic(using=using):
                _, created = HandledEvent.objects.using(using).get_or_create(
                    key=event_key(name, meta))
                if not created:
                    return None
                return function(*args, meta=meta, **kwargs)

        return wrapper

    return decorate(receiver) if receiver is not None else decorate
