"""The ORM side: every query the consumer and the view make, synchronous (the consumer calls
them through database_sync_to_async)."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from .models import Chat, ChatMember, Message


def memberships(user_id):
    """{chat_id: receiver_id} of the user's chats: the other member of a private chat, None
    for a group."""
    chats = dict(
        ChatMember.objects.filter(user_id=user_id).values_list("chat_id", "chat__is_group")
    )
    private = [chat_id for chat_id, is_group in chats.items() if not is_group]
    others = dict(
        ChatMember.objects.filter(chat_id__in=private)
        .exclude(user_id=user_id)
        .values_list("chat_id", "user_id")
    )
    return {chat_id: others.get(chat_id) for chat_id in chats}


def store_message(chat_id, sender_id, content, content_type, file_url, client_msg_id):
    """The message, stored once per (sender, client_msg_id); (message, created)."""
    return Message.objects.get_or_create(
        sender_id=sender_id,
        client_msg_id=client_msg_id,
        defaults={
            "chat_id": chat_id,
            "content": content,
            "content_type": content_type,
            "file_url": file_url,
        },
    )


def mark(user_id, message_id, read):
    """Moves the user's delivered (and with `read`, read) watermark of the message's chat up
    to the message; the message's (chat_id, sender_id) when a watermark moved, else None.
    Only a member other than the author marks a message."""
    found = Message.objects.filter(id=message_id).values_list("chat_id", "sender_id").first()
    if found is None or found[1] == user_id:
        return None
    chat_id, _ = found
    members = ChatMember.objects.filter(chat_id=chat_id, user_id=user_id)
    if read:
        moved = members.filter(last_read_message_id__lt=message_id).update(
            last_read_message_id=message_id,
            last_delivered_message_id=Greatest(F("last_delivered_message_id"), message_id),
        )
    else:
        moved = members.filter(last_delivered_message_id__lt=message_id).update(
            last_delivered_message_id=message_id
        )
    return found if moved else None


def create_chat(creator_id, name, is_group, member_ids):
    """(chat, member ids, created): a private chat between two users exists once."""
    members = sorted({creator_id, *member_ids})
    private_key = None if is_group else f"{members[0]}:{members[-1]}"
    if private_key is not None:
        existing = Chat.objects.filter(private_key=private_key).first()
        if existing is not None:
            return existing, members, False
    try:
        with transaction.atomic():
            chat = Chat.objects.create(
                name=name, is_group=is_group, private_key=private_key, created_by=creator_id
            )
            ChatMember.objects.bulk_create(
                [ChatMember(chat=chat, user_id=user_id) for user_id in members]
            )
    except IntegrityError:
        # Another request created the same private chat in the meantime.
        return Chat.objects.get(private_key=private_key), members, False
    return chat, members, True
