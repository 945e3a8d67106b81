"""The app: its checks, the user sync and the push receiver are connected when Django starts."""

from django.apps import AppConfig


class JetchatConfig(AppConfig):
    """jetchat: system checks for ``JETCHAT``, the user sync, the event signals."""

    name = "jetchat_django"
    verbose_name = "jetchat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from . import checks, push  # noqa: F401 - registers the checks
        from .conf import raw
        from .users import user_deleted, user_saved

        if raw().get("SYNC_USERS", True) is True:
            post_save.connect(user_saved, sender=get_user_model(),
                              dispatch_uid="jetchat_django.users.user_saved")
            post_delete.connect(user_deleted, sender=get_user_model(),
                                dispatch_uid="jetchat_django.users.user_deleted")
        push.connect()
