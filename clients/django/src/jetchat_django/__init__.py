"""jetchat for Django: settings, commands, events as signals, user sync and tokens.

The public API::

    import jetchat_django as jetchat
    jetchat.create_chat(creator_id=1, member_ids=[2, 3], is_group=True, name="Team")
    await jetchat.asend_message(sender_id=1, chat_id=7, content="hi", client_msg_id="order-1")

Events arrive as signals (``jetchat_django.signals``) while ``manage.py jetchat_events`` runs.
"""

from .commands import (
    Published,
    acreate_chat,
    aadd_members,
    aremove_members,
    arename_chat,
    asend_message,
    asend_system_message,
    adelete_message,
    amute_chat,
    aupsert_user,
    aerase_user,
    create_chat,
    add_members,
    remove_members,
    rename_chat,
    send_message,
    send_system_message,
    delete_message,
    mute_chat,
    upsert_user,
    erase_user,
    MUTED_FOREVER,
)
from .errors import CommandRejected, NoOutcome, NotPublished

from .version import CONTRACT_VERSION, __version__

__all__ = [
    "__version__",
    "CONTRACT_VERSION",
    "CommandRejected",
    "MUTED_FOREVER",
    "NoOutcome",
    "NotPublished",
    "Published",
    "aadd_members",
    "acreate_chat",
    "adelete_message",
    "aerase_user",
    "add_members",
    "amute_chat",
    "arename_chat",
    "aremove_members",
    "asend_message",
    "asend_system_message",
    "aupsert_user",
    "create_chat",
    "delete_message",
    "erase_user",
    "mute_chat",
    "remove_members",
    "rename_chat",
    "send_message",
    "send_system_message",
    "upsert_user",
]
