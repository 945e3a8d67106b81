from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The project's own side of jetchat: what it does with events (``receivers.py``)."""

    name = "chat"

    def ready(self):
        from . import receivers  # noqa: F401 - connects the signal receivers
