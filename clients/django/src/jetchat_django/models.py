"""The one table this package keeps: which receiver already handled which event."""

from django.db import models


class HandledEvent(models.Model):
    """A receiver wrapped in ``idempotency.once`` handled the event ``key`` names.

    Rows older than jetchat's ``EVENTS_MAX_AGE`` (7 days by default) can be deleted: such an
    event cannot be delivered again.
    """

    key = models.CharField(max_length=255, primary_key=True)
    handled_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "handled jetchat event"

    def __str__(self):
        return self.key
