"""Views of the test project that use jetchat the way a project's views would."""

import json

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_POST

import jetchat_django as jetchat


@require_POST
@login_required
def start_team(request):
    """Creates a group with the members posted and welcomes them, idempotently per request id
    (a retried POST with the same ``request_id`` creates and says nothing twice)."""
    body = json.loads(request.body)
    key = f"team-{request.user.pk}-{body['request_id']}"
    created = jetchat.create_chat(creator_id=request.user.pk, member_ids=body["member_ids"],
                                  name=body["name"], command_id=key)
    chat_id = created.outcome["chat"]["chat_id"]  # a retried call gets the same chat
    sent = jetchat.send_message(sender_id=request.user.pk, chat_id=chat_id,
                                content=f"Welcome to {body['name']}!", client_msg_id=key)
    return JsonResponse({"chat_id": chat_id, "message_id": sent.seq}, status=201)


async def rename_team(request, chat_id):
    """The same from an async view: ``arename_chat``."""
    body = json.loads(request.body)
    published = await jetchat.arename_chat(chat_id=chat_id, name=body["name"],
                                           command_id=body["request_id"])
    return JsonResponse({"seq": published.seq, "duplicate": published.duplicate})
