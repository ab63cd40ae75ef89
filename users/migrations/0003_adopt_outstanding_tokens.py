"""Bring the live refresh tokens of simplejwt's blacklist app into ``refresh_tokens``.

Every unexpired, non-blacklisted OutstandingToken of an existing user becomes
a record of its own family (those tokens carry no ``fam`` claim), so refresh
tokens issued before the change keep working. The token text is not copied.
Safe to run twice: a jti already present is skipped.
"""

import uuid

from django.db import migrations
from django.utils import timezone

BATCH_SIZE = 1000


def adopt_outstanding_tokens(apps, schema_editor):
    OutstandingToken = apps.get_model("token_blacklist", "OutstandingToken")
    RefreshTokenRecord = apps.get_model("users", "RefreshTokenRecord")
    now = timezone.now()
    live = (
        OutstandingToken.objects.filter(
            expires_at__gt=now, user__isnull=False, blacklistedtoken__isnull=True
        )
        .order_by("pk")
        .values_list("jti", "user_id", "created_at", "expires_at")
    )
    batch = []
    for jti, user_id, created_at, expires_at in live.iterator(chunk_size=BATCH_SIZE):
        issued_at = created_at if created_at is not None and created_at < expires_at else now
        batch.append(
            RefreshTokenRecord(
                jti=jti,
                family_id=uuid.uuid4(),
                user_id=user_id,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )
        if len(batch) == BATCH_SIZE:
            RefreshTokenRecord.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    RefreshTokenRecord.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_refresh_token_records"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [
        migrations.RunPython(adopt_outstanding_tokens, migrations.RunPython.noop, elidable=True),
    ]
