"""Fixtures shared by every app's tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache
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
