"""OUTBOX_ENABLED follows BROKER_URL unless set."""

from __future__ import annotations

import pytest

from config.tests.test_settings import _production_env, _start

SHOW = (
    "-c",
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.OUTBOX_ENABLED)",
)


@pytest.mark.parametrize(
    ("broker_url", "enabled", "expected"),
    [
        ("", "", "False"),  # a plain `make run`: nothing written for nobody
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "", "True"),
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "False", "False"),
        ("", "True", "True"),  # rows wait for a relay with a target
    ],
)
def test_the_outbox_is_on_exactly_when_a_broker_is_configured(broker_url, enabled, expected):
    started = _start(_production_env(BROKER_URL=broker_url, OUTBOX_ENABLED=enabled), *SHOW)

    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == expected
