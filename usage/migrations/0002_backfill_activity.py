"""The dashboard's activity for what was written before the usage app: the
sessions each user created and the messages their sessions gained, per UTC
month, into the users' monthly total rows (``key_id`` 0), as
``usage_activity_count`` would have counted them. Imported sessions cannot be
told apart any more and are counted too. Token usage has no past: the old
``metadata.tokens_used`` named no model or key, so nothing is made up for it.
Going back leaves the rows; running it again sets those two counts anew.
"""

from django.db import migrations
from django.db.models import Count, DateField, F
from django.db.models.functions import TruncMonth
from django.utils import timezone

BATCH_SIZE = 1000


def _per_user_month(model, user_field):
    return (
        model.objects.annotate(
            owner=F(user_field), month=TruncMonth("created_at", output_field=DateField())
        )
        .values("owner", "month")
        .annotate(count=Count("pk"))
        .order_by()
    )


def backfill(apps, schema_editor):
    ChatSession = apps.get_model("chat_history", "ChatSession")
    ChatMessage = apps.get_model("chat_history", "ChatMessage")
    UsageMonthly = apps.get_model("usage", "UsageMonthly")
    rows: dict[tuple[int, object], dict[str, int]] = {}
    for field, model, owner in (
        ("sessions", ChatSession, "user_id"),
        ("messages", ChatMessage, "session__user_id"),
    ):
        for row in _per_user_month(model, owner).iterator(chunk_size=BATCH_SIZE):
            counts = rows.setdefault((row["owner"], row["month"]), {"sessions": 0, "messages": 0})
            counts[field] = row["count"]
    now = timezone.now()
    UsageMonthly.objects.bulk_create(
        (
            UsageMonthly(
                user_id=user_id, month=month, key_id=0, created_at=now, updated_at=now, **counts
            )
            for (user_id, month), counts in rows.items()
        ),
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["user", "month", "key_id"],
        update_fields=["sessions", "messages"],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_initial"),
        ("chat_history", "0006_members_authors"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
