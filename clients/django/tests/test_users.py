"""Saving a Django user tells jetchat their profile: the fields ``PROFILE`` names."""

import time

import pytest
from django.contrib.auth import get_user_model

import jetchat_django as jetchat

from .conftest import WAIT


def shown_to(server, viewer, user_id, name, timeout=WAIT):
    """What ``GET /users`` shows ``viewer`` of ``user_id``, once it says ``name``."""
    deadline = time.monotonic() + timeout
    while True:
        status, users = server.get(f"/users?ids={user_id}", as_user=viewer)
        assert status == 200, users
        if users and users[0]["display_name"] == name:
            return users[0]
        assert time.monotonic() < deadline, f"user {viewer} sees {users}, not {name!r}"
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_saving_a_user_upserts_their_profile(server, events, uid, user_ids):
    ann_id, bob = user_ids(2)
    jetchat.create_chat(creator_id=ann_id, member_ids=[bob], name="Profiles",
                        command_id=uid("create"))
    User = get_user_model()

    ann = User(id=ann_id, username=f"ann{ann_id}", first_name="Ann", last_name="Lee")
    ann.avatar = "https://cdn.example.com/ann.png"  # PROFILE's avatar_url: ["avatar"]
    ann.save()
    profile = shown_to(server, bob, ann_id, "Ann Lee")
    assert profile["avatar_url"] == "https://cdn.example.com/ann.png"

    ann.last_name = "Lee-Smith"
    ann.save()
    shown_to(server, bob, ann_id, "Ann Lee-Smith")
    updates = events.wait_for(lambda e: e.get("type") == "user_updated"
                              and e["user"]["user_id"] == ann_id, "user_updated", count=2)
    assert [u.event["user"]["display_name"] for u in updates] == ["Ann Lee", "Ann Lee-Smith"]


@pytest.mark.django_db(transaction=True)
def test_a_user_without_a_full_name_is_shown_by_username(server, uid, user_ids):
    cat_id, bob = user_ids(2)
    jetchat.create_chat(creator_id=cat_id, member_ids=[bob], command_id=uid("create"))

    get_user_model().objects.create(id=cat_id, username=f"cat{cat_id}")

    assert shown_to(server, bob, cat_id, f"cat{cat_id}")["avatar_url"] is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_save_tells_jetchat_nothing(server, uid, user_ids):
    from django.db import transaction

    dan_id, bob = user_ids(2)
    jetchat.create_chat(creator_id=dan_id, member_ids=[bob], command_id=uid("create"))
    User = get_user_model()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            User.objects.create(id=dan_id, username=f"dan{dan_id}", first_name="Never")
            raise RuntimeError("rolled back")
    time.sleep(1.5)
    status, users = server.get(f"/users?ids={dan_id}", as_user=bob)
    assert status == 200 and users[0]["display_name"] != "Never"


@pytest.mark.django_db(transaction=True)
def test_a_login_publishes_nothing(server, events, uid, user_ids):
    """``update_last_login`` saves ``last_login`` only: no profile change, no command."""
    from django.contrib.auth.models import update_last_login

    eve_id, bob = user_ids(2)
    jetchat.create_chat(creator_id=eve_id, member_ids=[bob], command_id=uid("create"))
    eve = get_user_model().objects.create(id=eve_id, username=f"eve{eve_id}", first_name="Eve")
    events.wait_for(lambda e: e.get("type") == "user_updated" and e["user"]["user_id"] == eve_id,
                    "user_updated")

    eve.first_name = "Evelyn"  # changed in memory only: a publish would show it
    update_last_login(None, eve)
    time.sleep(1.5)

    shown = server.get(f"/users?ids={eve_id}", as_user=bob)[1][0]
    assert shown["display_name"] == "Eve"


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_erases_them(server, events, uid, user_ids):
    from jetchat_django import signals

    fay_id, bob = user_ids(2)
    fay = get_user_model().objects.create(id=fay_id, username=f"fay{fay_id}", first_name="Fay")
    chat_id = jetchat.create_chat(creator_id=fay_id, member_ids=[bob], name="Fay's",
                                  command_id=uid("create")).outcome["chat"]["chat_id"]
    sent = jetchat.send_message(sender_id=fay_id, chat_id=chat_id, content="remember me",
                                client_msg_id=uid("msg"))
    shown_to(server, bob, fay_id, "Fay")
    erased = []

    def on_erased(sender, event, meta, **kwargs):
        erased.append(event)

    signals.user_erased.connect(on_erased, weak=False)
    try:
        fay.delete()
        seen = events.exactly_once(lambda e: e.get("type") == "user_erased"
                                   and e["user_id"] == fay_id, "user_erased")
    finally:
        signals.user_erased.disconnect(on_erased)

    assert seen.event["messages_erased"] == 1
    assert [e["user_id"] for e in erased] == [fay_id], "the typed signal fired once"
    # Her message is a tombstone in its place; the group is Bob's now; her name is gone.
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=bob)
    assert [(m["deleted"], m["content"]) for m in history
            if m["message_id"] == sent.seq] == [(True, "")]
    _, chats = server.get("/chats/", as_user=bob)
    chat = next(c for c in chats if c["chat_id"] == chat_id)
    assert chat["owner_id"] == bob and chat["member_ids"] == [bob], chat
    _, users = server.get(f"/users?ids={fay_id}", as_user=bob)
    assert all(u["display_name"] != "Fay" for u in users), users
