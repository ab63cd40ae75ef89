"""The client against the real server: ``uvicorn config.asgi:application`` on the
test database (the repository's ``asgi_server`` fixture), SQLite or PostgreSQL
as the run is. These tests need the backend's test settings, so they run from
the repository (``make test``, ``pytest clients``); collected anywhere else
(the package on its own), they are left out."""

from __future__ import annotations

import pytest

try:
    from django.conf import settings

    _IN_THE_BACKEND = settings.configured
except ImportError:  # the client installed without the backend
    _IN_THE_BACKEND = False

if not _IN_THE_BACKEND:
    collect_ignore_glob = ["test_*.py"]
else:
    from chatbot_client import ChatbotClient

    @pytest.fixture
    def start_server(asgi_server, tmp_path):
        """``with start_server(**environment) as base_url:`` the real server; its
        uploads go to this test's folder."""

        def _start(**environment: str):
            environment.setdefault("DJANGO_MEDIA_ROOT", str(tmp_path / "server-media"))
            return _BaseUrl(asgi_server(**environment))

        return _start

    class _BaseUrl:
        def __init__(self, server):
            self.server = server

        def __enter__(self) -> str:
            return f"http://{self.server.__enter__()}"

        def __exit__(self, *exc_info):
            return self.server.__exit__(*exc_info)

    @pytest.fixture
    def make_token(transactional_db):
        """``make_token(*scopes)``: a real service token's secret (every scope by default)."""
        from users.models import Scope
        from users.tests.factories import service_token_create

        def _make(*scopes: str) -> str:
            _, secret = service_token_create(scopes=list(scopes or Scope.values))
            return secret

        return _make

    @pytest.fixture
    def base_url(start_server):
        with start_server() as url:
            yield url

    @pytest.fixture
    def client(base_url, make_token):
        with ChatbotClient(base_url, make_token(), max_retries=2) as live_client:
            yield live_client

    @pytest.fixture
    def user(transactional_db):
        from users.tests.factories import UserFactory

        return UserFactory()
