"""The chat's tables, named and shaped like jetchat's (chats, chat_members, messages), so that
jetchat-load's database check reads the peer's database as it reads jetchat's."""

from django.db import models


class Chat(models.Model):
    name = models.CharField(max_length=255, null=True)
    is_group = models.BooleanField()
    # "<low id>:<high id>": one private chat per pair of users.
    private_key = models.CharField(max_length=64, null=True, unique=True)
    created_by = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "chats"


class ChatMember(models.Model):
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="members")
    user_id = models.BigIntegerField()
    joined_at = models.DateTimeField(auto_now_add=True)
    last_delivered_message_id = models.BigIntegerField(default=0)
    last_read_message_id = models.BigIntegerField(default=0)

    class Meta:
        db_table = "chat_members"
        constraints = [
            models.UniqueConstraint(fields=["chat", "user_id"], name="chat_members_chat_user")
        ]
        indexes = [models.Index(fields=["user_id", "chat"], name="chat_members_user_chat")]


class Message(models.Model):
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    sender_id = models.BigIntegerField()
    content = models.TextField()
    content_type = models.CharField(max_length=16, default="text")
    file_url = models.CharField(max_length=2048, null=True)
    client_msg_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "messages"
        constraints = [
            # A resend with the same client_msg_id is stored once (as in jetchat).
            models.UniqueConstraint(
                fields=["sender_id", "client_msg_id"], name="messages_sender_client_msg_id"
            )
        ]
        indexes = [models.Index(fields=["chat", "id"], name="messages_chat_id_id")]
