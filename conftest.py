"""Fixtures shared by every app's tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from users.tests.factories import UserFactory, service_token_create


def pytest_collection_modifyitems(config, items):
    """``postgres`` tests run only on PostgreSQL, ``redis`` tests only with
    REDIS_URL, ``rabbitmq`` tests only with BROKER_URL."""
    from django.conf import settings
    from django.db import connection

    skips = {
        "postgres": connection.vendor != "postgresql" and "needs PostgreSQL (DATABASE_URL)",
        "redis": not settings.REDIS_URL and "needs Redis (REDIS_URL)",
        "rabbitmq": not settings.BROKER_URL and "needs RabbitMQ (BROKER_URL)",
    }
    for item in items:
        for marker, reason in skips.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _delete_own_redis_keys() -> None:
    """Delete the keys this run wrote (``REDIS_KEY_PREFIX``), never anyone else's."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Throttle counters live in the cache; no test should inherit another's.
    # With Redis only this run's keys go: cache.clear() would flush the database.
    clear = _delete_own_redis_keys if settings.REDIS_URL else cache.clear
    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _fresh_online_registry():
    """Without Redis, who is online lives in this process (``realtime.presence``):
    no test inherits another's (a user id reused after a rollback would show an
    earlier test's ``last_seen_at``). With Redis, ``_fresh_cache`` deletes it."""
    from realtime import presence

    if not settings.REDIS_URL:
        presence._online = None


@pytest.fixture(autouse=True, scope="session")
def _redis_left_clean():
    """At the end of the run, nothing this run wrote stays in Redis."""
    yield
    if settings.REDIS_URL:
        _delete_own_redis_keys()


@pytest.fixture(autouse=True)
def _close_connections_of_the_sync_thread(request):
    """After an async test, close what its ``sync_to_async`` calls left open.

    Outside a server, asgiref runs every thread-sensitive call (the consumers'
    database work) on one process-wide worker thread, whose connections outlive
    the test; left open, they keep the test database busy and its teardown
    fails. The connections belong to that thread, so it closes them itself.
    """
    yield
    if request.node.get_closest_marker("asyncio") is not None:
        from asgiref.sync import SyncToAsync
        from django.db import connections

        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture(autouse=True)
def _channel_layer_of_its_own(request):
    """An async test gets channel layer instances of its own, as a server process
    does: one event loop per instance.

    channels_redis keeps process-local receive state per instance (a receive
    lock, per-channel clean-up locks) and binds it to the loop that uses it; a
    receive cancelled while it waits leaks such a lock (``ChannelLock.acquire``
    is not cancellation-safe), and the next test's loop then meets a lock bound
    to the previous one ("bound to a different event loop"). Sync tests keep
    the shared instances (the publisher's loop holds their connections).
    """
    if request.node.get_closest_marker("asyncio") is None:
        yield
        return
    from channels.layers import channel_layers

    shared = channel_layers.backends
    channel_layers.backends = {}
    try:
        yield
    finally:
        channel_layers.backends = shared


@pytest.fixture
def published(monkeypatch):
    """Every event published after commit, as ``(group, event)`` pairs.

    Replaces the channel-layer send itself (``realtime.publish._send_many``),
    so what is recorded is exactly the encoded frames that would go to the
    sockets, and only once the transaction has committed.
    """
    sent: list[tuple[str, dict]] = []

    def record(batch):
        sent.extend((group, json.loads(message["text"])) for group, message in batch)
        return True

    monkeypatch.setattr("realtime.publish._send_many", record)
    return sent


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
def staff_client(client, db):
    """Django's test client signed in to the admin as a superuser."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


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


# --- A real server ---------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_run_uvicorn_flags() -> list[str]:
    """The flags ``make run`` gives uvicorn (the Makefile's ``UVICORN_FLAGS``)."""
    for line in (PROJECT / "Makefile").read_text().splitlines():
        if line.startswith("UVICORN_FLAGS :="):
            return line.split(":=", 1)[1].split()
    raise AssertionError("no UVICORN_FLAGS in the Makefile")


@contextmanager
def _asgi_server(*, log=None, **environment: str):
    """``uvicorn config.asgi:application`` on a free port, as ``make run`` starts it;
    ``environment`` overrides its variables (``DATABASE_URL``, ``DB_POOL``, ...).
    With ``log`` (a writable file), everything the server prints at level
    info goes there, for the test to read; otherwise only warnings, discarded."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "ENCRYPTION_KEY": ",".join(settings.ENCRYPTION_KEYS),
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_POOL": "False",
        **environment,
    }
    # A file, not a pipe: nobody reads the output while the server runs, and a
    # full pipe would block the server on its next log line.
    output = log or tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *make_run_uvicorn_flags(),
            "--log-level",
            "info" if log else "warning",
        ],
        cwd=PROJECT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_up(port, server, output)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if log is None:
            output.close()


def _wait_until_up(port: int, server: subprocess.Popen, output) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output.seek(0)
            raise AssertionError(f"server exited: {output.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up in 30 s")


@pytest.fixture
def asgi_server(transactional_db):
    """``with asgi_server() as "host:port":`` the real ASGI server in a subprocess.

    It opens the test database (so tests see committed data only:
    ``transactional_db``) with the test run's secrets, so a token minted in the
    test is valid there. Keyword arguments override its environment:
    ``asgi_server(DB_POOL="True", REDIS_URL=f"redis://127.0.0.1:{proxy.port}/13")``.
    """
    return _asgi_server


# --- Outages: a TCP proxy in front of PostgreSQL or Redis --------------------------


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to a real server, and stages its outages.

    ``stop()`` refuses new connections and drops the open ones (the server is
    down), ``hang()`` accepts connections and answers nothing on any of them
    (the server is hung), ``start()`` forwards again (after a hang, on fresh
    connections only). ``connections`` counts the connections accepted and
    ``bytes_in`` the bytes clients sent, whatever the mode.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = _free_port()
        self.mode = "forward"
        self.connections = 0
        self.bytes_in = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen()

    def start(self) -> None:
        self._drop_connections()  # a hung one may hold half a reply
        self.mode = "forward"
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self.mode = "down"
        listener, self._listener = self._listener, None
        if listener is not None:
            _shut(listener)
        self._drop_connections()

    def hang(self) -> None:
        self.mode = "hang"

    def close(self) -> None:
        self.stop()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            with self._lock:
                self.connections += 1
                self._sockets.add(client)
            if self.mode == "down":  # accepted just before the stop
                _shut(client)
            elif self.mode == "hang":
                self._run(self._pump, client, None, from_client=True)
            else:
                self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            _shut(client)
            return
        with self._lock:
            self._sockets.add(server)
        self._run(self._pump, client, server, from_client=True)
        self._run(self._pump, server, client, from_client=False)

    @staticmethod
    def _run(target, *args, **kwargs) -> None:
        threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True).start()

    def _pump(
        self, source: socket.socket, target: socket.socket | None, *, from_client: bool
    ) -> None:
        """Copies ``source`` to ``target`` while forwarding; swallows it otherwise."""
        try:
            while data := source.recv(65536):
                if from_client:
                    with self._lock:
                        self.bytes_in += len(data)
                if self.mode == "forward" and target is not None:
                    target.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            if target is not None:
                _shut(target)

    def _drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def tcp_proxy():
    """``tcp_proxy(5432)``: a ``TcpProxy`` to that port (on 127.0.0.1 unless a host
    is given), closed after the test."""
    proxies: list[TcpProxy] = []

    def _make(upstream_port: int, upstream_host: str = "127.0.0.1") -> TcpProxy:
        proxies.append(TcpProxy(upstream_port, upstream_host))
        return proxies[-1]

    yield _make
    for proxy in proxies:
        proxy.close()


# --- Every response matches the published OpenAPI document ----------------------


@pytest.fixture(autouse=True)
def _responses_match_the_schema(request, monkeypatch):
    """Check each test client response against ``/api/schema/`` (``config.tests.openapi``).

    A mismatch fails the test that received the response, at its teardown.
    """
    from django.test import Client

    from config.tests import openapi

    problems: list[str] = []
    send = Client.request

    def checked(self, **kwargs):
        response = send(self, **kwargs)
        problems.extend(openapi.response_problems(response)[1])
        return response

    monkeypatch.setattr(Client, "request", checked)
    yield
    if problems:
        pytest.fail(
            "Responses that the OpenAPI document does not describe:\n" + "\n".join(problems)
        )
