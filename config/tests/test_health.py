from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db.utils import OperationalError
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db


def test_health_reports_each_dependency(api_client):
    response = api_client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"


def test_health_is_503_when_the_database_is_down(api_client, monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise OperationalError("connection refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())

    response = api_client.get(reverse("health"))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"status": "unavailable", "error": "OperationalError"}


@pytest.mark.redis
def test_the_channel_layer_check_holds_when_threads_probe_at_once():
    """Under a WSGI server each thread probes on a loop of its own (async_to_sync);
    the layer's process-local receive state must not be shared between them."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: _checked(health.check_channel_layer), range(40)))
    assert results == [None] * 40


def _checked(check) -> str | None:
    try:
        check()
    except Exception as error:  # the test reports which probe failed, and how
        return repr(error)
    return None
