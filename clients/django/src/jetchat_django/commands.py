"""Commands from Django code, sync and async, each published to ``CHAT_IN`` through JetStream.

Every call returns once JetStream acknowledged the command (stored: jetchat will apply it) and
carries a ``Nats-Msg-Id`` (docs/events.md, "Headers"), so a retry is applied once: the call
itself retries a lost acknowledgement with the same id, and a caller that retries later passes
the same ``command_id`` (``client_msg_id`` for messages). Within JetStream's two-minute window a
repeat is dropped (``Published.duplicate``); after it, jetchat's database still applies a message,
a private chat or a group's creation once.

``wait=True`` also waits for jetchat's outcome on a ``reply_to`` inbox, for the commands that
have one (``create_chat`` → ``chat_ready``, ``mute_chat`` → ``muted``, the others → ``applied``
but ``rename_chat``, the receipts and Django's own ``add_members``/``remove_members``, those
without ``actor_id``: jetchat answers them only when it refuses them); a refusal raises
``CommandRejected``. A duplicate gets no outcome (JetStream dropped it before jetchat saw it),
except ``create_chat``'s: its chat is asked for again (below), so a retried call still learns
its chat.

Every command of docs/events.md that Django may send is here; ``delivered_marks``,
``push_due`` and ``register_upload`` are jetchat's own.
"""

import asyncio
import inspect
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from . import bus
from .conf import jetchat_settings
from .errors import CommandRejected, NoOutcome, NotPublished
from .schema import commands as schema
from .subjects import Subjects

#: What ``mute_chat(until=MUTED_FOREVER)`` stores: a mute that never ends.
MUTED_FOREVER = "9999-12-31T23:59:59Z"
#: Commands jetchat answers on ``reply_to`` when applied, so ``wait=True`` may wait for them
#: (docs/events.md, "Outcomes").
WAITABLE = {"create_chat", "delete_chat", "delete_message", "edit_message", "erase_user",
            "mute_chat", "pin_message", "react", "set_block", "set_member_role", "unreact",
            "update_chat", "upsert_user"}
#: Commands answered when applied only when a member acts (``actor_id``), not Django.
WAITABLE_WITH_ACTOR = {"add_members", "remove_members"}


def has_outcome(payload: dict) -> bool:
    """Whether jetchat answers this command on ``reply_to`` when it applies it."""
    kind = payload["type"]
    return kind in WAITABLE or (kind in WAITABLE_WITH_ACTOR and "actor_id" in payload)


@dataclass(frozen=True)
class Published:
    """A command JetStream stored."""

    subject: str
    #: Its ``Nats-Msg-Id``.
    nats_msg_id: str
    #: Its ``command_id`` (``client_msg_id`` for a message): pass it again to retry.
    command_id: str
    stream: str
    #: Its ``CHAT_IN`` sequence (a message's id, once stored).
    seq: int
    #: True when JetStream had it already (a retry within two minutes): nothing new happens.
    duplicate: bool
    #: jetchat's outcome with ``wait=True`` (``None`` for a duplicate, but for ``create_chat``).
    outcome: dict | None = None


@dataclass(frozen=True)
class Command:
    """A command ready to publish: where, what, and its idempotency key."""

    subject: str
    payload: dict
    nats_msg_id: str
    command_id: str

    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


def _subjects() -> Subjects:
    return Subjects(jetchat_settings().SUBJECT_PREFIX)


def _payload(kind: str, fields: dict[str, Any]) -> dict:
    """The JSON object: ``type``, ``v`` and the fields that are set (None means absent)."""
    return {"type": kind, "v": 1, **{k: v for k, v in fields.items() if v is not None}}


def _command(kind: str, subject: str, body: dict, command_id: str) -> Command:
    return Command(subject, _payload(kind, body), f"{kind}:{command_id}", command_id)


def _new_id() -> str:
    return f"django-{uuid.uuid4()}"


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("give an aware datetime (USE_TZ): jetchat's times are UTC")
    return value.astimezone(timezone.utc).isoformat()


# The commands. Each builder returns a Command; the public functions below publish it.


def build_send_message(
    *,
    sender_id: int,
    content: str,
    chat_id: int | None = None,
    receiver_id: int | None = None,
    client_msg_id: str | None = None,
    content_type: schema.ContentType = "text",
    file_url: str | None = None,
    reply_to_message_id: int | None = None,
    forwarded_from: int | None = None,
) -> Command:
    if (chat_id is None) == (receiver_id is None):
        raise ValueError("give exactly one of chat_id and receiver_id")
    client_msg_id = client_msg_id or _new_id()
    body: schema.SendMessage = {
        "sender_id": sender_id,
        "chat_id": chat_id,
        "receiver_id": receiver_id,
        "content": content,
        "content_type": content_type,
        "client_msg_id": client_msg_id,
        "file_url": file_url,
        "reply_to_message_id": reply_to_message_id,
        "forwarded_from": forwarded_from,
    }
    s = _subjects()
    subject = s.message(chat_id) if chat_id is not None else s.direct_message()
    # The key jetchat's sockets use, so a message is one message whoever retries it.
    return Command(subject, _payload("send_message", body), f"msg:{sender_id}:{client_msg_id}",
                   client_msg_id)


def build_send_system_message(*, chat_id: int, content: str, client_msg_id: str | None = None,
                              **options) -> Command:
    system = jetchat_settings().SYSTEM_USER_ID
    if system is None:
        raise ImproperlyConfigured("JETCHAT['SYSTEM_USER_ID'] is not set: whom would it be from?")
    return build_send_message(sender_id=system, chat_id=chat_id, content=content,
                              client_msg_id=client_msg_id, **options)


def build_create_chat(*, creator_id: int, member_ids: list[int], is_group: bool = True,
                      name: str | None = None, command_id: str | None = None) -> Command:
    command_id = command_id or _new_id()
    body: schema.CreateChat = {"command_id": command_id, "creator_id": creator_id,
                               "member_ids": list(member_ids), "is_group": is_group, "name": name}
    return _command("create_chat", _subjects().create_chat(), body, command_id)


def build_add_members(*, chat_id: int, user_ids: list[int], actor_id: int | None = None,
                      command_id: str | None = None) -> Command:
    """Without ``actor_id`` Django adds them (the system: no role needed); with it, that
    member does, under the group's rules (``forbidden``, ``blocked``)."""
    command_id = command_id or _new_id()
    body: schema.AddMembers = {"command_id": command_id, "chat_id": chat_id,
                               "user_ids": list(user_ids), "actor_id": actor_id}
    return _command("add_members", _subjects().chat_command(chat_id, "add_members"), body,
                    command_id)


def build_remove_members(*, chat_id: int, user_ids: list[int], actor_id: int | None = None,
                         command_id: str | None = None) -> Command:
    """Without ``actor_id`` Django removes them (anyone, the owner too: the group passes on);
    with it, that member does, as an admin or the owner."""
    command_id = command_id or _new_id()
    body: schema.RemoveMembers = {"command_id": command_id, "chat_id": chat_id,
                                  "user_ids": list(user_ids), "actor_id": actor_id}
    return _command("remove_members", _subjects().chat_command(chat_id, "remove_members"), body,
                    command_id)


def build_leave_chat(*, chat_id: int, user_id: int, command_id: str | None = None) -> Command:
    """The member leaves the group (``remove_members`` with themselves as the actor); an owner
    who leaves hands the group to the longest-serving admin, else member."""
    return build_remove_members(chat_id=chat_id, user_ids=[user_id], actor_id=user_id,
                                command_id=command_id)


def build_rename_chat(*, chat_id: int, name: str, command_id: str | None = None) -> Command:
    command_id = command_id or _new_id()
    body: schema.RenameChat = {"command_id": command_id, "chat_id": chat_id, "name": name}
    return _command("rename_chat", _subjects().chat_command(chat_id, "rename"), body, command_id)


def build_update_chat(*, chat_id: int, name: str | None = None,
                      settings: schema.SettingsChange | None = None, actor_id: int | None = None,
                      command_id: str | None = None) -> Command:
    """Renames the group or changes its settings (``{"members_can_add": True}``; those left
    out are kept); without ``actor_id`` as Django, with it as that admin or owner."""
    if name is None and not settings:
        raise ValueError("give a name or settings to change")
    command_id = command_id or _new_id()
    body: schema.UpdateChat = {"command_id": command_id, "chat_id": chat_id, "name": name,
                               "settings": dict(settings) if settings else None,
                               "actor_id": actor_id}
    return _command("update_chat", _subjects().chat_command(chat_id, "update_chat"), body,
                    command_id)


def build_set_member_role(*, chat_id: int, user_id: int, role: schema.Role,
                          actor_id: int | None = None, command_id: str | None = None) -> Command:
    """``owner``, ``admin`` or ``member``; ``owner`` hands the group over (the owner until then
    becomes an admin). Without ``actor_id`` as Django, with it as the owner."""
    command_id = command_id or _new_id()
    body: schema.SetMemberRole = {"command_id": command_id, "chat_id": chat_id,
                                  "user_id": user_id, "role": role, "actor_id": actor_id}
    return _command("set_member_role", _subjects().chat_command(chat_id, "set_member_role"), body,
                    command_id)


def build_delete_chat(*, chat_id: int, actor_id: int | None = None,
                      command_id: str | None = None) -> Command:
    """Deletes a group with its whole history, for everyone; without ``actor_id`` as Django,
    with it as the owner. A private chat cannot be deleted (``not_a_group``)."""
    command_id = command_id or _new_id()
    body: schema.DeleteChat = {"command_id": command_id, "chat_id": chat_id,
                               "actor_id": actor_id}
    return _command("delete_chat", _subjects().chat_command(chat_id, "delete_chat"), body,
                    command_id)


def build_delete_message(*, chat_id: int, message_id: int, deleter_id: int | None = None,
                         command_id: str | None = None) -> Command:
    """Without ``deleter_id``: moderation (any message); with it, only its author's."""
    command_id = command_id or _new_id()
    body: schema.DeleteMessage = {"command_id": command_id, "chat_id": chat_id,
                                  "message_id": message_id, "deleter_id": deleter_id}
    return _command("delete_message", _subjects().chat_command(chat_id, "delete_message"), body,
                    command_id)


def build_mute_chat(*, chat_id: int, user_id: int, until: datetime | str | None = MUTED_FOREVER,
                    command_id: str | None = None) -> Command:
    """``until``: an aware datetime, ``MUTED_FOREVER`` (the default), or None to unmute."""
    command_id = command_id or _new_id()
    body: schema.MuteChat = {"command_id": command_id, "chat_id": chat_id, "user_id": user_id,
                             "muted_until": _time(until)}
    return _command("mute_chat", _subjects().chat_command(chat_id, "mute"), body, command_id)


def build_edit_message(*, chat_id: int, message_id: int, editor_id: int, content: str,
                       command_id: str | None = None) -> Command:
    """The author (``editor_id``) replaces the message's text; the old text is kept as a
    revision (``forbidden`` for anyone else, ``edit_window_passed`` after ``EDIT_WINDOW``)."""
    command_id = command_id or _new_id()
    body: schema.EditMessage = {"command_id": command_id, "chat_id": chat_id,
                                "message_id": message_id, "editor_id": editor_id,
                                "content": content}
    return _command("edit_message", _subjects().chat_command(chat_id, "edit_message"), body,
                    command_id)


def _reaction(kind: str, chat_id: int, message_id: int, user_id: int, emoji: str,
              command_id: str | None) -> Command:
    command_id = command_id or _new_id()
    body: schema.ReactToMessage = {"command_id": command_id, "chat_id": chat_id,
                                   "message_id": message_id, "user_id": user_id, "emoji": emoji}
    return _command(kind, _subjects().chat_command(chat_id, kind), body, command_id)


def build_react(*, chat_id: int, message_id: int, user_id: int, emoji: str,
                command_id: str | None = None) -> Command:
    """The member adds an emoji (one grapheme) to a message; one of each per user."""
    return _reaction("react", chat_id, message_id, user_id, emoji, command_id)


def build_unreact(*, chat_id: int, message_id: int, user_id: int, emoji: str,
                  command_id: str | None = None) -> Command:
    """The member takes their emoji back (one they do not have changes nothing)."""
    return _reaction("unreact", chat_id, message_id, user_id, emoji, command_id)


def build_pin_message(*, chat_id: int, message_id: int, pinned: bool = True,
                      actor_id: int | None = None, command_id: str | None = None) -> Command:
    """Pins the message (``pinned=False`` unpins it); without ``actor_id`` as Django, with it
    as that member (a group's admins and owner, either member of a private chat)."""
    command_id = command_id or _new_id()
    body: schema.PinMessage = {"command_id": command_id, "chat_id": chat_id,
                               "message_id": message_id, "pinned": pinned, "actor_id": actor_id}
    return _command("pin_message", _subjects().chat_command(chat_id, "pin_message"), body,
                    command_id)


def _receipt(status: schema.ReceiptStatus, chat_id: int, user_id: int,
             message_id: int) -> Command:
    body: schema.MarkReceipt = {"chat_id": chat_id, "user_id": user_id, "message_id": message_id,
                                "status": status}
    # Derived from the mark (docs/events.md, "Headers"): a retry is the same mark, and marks
    # only move forward anyway.
    command_id = f"{user_id}:{chat_id}:{status}:{message_id}"
    return _command("receipt", _subjects().chat_command(chat_id, "receipt"), body, command_id)


def build_mark_read(*, chat_id: int, user_id: int, message_id: int) -> Command:
    """The member has read the message and everything before it in the chat (read implies
    delivered). No outcome: the ``receipt`` event, when a mark moved."""
    return _receipt("read", chat_id, user_id, message_id)


def build_mark_delivered(*, chat_id: int, user_id: int, message_id: int) -> Command:
    """The message and everything before it reached the member (jetchat marks what its
    sockets push by itself, ``AUTO_DELIVERED``). No outcome: the ``receipt`` event."""
    return _receipt("delivered", chat_id, user_id, message_id)


def build_set_block(*, user_id: int, blocked_id: int, blocked: bool = True,
                    command_id: str | None = None) -> Command:
    """``user_id`` blocks ``blocked_id`` (``blocked=False`` lifts it): the blocked user can no
    longer open a private chat with them, write in it, or add them to a group."""
    command_id = command_id or _new_id()
    body: schema.SetBlock = {"command_id": command_id, "user_id": user_id,
                             "blocked_id": blocked_id, "blocked": blocked}
    return _command("set_block", _subjects().set_block(), body, command_id)


def build_upsert_user(*, user_id: int, display_name: str, avatar_url: str | None = None,
                      updated_at: datetime | None = None, command_id: str | None = None) -> Command:
    """The newest ``updated_at`` wins in jetchat's directory whatever the order of arrival."""
    stamp = _time(updated_at or datetime.now(timezone.utc))
    # Derived from the change, so a retry of the same change has the same id.
    command_id = command_id or f"user-{user_id}-{stamp}"
    body: schema.UpsertUser = {"command_id": command_id, "user_id": user_id,
                               "display_name": display_name, "avatar_url": avatar_url or None,
                               "updated_at": stamp}
    return _command("upsert_user", _subjects().upsert_user(), body, command_id)


def build_erase_user(*, user_id: int, command_id: str | None = None) -> Command:
    """Erases the user from jetchat: their messages become tombstones, the rest of them goes
    (docs/events.md, "Erasure"); ``user_erased`` says when it is done. A repeat changes
    nothing and is answered ``user_erased`` again."""
    # One id per user: a retried erasure is the same command (its Nats-Msg-Id too).
    command_id = command_id or f"erase-{user_id}"
    body: schema.EraseUser = {"command_id": command_id, "user_id": user_id}
    return _command("erase_user", _subjects().erase_user(), body, command_id)


async def publish(nc, command: Command, *, wait: bool = False) -> Published:
    """Publishes ``command`` through JetStream on ``nc``, retrying a lost ack with the same
    ``Nats-Msg-Id``; with ``wait``, returns jetchat's outcome too."""
    conf = jetchat_settings()
    kind = command.payload["type"]
    if wait and not has_outcome(command.payload):
        raise ValueError(f"{kind} has no outcome to wait for (only {sorted(WAITABLE)}, and "
                         f"{sorted(WAITABLE_WITH_ACTOR)} with actor_id)")
    inbox = None
    payload = command.payload
    if wait:
        inbox = await nc.subscribe(nc.new_inbox(), max_msgs=1)
        payload = {**payload, "reply_to": inbox.subject}
    body = json.dumps(payload, separators=(",", ":")).encode()
    js = nc.jetstream()
    try:
        ack = None
        last_error: Exception | None = None
        for attempt in range(conf.PUBLISH_ATTEMPTS):
            try:
                ack = await js.publish(command.subject, body, timeout=conf.PUBLISH_TIMEOUT,
                                       headers={"Nats-Msg-Id": command.nats_msg_id})
                break
            except (NatsTimeout, NoRespondersError, asyncio.TimeoutError) as error:
                last_error = error
                await asyncio.sleep(min(0.2 * 2**attempt, 2))
        if ack is None:
            raise NotPublished(f"{kind} {command.command_id}: no ack from JetStream after "
                               f"{conf.PUBLISH_ATTEMPTS} attempts ({last_error!r})")
        if inbox is not None and ack.duplicate and kind == "create_chat":
            # The first publish's outcome went to an inbox no one reads any more. jetchat keeps
            # one group per command_id and one private chat per pair, so the same command under
            # a new Nats-Msg-Id changes nothing and answers with the chat (its re-announced
            # chat_created carries the first one's Nats-Msg-Id: dropped within two minutes).
            await js.publish(command.subject, body, timeout=conf.PUBLISH_TIMEOUT,
                             headers={"Nats-Msg-Id": f"{command.nats_msg_id}:again:{uuid.uuid4()}"})
        outcome = None
        if inbox is not None and (not ack.duplicate or kind == "create_chat"):
            try:
                message = await inbox.next_msg(timeout=max(conf.PUBLISH_TIMEOUT, 10))
            except NatsTimeout as error:
                raise NoOutcome(f"{kind} {command.command_id}: stored as #{ack.seq}, but no "
                                "outcome in time (it will still be applied)") from error
            outcome = json.loads(message.data)
            if outcome.get("outcome") == "rejected":
                raise CommandRejected(outcome)
        return Published(command.subject, command.nats_msg_id, command.command_id, ack.stream,
                         ack.seq, bool(ack.duplicate), outcome)
    finally:
        if inbox is not None:
            await inbox.unsubscribe()


def _timeout() -> float:
    conf = jetchat_settings()
    return conf.PUBLISH_ATTEMPTS * (conf.PUBLISH_TIMEOUT + 2) + max(conf.PUBLISH_TIMEOUT, 10) + 5


#: The command a function publishes, where its name is not the command's type.
_PUBLISHES = {"leave_chat": "remove_members", "mark_read": "receipt",
              "mark_delivered": "receipt", "send_system_message": "send_message"}


def _pair(builder, default_wait: bool = False):
    """The sync and async public functions of one builder."""

    def sync(*, wait: bool = default_wait, **fields) -> Published:
        command = builder(**fields)
        return bus.run_sync(lambda nc: publish(nc, command, wait=wait), _timeout())

    async def asynchronous(*, wait: bool = default_wait, **fields) -> Published:
        command = builder(**fields)
        return await bus.run_async(lambda nc: publish(nc, command, wait=wait))

    name = builder.__name__.removeprefix("build_")
    doc = (builder.__doc__ or "").strip()
    # help() and editors show the builder's keyword arguments, and `wait`.
    signature = inspect.signature(builder)
    wait = inspect.Parameter("wait", inspect.Parameter.KEYWORD_ONLY, default=default_wait,
                             annotation=bool)
    params = list(signature.parameters.values())
    params.insert(len(params) - (params[-1].kind == inspect.Parameter.VAR_KEYWORD), wait)
    sync.__signature__ = signature.replace(parameters=params, return_annotation=Published)
    asynchronous.__signature__ = sync.__signature__
    sync.__name__, asynchronous.__name__ = name, f"a{name}"
    # What it publishes (a test checks every command Django may send has a function).
    sync.command_type = asynchronous.command_type = _PUBLISHES.get(name, name)
    sync.__doc__ = f"Publishes ``{name}`` and returns once JetStream stored it. {doc}"
    asynchronous.__doc__ = f"``{name}`` from async code. {doc}"
    return sync, asynchronous


send_message, asend_message = _pair(build_send_message)
send_system_message, asend_system_message = _pair(build_send_system_message)
# A new chat's id is in its outcome, so create_chat waits for it unless told not to.
create_chat, acreate_chat = _pair(build_create_chat, default_wait=True)
add_members, aadd_members = _pair(build_add_members)
remove_members, aremove_members = _pair(build_remove_members)
leave_chat, aleave_chat = _pair(build_leave_chat)
rename_chat, arename_chat = _pair(build_rename_chat)
update_chat, aupdate_chat = _pair(build_update_chat)
set_member_role, aset_member_role = _pair(build_set_member_role)
delete_chat, adelete_chat = _pair(build_delete_chat)
delete_message, adelete_message = _pair(build_delete_message)
edit_message, aedit_message = _pair(build_edit_message)
react, areact = _pair(build_react)
unreact, aunreact = _pair(build_unreact)
pin_message, apin_message = _pair(build_pin_message)
mark_read, amark_read = _pair(build_mark_read)
mark_delivered, amark_delivered = _pair(build_mark_delivered)
set_block, aset_block = _pair(build_set_block)
mute_chat, amute_chat = _pair(build_mute_chat)
upsert_user, aupsert_user = _pair(build_upsert_user)
erase_user, aerase_user = _pair(build_erase_user)
