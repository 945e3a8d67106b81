"""A project's views create a group and post into it, sync and async, through the package."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient


@pytest.mark.django_db(transaction=True)
def test_a_view_creates_a_group_and_posts_into_it(server, events, client, uid, user_ids):
    ann_id, bob, cat = user_ids(3)
    ann = get_user_model().objects.create(id=ann_id, username=f"ann{ann_id}")
    client.force_login(ann)
    request_id = uid("req")

    body = json.dumps({"request_id": request_id, "name": "Crew", "member_ids": [bob, cat]})
    response = client.post("/teams/", body, content_type="application/json")
    retried = client.post("/teams/", body, content_type="application/json")  # a double click

    assert response.status_code == 201 and retried.json() == response.json()
    chat_id, message_id = response.json()["chat_id"], response.json()["message_id"]
    events.exactly_once(lambda e: e.get("type") == "message_created"
                        and e["message"]["message_id"] == message_id, "message_created")
    status, history = server.get(f"/chats/{chat_id}/messages", as_user=cat)
    assert status == 200 and [m["content"] for m in history] == ["Welcome to Crew!"]
    status, chats = server.get("/chats/", as_user=bob)
    assert [c["name"] for c in chats if c["name"] == "Crew"] == ["Crew"]  # one group


@pytest.mark.django_db(transaction=True)
def test_an_async_view_renames_it_once(server, events, uid, user_ids):
    import asyncio

    import jetchat_django as jetchat

    ann, bob = user_ids(2)
    chat_id = jetchat.create_chat(creator_id=ann, member_ids=[bob], name="Old",
                                  command_id=uid("create")).outcome["chat"]["chat_id"]
    body = json.dumps({"name": "New", "request_id": uid("rename")})

    async def twice():
        client = AsyncClient()
        url = f"/teams/{chat_id}/name"
        first = await client.post(url, body, content_type="application/json")
        again = await client.post(url, body, content_type="application/json")
        return first.json(), again.json()

    first, again = asyncio.run(twice())

    assert not first["duplicate"] and again["duplicate"] and again["seq"] == first["seq"]
    events.exactly_once(lambda e: e.get("type") == "chat_renamed" and e["chat_id"] == chat_id,
                        "chat_renamed")
