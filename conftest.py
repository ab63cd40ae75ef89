"""Fixtures shared by every app's tests."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from users.tests.factories import UserFactory, service_token_create


def pytest_collection_modifyitems(config, items):
    """``postgres`` tests run only on PostgreSQL, ``redis`` tests only with REDIS_URL."""
    from django.conf import settings
    from django.db import connection

    skips = {
        "postgres": connection.vendor != "postgresql" and "needs PostgreSQL (DATABASE_URL)",
        "redis": not settings.REDIS_URL and "needs Redis (REDIS_URL)",
    }
    for item in items:
        for marker, reason in skips.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Throttle counters live in the cache; no test should inherit another's.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def make_auth_client():
    def _make(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return _make


@pytest.fixture
def make_service_client(db):
    """A client carrying a real service token with the given scopes."""

    def _make(*scopes: str):
        _, secret = service_token_create(scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return _make


@pytest.fixture
def service_client(make_service_client):
    """A service token with every scope."""
    from users.models import Scope

    return make_service_client(*Scope.values)


@pytest.fixture
def run_concurrently():
    """``run_concurrently(count, work)``: ``work(index)`` in ``count`` threads released
    at once by a barrier; returns each result, or the exception it raised.

    For races that only a real database shows (row locks, unique constraints):
    use with ``@pytest.mark.django_db(transaction=True)``. Each thread closes its
    own database connection.
    """

    def _run(count: int, work) -> list:
        barrier = threading.Barrier(count)
        results: list = [None] * count

        def run(index: int) -> None:
            try:
                barrier.wait(timeout=10)
                results[index] = work(index)
            except Exception as exc:  # returned to the test, which asserts on it
                results[index] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results

    return _run
