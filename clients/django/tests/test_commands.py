"""Each command reaches jetchat through JetStream and is applied once, however often it is sent.

"Publish twice with the same id" is the retry a caller makes after a lost acknowledgement: the
second publish is reported as a duplicate, and jetchat shows one chat, one member, one message,
one event.
"""

import asyncio

import pytest

import jetchat_django as jetchat


def of_type(kind, **fields):
    def match(event):
        return event.get("type") == kind and all(event.get(k) == v for k, v in fields.items())
    return match


def group(creator, members, uid, name="Team"):
    published = jetchat.create_chat(creator_id=creator, member_ids=members, name=name,
                                    command_id=uid("create"))
    return published.outcome["chat"]["chat_id"]


def test_create_chat_twice_with_one_id_makes_one_group(server, events, uid, user_ids):
    ann, bob, cid = *user_ids(2), uid("create")

    first = jetchat.create_chat(creator_id=ann, member_ids=[bob],
                                                        name="Team", command_id=cid)
    again = jetchat.create_chat(creator_id=ann, member_ids=[bob], name="Team",
                                      command_id=cid)

    assert first.outcome["outcome"] == "chat_ready" and first.outcome["created"] is True
    assert first.nats_msg_id == f"create_chat:{cid}" and first.stream == "CHAT_IN"
    assert again.duplicate and again.seq == first.seq
    chat_id = first.outcome["chat"]["chat_id"]
    assert again.outcome["chat"]["chat_id"] == chat_id  # a retry still learns its chat
    events.exactly_once(lambda e: e.get("type") == "chat_created"
                        and e["chat"]["chat_id"] == chat_id, "chat_created")
    status, chats = server.get("/chats/", as_user=bob)
    assert status == 200
    assert [c["name"] for c in chats if c["chat_id"] == chat_id] == ["Team"]
    assert sorted(next(c for c in chats if c["chat_id"] == chat_id)["member_ids"]) == [ann, bob]


def test_send_message_twice_with_one_client_msg_id_stores_one_message(server, events, uid,
                                                                       user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    client_msg_id = uid("msg")

    first = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="hello",
                                       client_msg_id=client_msg_id)
    again = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="hello",
                                       client_msg_id=client_msg_id)

    assert first.nats_msg_id == f"msg:{ann}:{client_msg_id}" and not first.duplicate
    assert again.duplicate and again.seq == first.seq
    seen = events.exactly_once(
        lambda e: e.get("type") == "message_created"
        and e["message"]["client_msg_id"] == client_msg_id, "message_created")
    assert seen.event["message"]["message_id"] == first.seq  # a message's id is its sequence
    status, history = server.get(f"/chats/{chat_id}/messages", as_user=bob)
    assert status == 200
    assert [m["content"] for m in history if m["client_msg_id"] == client_msg_id] == ["hello"]


def test_a_system_message_comes_from_the_system_user(server, events, uid, user_ids):
    ann, = user_ids(1)
    chat_id = group(900, [ann], uid, name="Announcements")  # 900: SYSTEM_USER_ID in settings

    published = jetchat.send_system_message(chat_id=chat_id, content="Maintenance at 6",
                                                  client_msg_id=uid("sys"))

    seen = events.exactly_once(lambda e: e.get("type") == "message_created"
                               and e["message"]["message_id"] == published.seq, "message_created")
    assert seen.event["message"]["sender_id"] == 900


def test_add_and_remove_members_applied_once(server, events, uid, user_ids):
    ann, bob, cat = user_ids(3)
    chat_id = group(ann, [bob], uid)
    add, remove = uid("add"), uid("remove")

    for _ in range(2):
        jetchat.add_members(chat_id=chat_id, user_ids=[cat], command_id=add)
    events.exactly_once(of_type("member_added", chat_id=chat_id, user_id=cat), "member_added")
    for _ in range(2):
        jetchat.remove_members(chat_id=chat_id, user_ids=[cat], command_id=remove)
    events.exactly_once(of_type("member_removed", chat_id=chat_id, user_id=cat),
                        "member_removed")

    status, chats = server.get("/chats/", as_user=ann)
    assert sorted(next(c for c in chats if c["chat_id"] == chat_id)["member_ids"]) == [ann, bob]


def test_rename_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    command_id = uid("rename")

    first = jetchat.rename_chat(chat_id=chat_id, name="Renamed", command_id=command_id)
    again = jetchat.rename_chat(chat_id=chat_id, name="Renamed", command_id=command_id)

    assert again.duplicate and again.seq == first.seq
    events.exactly_once(of_type("chat_renamed", chat_id=chat_id, name="Renamed"), "chat_renamed")


def test_delete_message_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=bob, chat_id=chat_id, content="oops",
                                         client_msg_id=uid("msg"))
    command_id = uid("delete")

    first = jetchat.delete_message(chat_id=chat_id, message_id=message.seq,
                                         command_id=command_id, wait=True)
    again = jetchat.delete_message(chat_id=chat_id, message_id=message.seq,
                                         command_id=command_id, wait=True)

    assert first.outcome["outcome"] == "applied" and again.duplicate
    events.exactly_once(of_type("message_deleted", message_id=message.seq), "message_deleted")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=ann)
    assert [m["deleted"] for m in history if m["message_id"] == message.seq] == [True]


def test_mute_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    command_id = uid("mute")

    first = jetchat.mute_chat(chat_id=chat_id, user_id=bob, command_id=command_id,
                                    wait=True)
    again = jetchat.mute_chat(chat_id=chat_id, user_id=bob, command_id=command_id)

    assert first.outcome["outcome"] == "muted" and again.duplicate
    events.exactly_once(of_type("chat_muted", chat_id=chat_id, user_id=bob), "chat_muted")
    _, chats = server.get("/chats/", as_user=bob)
    assert next(c for c in chats if c["chat_id"] == chat_id)["muted_until"].startswith("9999-12-31")


def test_upsert_user_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    from datetime import datetime, timezone

    when = datetime.now(timezone.utc)
    first = jetchat.upsert_user(user_id=ann, display_name="Ann Lee",
                                      avatar_url="https://cdn.example.com/ann.png",
                                      updated_at=when, wait=True)
    again = jetchat.upsert_user(user_id=ann, display_name="Ann Lee",
                                      avatar_url="https://cdn.example.com/ann.png",
                                      updated_at=when)

    assert first.outcome["outcome"] == "applied" and again.duplicate
    seen = events.exactly_once(lambda e: e.get("type") == "user_updated"
                               and e["user"]["user_id"] == ann, "user_updated")
    assert chat_id in seen.event["chat_ids"]
    _, users = server.get(f"/users?ids={ann}", as_user=bob)
    assert users[0]["display_name"] == "Ann Lee"


def test_a_refusal_raises_with_its_code(server, uid, user_ids):
    ann, = user_ids(1)
    with pytest.raises(jetchat.CommandRejected) as refused:
        jetchat.upsert_user(user_id=ann, display_name="Ann", avatar_url="javascript:x",
                                  wait=True)
    assert refused.value.code == "invalid_avatar_url"


def test_the_async_api_from_an_event_loop(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    client_msg_id = uid("async")

    async def view():
        created = await jetchat.acreate_chat(creator_id=ann, member_ids=[bob],
                                                   name="Async", command_id=uid("create"))
        chat_id = created.outcome["chat"]["chat_id"]
        sent = await asyncio.gather(*[
            jetchat.asend_message(sender_id=ann, chat_id=chat_id, content="hi",
                                        client_msg_id=client_msg_id) for _ in range(3)])
        return chat_id, sent

    chat_id, sent = asyncio.run(view())

    assert sum(not p.duplicate for p in sent) == 1 and len({p.seq for p in sent}) == 1
    events.exactly_once(lambda e: e.get("type") == "message_created"
                        and e["message"]["client_msg_id"] == client_msg_id, "message_created")


def test_a_command_retried_after_a_lost_ack_is_applied_once(server, events, uid, user_ids):
    """The call's own retry: the first attempt's ack is lost (a timeout shorter than a round
    trip), the next attempt reuses the Nats-Msg-Id."""
    from django.test import override_settings
    from django.conf import settings

    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    client_msg_id = uid("lost-ack")
    fast = {**settings.JETCHAT, "PUBLISH_TIMEOUT": 0.000001, "PUBLISH_ATTEMPTS": 1}
    with override_settings(JETCHAT=fast):
        with pytest.raises(jetchat.NotPublished):
            jetchat.send_message(sender_id=ann, chat_id=chat_id, content="once",
                                       client_msg_id=client_msg_id)
    # The caller retries later with the same client_msg_id.
    jetchat.send_message(sender_id=ann, chat_id=chat_id, content="once",
                               client_msg_id=client_msg_id)

    events.exactly_once(lambda e: e.get("type") == "message_created"
                        and e["message"]["client_msg_id"] == client_msg_id, "message_created")


def test_without_nats_a_command_fails_with_not_published_within_its_bound(server):
    from django.conf import settings
    from django.test import override_settings

    from jetchat_django import bus

    bus.close()  # the next command connects anew, to the URL below
    nowhere = {**settings.JETCHAT, "NATS_URL": "nats://django:secret@127.0.0.1:9",
               "PUBLISH_TIMEOUT": 0.5, "PUBLISH_ATTEMPTS": 2}
    try:
        with override_settings(JETCHAT=nowhere):
            with pytest.raises(jetchat.NotPublished, match="cannot connect") as failed:
                jetchat.send_message(sender_id=1, chat_id=1, content="x", client_msg_id="c")
    finally:
        bus.close()  # back to the real jetchat for the next test
    # Bounded by PUBLISH_TIMEOUT x PUBLISH_ATTEMPTS, not NATS's own reconnecting for ever.
    assert "nats://127.0.0.1:9 within 1 s" in str(failed.value)
    assert "secret" not in str(failed.value)  # the password is not in messages or logs


def test_erase_user_applied_once_sync_and_async(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="mine",
                                   client_msg_id=uid("msg"))

    first = jetchat.erase_user(user_id=ann, wait=True)
    again = asyncio.run(jetchat.aerase_user(user_id=ann))

    assert first.outcome["outcome"] == "applied"
    assert first.nats_msg_id == again.nats_msg_id == f"erase_user:erase-{ann}"
    assert again.duplicate and again.seq == first.seq
    erased = events.exactly_once(of_type("user_erased", user_id=ann), "user_erased")
    assert erased.event["messages_erased"] == 1
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=bob)
    assert [(m["deleted"], m["content"]) for m in history
            if m["message_id"] == message.seq] == [(True, "")]


def twice(command, **fields):
    """The call and its retry with the same command id: the retry is JetStream's duplicate."""
    first = command(**fields)
    again = command(**{**fields, "wait": False})
    assert again.duplicate and again.seq == first.seq, (first, again)
    assert again.nats_msg_id == first.nats_msg_id
    return first


def chat_view(server, chat_id, as_user):
    status, chat = server.get(f"/chats/{chat_id}", as_user=as_user)
    assert status == 200, chat
    return chat


def test_update_chat_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    command_id = uid("update")

    first = twice(jetchat.update_chat, chat_id=chat_id, name="Renamed",
                  settings={"members_can_add": True}, command_id=command_id, wait=True)

    assert first.outcome == {"outcome": "applied", "v": 1, "command_id": command_id}
    seen = events.exactly_once(of_type("chat_updated", command_id=command_id), "chat_updated")
    assert seen.event["name"] == "Renamed" and seen.event["settings"]["members_can_add"] is True
    chat = chat_view(server, chat_id, as_user=bob)
    assert (chat["name"], chat["settings"]) == ("Renamed", {"members_can_add": True})


def test_set_member_role_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    command_id = uid("role")

    first = twice(jetchat.set_member_role, chat_id=chat_id, user_id=bob, role="admin",
                  command_id=command_id, wait=True)

    assert first.outcome["outcome"] == "applied"
    events.exactly_once(of_type("member_role_changed", command_id=command_id, user_id=bob,
                                role="admin"), "member_role_changed")
    assert chat_view(server, chat_id, as_user=ann)["admin_ids"] == [bob]


def test_delete_chat_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    command_id = uid("delete-chat")

    first = twice(jetchat.delete_chat, chat_id=chat_id, command_id=command_id, wait=True)

    assert first.outcome["outcome"] == "applied"
    seen = events.exactly_once(of_type("chat_deleted", chat_id=chat_id), "chat_deleted")
    assert sorted(seen.event["member_ids"]) == sorted([ann, bob])
    _, chats = server.get("/chats/", as_user=bob)
    assert chat_id not in [c["chat_id"] for c in chats]


def test_a_member_acts_and_leaves(server, events, uid, user_ids):
    """With ``actor_id`` a member acts under the group's rules, and is answered ``applied``."""
    ann, bob, cat = user_ids(3)
    chat_id = group(ann, [bob], uid)

    added = jetchat.add_members(chat_id=chat_id, user_ids=[cat], actor_id=ann, wait=True)
    with pytest.raises(jetchat.CommandRejected) as refused:
        jetchat.remove_members(chat_id=chat_id, user_ids=[cat], actor_id=bob, wait=True)
    leave = uid("leave")
    left = twice(jetchat.leave_chat, chat_id=chat_id, user_id=bob, command_id=leave, wait=True)

    assert added.outcome["outcome"] == "applied" and refused.value.code == "forbidden"
    assert left.outcome["outcome"] == "applied"
    seen = events.exactly_once(of_type("member_removed", command_id=leave), "member_removed")
    assert (seen.event["user_id"], seen.event["removed_by"]) == (bob, bob)
    assert sorted(chat_view(server, chat_id, as_user=ann)["member_ids"]) == sorted([ann, cat])
    with pytest.raises(ValueError, match="no outcome"):
        jetchat.add_members(chat_id=chat_id, user_ids=[bob], wait=True)  # Django's: no outcome


def test_edit_message_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="shiped",
                                   client_msg_id=uid("msg"))
    command_id = uid("edit")

    first = twice(jetchat.edit_message, chat_id=chat_id, message_id=message.seq, editor_id=ann,
                  content="shipped", command_id=command_id, wait=True)

    assert first.outcome["outcome"] == "applied"
    seen = events.exactly_once(of_type("message_edited", command_id=command_id), "message_edited")
    assert (seen.event["message_id"], seen.event["content"]) == (message.seq, "shipped")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=bob)
    assert [m["content"] for m in history if m["message_id"] == message.seq] == ["shipped"]
    with pytest.raises(jetchat.CommandRejected) as refused:  # only the author edits
        jetchat.edit_message(chat_id=chat_id, message_id=message.seq, editor_id=bob,
                             content="mine now", wait=True)
    assert refused.value.code == "forbidden"


def test_react_and_unreact_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="lunch?",
                                   client_msg_id=uid("msg"))
    react, unreact = uid("react"), uid("unreact")
    fields = dict(chat_id=chat_id, message_id=message.seq, user_id=bob, emoji="👍", wait=True)

    reacted = twice(jetchat.react, command_id=react, **fields)
    seen = events.exactly_once(of_type("reaction_added", command_id=react), "reaction_added")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=ann)
    reactions = next(m for m in history if m["message_id"] == message.seq)["reactions"]
    unreacted = twice(jetchat.unreact, command_id=unreact, **fields)

    assert reacted.outcome["outcome"] == unreacted.outcome["outcome"] == "applied"
    assert (seen.event["user_id"], seen.event["emoji"]) == (bob, "👍")
    assert [(r["emoji"], r["count"]) for r in reactions] == [("👍", 1)]
    events.exactly_once(of_type("reaction_removed", command_id=unreact), "reaction_removed")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=ann)
    assert not next(m for m in history if m["message_id"] == message.seq).get("reactions")


def test_pin_and_unpin_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=bob, chat_id=chat_id, content="the rules",
                                   client_msg_id=uid("msg"))
    pin, unpin = uid("pin"), uid("unpin")

    pinned = twice(jetchat.pin_message, chat_id=chat_id, message_id=message.seq, command_id=pin,
                   wait=True)
    seen = events.exactly_once(of_type("message_pinned", command_id=pin), "message_pinned")
    shown = chat_view(server, chat_id, as_user=bob)["pinned"]
    unpinned = asyncio.run(jetchat.apin_message(chat_id=chat_id, message_id=message.seq,
                                                pinned=False, command_id=unpin, wait=True))
    again = asyncio.run(jetchat.apin_message(chat_id=chat_id, message_id=message.seq,
                                             pinned=False, command_id=unpin))

    assert pinned.outcome["outcome"] == unpinned.outcome["outcome"] == "applied"
    assert seen.event["message_id"] == message.seq and seen.event.get("by") is None  # Django's
    assert [(m["message_id"], m["pinned_by"]) for m in shown] == [(message.seq, None)]
    assert again.duplicate
    events.exactly_once(of_type("message_unpinned", command_id=unpin), "message_unpinned")
    assert chat_view(server, chat_id, as_user=bob)["pinned"] == []


def test_set_block_applied_once_and_holds(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    command_id = uid("block")

    first = twice(jetchat.set_block, user_id=ann, blocked_id=bob, command_id=command_id,
                  wait=True)

    assert first.outcome["outcome"] == "applied"
    seen = events.exactly_once(of_type("block_changed", command_id=command_id), "block_changed")
    assert (seen.event["user_id"], seen.event["blocked_id"], seen.event["blocked"]) == \
        (ann, bob, True)
    # The block holds: Bob cannot open a private chat with Ann.
    with pytest.raises(jetchat.CommandRejected) as refused:
        jetchat.create_chat(creator_id=bob, member_ids=[ann], is_group=False)
    assert refused.value.code == "blocked"
    lifted = uid("unblock")
    jetchat.set_block(user_id=ann, blocked_id=bob, blocked=False, command_id=lifted, wait=True)
    events.exactly_once(of_type("block_changed", command_id=lifted, blocked=False),
                        "block_changed")
    opened = jetchat.create_chat(creator_id=bob, member_ids=[ann], is_group=False)
    assert opened.outcome["outcome"] == "chat_ready"


def test_receipts_applied_once(server, events, uid, user_ids):
    ann, bob = user_ids(2)
    chat_id = group(ann, [bob], uid)
    message = jetchat.send_message(sender_id=ann, chat_id=chat_id, content="read me",
                                   client_msg_id=uid("msg"))
    mark = dict(chat_id=chat_id, user_id=bob, message_id=message.seq)

    delivered = twice(jetchat.mark_delivered, **mark)
    events.exactly_once(of_type("receipt", status="delivered", **mark), "delivered receipt")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=ann)
    status_after_delivered = next(m for m in history if m["message_id"] == message.seq)["status"]
    read = twice(jetchat.mark_read, **mark)

    assert delivered.nats_msg_id == f"receipt:{bob}:{chat_id}:delivered:{message.seq}"
    assert read.nats_msg_id == f"receipt:{bob}:{chat_id}:read:{message.seq}"
    assert status_after_delivered == "delivered"
    events.exactly_once(of_type("receipt", status="read", **mark), "read receipt")
    _, history = server.get(f"/chats/{chat_id}/messages", as_user=ann)
    assert next(m for m in history if m["message_id"] == message.seq)["status"] == "read"
    with pytest.raises(ValueError, match="no outcome"):  # receipts are answered by events only
        jetchat.mark_read(wait=True, **mark)
