from __future__ import annotations

from datetime import UTC, datetime

import pytest


@pytest.fixture
def clock(monkeypatch):
    """``clock.set(datetime)``: what ``timezone.now()`` returns from then on
    (the ledger's rows and their UTC days and months follow it)."""

    class Clock:
        now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)

        def set(self, moment: datetime) -> None:
            self.now = moment

    clock = Clock()
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock.now)
    return clock
