from django.apps import AppConfig


class ChatConfig(AppConfig):
    """jetchat integration: tokens, the event consumer and command injection."""

    name = "chat"
