"""Outages of Redis and PostgreSQL, staged with a TCP proxy (``tcp_proxy``) in
front of the real servers: clients get an answer, quickly, and the app comes
back as soon as the dependency does."""

from __future__ import annotations

import json
import logging
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.http import HttpResponse
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory
from config.tests import openapi
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

SESSIONS = "/api/chat-history/sessions/"
# A write that publishes to a hung channel layer waits the publish timeout
# (REALTIME_PUBLISH_TIMEOUT, 1 s) and no more; this leaves room for a slow machine.
PUBLISH_BOUND = 3


def _through(proxy, url: str) -> str:
    """``url`` with the proxy's address instead of the server's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return parts._replace(
        netloc=f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    ).geturl()


@pytest.fixture
def redis_proxy(settings, tcp_proxy):
    redis = urlsplit(settings.REDIS_URL)
    return tcp_proxy(redis.port or 6379, redis.hostname or "127.0.0.1")


def _cache_through(settings, proxy) -> None:
    cache = settings.CACHES["default"]
    settings.CACHES = {"default": {**cache, "LOCATION": _through(proxy, cache["LOCATION"])}}


def _layer_through(settings, proxy) -> None:
    layer = settings.CHANNEL_LAYERS["default"]
    hosts = [
        {**host, "address": _through(proxy, host["address"])} for host in layer["CONFIG"]["hosts"]
    ]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": hosts}}}


# --- Redis as the cache: throttles fail open ----------------------------------------


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["stop", "hang"])
def test_login_and_registration_answer_while_the_cache_is_down(
    api_client, settings, redis_proxy, caplog, outage
):
    user = UserFactory()
    _cache_through(settings, redis_proxy)
    getattr(redis_proxy, outage)()
    caplog.set_level(logging.WARNING, logger="core.throttles")

    login = api_client.post(
        reverse("users:auth-login"), {"email": user.email, "password": DEFAULT_PASSWORD}
    )
    password = "a-much-better-passphrase-42"
    registration = api_client.post(
        reverse("users:auth-register"),
        {
            "username": "newcomer",
            "email": "new@example.com",
            "password": password,
            "password_confirm": password,
        },
    )

    assert login.status_code == 200
    assert registration.status_code == 201
    assert "throttle login_client not applied: cache unavailable" in caplog.text
    assert "throttle login_account not applied: cache unavailable" in caplog.text
    assert "throttle register not applied: cache unavailable" in caplog.text


@pytest.mark.redis
@pytest.mark.django_db
def test_health_reports_a_hung_redis_quickly(api_client, settings, redis_proxy):
    _cache_through(settings, redis_proxy)
    _layer_through(settings, redis_proxy)
    redis_proxy.hang()

    started = time.monotonic()
    response = api_client.get(reverse("health"))
    waited = time.monotonic() - started

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"]["status"] == checks["channel_layer"]["status"] == "unavailable"
    assert checks["database"]["status"] == "ok"
    assert waited < 5  # the cache's short timeouts and a bounded round trip; was 10 s and more


# --- Redis as the channel layer: a circuit breaker ------------------------------------


def _message(client, session, content: str):
    url = reverse("chat_history:session-messages", args=[session.session_id])
    started = time.monotonic()
    response = client.post(url, {"role": "user", "content": content})
    return response, time.monotonic() - started


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_writes_skip_a_hung_channel_layer_after_one_bounded_wait(
    settings, redis_proxy, make_auth_client
):
    from realtime.publish import layer_breaker

    session = ChatSessionFactory()
    client = make_auth_client(session.user)
    _layer_through(settings, redis_proxy)
    redis_proxy.hang()

    first, waited = _message(client, session, "first")
    breaker = layer_breaker()
    skipped, bytes_sent = breaker.skipped, redis_proxy.bytes_in
    second, _ = _message(client, session, "second")

    assert (first.status_code, second.status_code) == (201, 201)
    assert waited < PUBLISH_BOUND  # the old code waited 5 s
    assert breaker.is_open
    assert breaker.skipped > skipped  # the second write did not try the layer...
    assert redis_proxy.bytes_in == bytes_sent  # ...and sent Redis nothing


@pytest.mark.redis
def test_the_layer_is_tried_again_after_the_back_off(settings, redis_proxy):
    from realtime.publish import layer_breaker, publish

    settings.REALTIME_PUBLISH_BACKOFF = 0
    _layer_through(settings, redis_proxy)
    redis_proxy.stop()
    assert publish("test.outage", {"type": "lost"}) is False
    assert layer_breaker().is_open

    redis_proxy.start()

    assert publish("test.outage", {"type": "delivered"}) is True
    assert not layer_breaker().is_open


def _request(address: str, path: str, *, token: str = "", body: dict | None = None):
    """(status, headers, JSON body, seconds) of a request to the real server."""
    request = urllib.request.Request(
        f"http://{address}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
        method="GET" if body is None else "POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            answer = response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        answer = error.code, error.headers, json.loads(error.read())
    return *answer, time.monotonic() - started


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_real_server_bounds_a_write_during_a_hung_redis(asgi_server, settings, redis_proxy):
    session = ChatSessionFactory()
    token = str(AccessToken.for_user(session.user))
    path = f"{SESSIONS}{session.session_id}/messages/"
    redis_url = _through(redis_proxy, settings.REDIS_URL)
    with tempfile.TemporaryFile(mode="w+") as log:
        with asgi_server(log=log, REDIS_URL=redis_url, LOG_LEVEL="DEBUG") as address:
            redis_proxy.hang()
            first = _request(address, path, token=token, body={"role": "user", "content": "1"})
            second = _request(address, path, token=token, body={"role": "user", "content": "2"})
        log.seek(0)
        output = log.read()

    assert (first[0], second[0]) == (201, 201)
    assert first[3] < PUBLISH_BOUND  # the old code waited ~10 s
    # The first write waited for the layer and opened the breaker; the second
    # skipped the layer without waiting (its rate-limit check still asks the
    # hung cache, which gives up after REDIS_CACHE_TIMEOUT_MS: that is not it).
    assert output.count("could not publish message.created") == 1
    assert "skipped message.created" in output


# --- PostgreSQL -----------------------------------------------------------------------


def _schema_problems(path: str, status: int, body: dict) -> list[str]:
    """What the published OpenAPI document says is wrong with a real server's answer."""
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response.request = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    return openapi.response_problems(response)[1]


@pytest.mark.postgres
def test_a_database_outage_is_a_quick_503_and_recovery_is_immediate(asgi_server, tcp_proxy):
    from conftest import _database_url

    db = connection.settings_dict
    proxy = tcp_proxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1")
    token = str(AccessToken.for_user(UserFactory()))
    pool = {"DB_POOL": "True", "DATABASE_URL": _through(proxy, _database_url())}
    with asgi_server(**pool) as address:
        before = _request(address, SESSIONS, token=token)
        proxy.stop()
        during = _request(address, SESSIONS, token=token)
        health_during = _request(address, "/api/health/")
        proxy.start()
        after = _request(address, SESSIONS, token=token)
        health_after = _request(address, "/api/health/")

    assert before[0] == 200
    status, headers, body, waited = during
    assert (status, body["code"]) == (503, "database_unavailable")
    assert int(headers["Retry-After"]) > 0
    assert waited < 6  # the pool's 3 s wait, not 10 s
    assert _schema_problems(SESSIONS, status, body) == []
    assert health_during[0] == 503
    assert health_during[2]["checks"]["database"]["status"] == "unavailable"
    assert after[0] == 200  # the first request after the database is back
    assert health_after[0] == 200
