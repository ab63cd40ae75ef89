"""Write limits per principal: REST and socket frames share one budget; a
cache outage lets writes through."""

from __future__ import annotations

import pytest
from django.core.cache import cache
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

    class Down:
        def __getattr__(self, name):
            return down

    monkeypatch.setattr(WriteThrottle, "cache", Down())

    for _ in range(3):
        write_allowed(user, "messages")
    assert "throttle messages not applied: cache unavailable" in caplog.text


@pytest.fixture
def clock(monkeypatch):
    """The throttles' time, moved by hand (starts at a window's beginning)."""
    now = [6_000_000.0]
    monkeypatch.setattr(WriteThrottle, "timer", staticmethod(lambda: now[0]))
    return now


def _refused_for(user) -> float:
    with pytest.raises(Throttled) as excinfo:
        write_allowed(user, "messages")
    return excinfo.value.wait


def test_the_window_slides_and_refused_writes_do_not_count(settings, user, clock):
    _rates(settings, messages="4/min")
    for _ in range(4):
        write_allowed(user, "messages")
    # Full until the next window, then until half of this one has slid out.
    assert _refused_for(user) == 60 + 15
    clock[0] += 30
    assert _refused_for(user) == 30 + 15

    clock[0] += 30  # the next window: the last one still weighs in full
    assert _refused_for(user) == 15
    clock[0] += 15  # a quarter of it has slid out: room for one
    write_allowed(user, "messages")
    assert _refused_for(user) == 15  # the next quarter makes room for another
    clock[0] += 15
    write_allowed(user, "messages")


def test_the_count_is_a_number_however_high_the_rate(settings, user, clock):
    # DRF's own throttles keep every timestamp of the window: a service token's
    # thousands of writes a minute would be read and written whole per write.
    _rates(settings, messages="100000/min")
    for _ in range(500):
        write_allowed(user, "messages")

    window = int(clock[0] // 60)
    assert cache.get(f"throttle_messages_{user.pk}:{window}") == 500
