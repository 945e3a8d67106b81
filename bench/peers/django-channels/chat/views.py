"""REST: `POST /chats/`, as jetchat answers it (201 created, 200 for an existing private
chat, 422 for a bad body)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import frames, store


class CreateChatSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False, allow_null=True)
    is_group = serializers.BooleanField(default=True)
    member_ids = serializers.ListField(child=serializers.IntegerField(min_value=1))

    def validate(self, data):
        others = set(data["member_ids"]) - {self.context["creator"]}
        if not data["is_group"] and len(others) != 1:
            raise serializers.ValidationError("a private chat has exactly one member besides you")
        return data


async def tell_members(chat, member_ids):
    """chat_created to the sockets already open of every member; they join the chat's group."""
    layer = get_channel_layer()
    text = frames.encode(frames.chat_created(chat, member_ids))
    receivers = {}
    if not chat.is_group:
        low, high = member_ids[0], member_ids[-1]
        receivers = {str(low): high, str(high): low}
    for user_id in member_ids:
        await layer.group_send(
            frames.user_group(user_id),
            {"type": "chat.joined", "chat_id": chat.id, "receivers": receivers, "text": text},
        )


class CreateChatView(APIView):
    def post(self, request):
        creator = int(request.user.id)
        body = CreateChatSerializer(data=request.data, context={"creator": creator})
        if not body.is_valid():
            return Response({"detail": body.errors}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        data = body.validated_data
        chat, member_ids, created = store.create_chat(
            creator, data.get("name"), data["is_group"], data["member_ids"]
        )
        if created:
            async_to_sync(tell_members)(chat, member_ids)
        view = frames.chat_created(chat, member_ids)["chat"]
        return Response(view, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
