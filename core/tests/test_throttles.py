"""Write limits per principal: REST and socket frames share one budget; a
cache outage lets writes through."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.exceptions import Throttled

from core.throttles import WriteThrottle, write_allowed

pytestmark = pytest.mark.django_db


def _rates(settings, **rates: str) -> None:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {**current, **rates}
    }


def test_a_user_is_limited_per_kind_of_write(settings, user, other_user):
    _rates(settings, messages="2/min")

    write_allowed(user, "messages")
    write_allowed(user, "messages")
    with pytest.raises(Throttled) as excinfo:
        write_allowed(user, "messages")

    assert excinfo.value.wait > 0
    write_allowed(other_user, "messages")  # each user has a budget of their own


def test_a_service_token_counts_under_a_rate_of_its_own(settings, service_client):
    from users.models import ServiceToken
    from users.principals import ServicePrincipal

    _rates(settings, messages="1/min", service_messages="3/min")
    principal = ServicePrincipal(ServiceToken.objects.get())

    for _ in range(3):
        write_allowed(principal, "messages")
    with pytest.raises(Throttled):
        write_allowed(principal, "messages")


def test_a_cache_outage_lets_writes_through_with_a_warning(settings, user, monkeypatch, caplog):
    _rates(settings, messages="1/min")

    def down(*args, **kwargs):
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(WriteThrottle, "cache", type("Down", (), {"get": down, "set": down})())

    for _ in range(3):
        write_allowed(user, "messages")
    assert "throttle messages not applied: cache unavailable" in caplog.text
