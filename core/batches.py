"""Reading a large set of rows a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def iter_by_pk(
    rows: models.QuerySet[M], *, batch_size: int, order_by: tuple[str, ...] = ("pk",)
) -> Iterator[M]:
    """Every row of ``rows`` in ascending primary key order, ``batch_size`` at a time.

    Keyset batches rather than one cursor: a slow consumer (a download, a
    purge) never holds a database cursor or transaction open, memory holds one
    batch, and each batch is read afresh, so what the consumer changed or
    deleted meanwhile is seen as it is now. ``order_by`` must sort by the
    primary key; it may lead with a column the filter pins to one value, to
    steer the database to an index.
    """
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page.order_by(*order_by)[:batch_size])
        if not batch:
            return
        last = batch[-1].pk  # before the consumer may delete it (a deleted row's pk is None)
        full = len(batch) == batch_size
        yield from batch
        del batch  # released before the next batch is read: one in memory, not two
        if not full:
            return
