from django.db import models


class TimestampedModel(models.Model):
    """``created_at``/``updated_at`` for every table (aware datetimes, UTC)."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
