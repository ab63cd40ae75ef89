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
