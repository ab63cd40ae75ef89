"""Errors Django raises outside DRF views are JSON too."""

import json
import re
import uuid

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from config import views
from config.tests import openapi

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope/", "/api/users/nope", "/not-an-api/"])
def test_unknown_urls_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/users/login", "/api/nope/"])
def test_unsafe_methods_on_unknown_api_urls_are_json_404_not_a_csrf_page(path, method):
    client = Client(enforce_csrf_checks=True)

    response = getattr(client, method)(path, data="{}", content_type="application/json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_failed_csrf_check_under_api_is_json(rf):
    request = rf.post("/api/anything/")

    response = views.csrf_failure(request, reason="CSRF cookie not set.")

    assert response.status_code == 403
    assert json.loads(response.content)["code"] == "csrf_failed"


@pytest.mark.parametrize("caller", ["auth_client", "service_client"])
def test_options_describes_every_route_to_any_signed_in_caller(caller, request):
    client = request.getfixturevalue(caller)
    paths = {operation.path for operation in openapi.operations()}
    for path in sorted(paths):
        for uuid_param in ("{session_id}", "{job_id}"):
            path = path.replace(uuid_param, str(uuid.uuid4()))
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        response = client.options(concrete)
        assert response.status_code == 200, (path, response.content)
        body = response.json()
        assert body["schema"] == "/api/schema/"
        assert "application/json" in body["renders"]


def test_api_docs_load_their_assets_from_our_static_files(client):
    for url in ("/api/docs/", "/api/redoc/"):
        html = client.get(url).content.decode()
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets, url
        for asset in assets:
            assert asset.startswith("/static/"), asset
            assert client.get(asset).status_code == 200, asset


def test_missing_trailing_slash_gets_a_hint(client):
    body = client.get("/api/users/profile").json()
    assert "Did you mean /api/users/profile/ ?" in body["detail"]


@override_settings(DEBUG=True)
def test_unknown_api_urls_are_json_even_in_debug(client):
    response = client.get("/api/definitely/not/here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_json_405(api_client):
    response = api_client.get(reverse("users:auth-login"))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_oversized_json_body_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api_client.post(
        reverse("users:auth-login"), {"email": "a@b.co", "password": "x" * 5000}, format="json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_malformed_json_is_a_400(api_client):
    response = api_client.post(
        reverse("users:auth-login"), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_error_handlers_return_the_shared_shape(rf):
    request = rf.get("/x")
    for handler, status in [
        (views.bad_request, 400),
        (views.permission_denied, 403),
        (views.not_found, 404),
    ]:
        response = handler(request, Exception("boom"))
        assert response.status_code == status
        assert set(__import__("json").loads(response.content)) == {"detail", "code"}
    response = views.server_error(request)
    assert response.status_code == 500
    assert b"Traceback" not in response.content


@pytest.fixture
def bench_urls(settings):
    """Reload the URL conf with BENCH_ENDPOINTS on; restore it afterwards."""
    import importlib

    from django.urls import clear_url_caches

    import config.urls

    settings.BENCH_ENDPOINTS = True
    clear_url_caches()
    importlib.reload(config.urls)
    yield
    settings.BENCH_ENDPOINTS = False
    clear_url_caches()
    importlib.reload(config.urls)


def test_bench_ceiling_is_not_routed_by_default(client):
    response = client.get("/api/bench/ceiling/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.usefixtures("bench_urls")
def test_bench_ceiling_answers_without_credentials_when_enabled(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("bench-ceiling"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "chatbot"}
    # The catch-all still follows it.
    assert client.get("/api/bench/nope/").json()["code"] == "not_found"
