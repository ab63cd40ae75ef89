"""Re-encrypt every EncryptedTextField value with the newest Fernet key."""

from __future__ import annotations

from django.apps import apps
from django.db import models
from django.db.models.functions import Cast

from config import crypto
from config.fields import EncryptedTextField


def encrypted_columns() -> list[tuple[type[models.Model], models.Field]]:
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def rotate_encrypted_fields(batch_size: int = 500) -> dict[str, tuple[int, int]]:
    """``{"app.Model.field": (changed, scanned)}`` for every encrypted column."""
    return {
        f"{model._meta.label}.{field.name}": _rotate_column(model, field, batch_size)
        for model, field in encrypted_columns()
    }


def _rotate_column(model: type[models.Model], field: models.Field, batch_size: int):
    # Cast to a plain text column reads (and compares) the stored ciphertext
    # without the field decrypting it.
    ciphertext = Cast(field.attname, output_field=models.TextField())
    rows = (
        model._default_manager.exclude(**{f"{field.attname}__isnull": True})
        .exclude(**{field.attname: ""})
        .annotate(_ciphertext=ciphertext)
        .order_by("pk")
    )
    changed = scanned = 0
    last_pk = None
    while True:
        page = rows if last_pk is None else rows.filter(pk__gt=last_pk)
        batch = list(page.values_list("pk", "_ciphertext")[:batch_size])
        if not batch:
            return changed, scanned
        for pk, token in batch:
            scanned += 1
            if crypto.is_current(token):
                continue
            # Compare-and-swap: a value rewritten meanwhile (a user setting a new
            # key) is left alone; it is already on the newest key.
            changed += (
                model._default_manager.filter(pk=pk)
                .annotate(_ciphertext=ciphertext)
                .filter(_ciphertext=token)
                .update(**{field.attname: models.Value(crypto.rotate(token), models.TextField())})
            )
        last_pk = batch[-1][0]
