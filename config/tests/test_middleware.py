import logging

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_request_id_is_echoed_when_valid(api_client, caplog):
    caplog.set_level(logging.INFO, logger="config.request")
    response = api_client.get(reverse("health"), HTTP_X_REQUEST_ID="trace-123.abc")

    assert response["X-Request-ID"] == "trace-123.abc"
    record = next(r for r in caplog.records if r.name == "config.request")
    assert record.request_id == "trace-123.abc"
    assert "GET /api/health/ 200" in record.getMessage()


@pytest.mark.parametrize("supplied", [None, "bad id with spaces", "x" * 300])
def test_request_id_is_generated_otherwise(api_client, supplied):
    extra = {"HTTP_X_REQUEST_ID": supplied} if supplied else {}
    response = api_client.get(reverse("health"), **extra)
    assert len(response["X-Request-ID"]) == 32
    assert response["X-Request-ID"] != supplied


def test_access_log_names_the_principal(auth_client, user, caplog):
    caplog.set_level(logging.INFO, logger="config.request")
    auth_client.get(reverse("users:profile"))
    assert f"user={user.pk}" in caplog.records[-1].getMessage()
