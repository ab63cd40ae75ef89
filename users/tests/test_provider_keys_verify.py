"""Checking a key with its provider (``POST /api/users/keys/{id}/verify/``)
against a fake provider served by the test on 127.0.0.1, never the internet;
and the guard against server-side request forgery."""

from __future__ import annotations

import datetime
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from users import providers, services
from users.models import KeyStatus, Provider, ProviderKey
from users.tests.factories import ProviderKeyFactory, sample_key

pytestmark = pytest.mark.django_db

SLOW_SECONDS = 1.0
TIMEOUT = 0.3


class FakeProvider(ThreadingHTTPServer):
    """Answers like an LLM provider: 200 and a model list for a key in
    ``good_keys``, 401 for any other; under ``/slow`` it sleeps past the
    timeout, under ``/broken`` it answers 500, under ``/moved`` 302. Every
    request's path and headers are kept in ``requests``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.good_keys: set[str] = set()
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeProvider

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.requests.append({"path": self.path, "headers": headers})
        if self.path.startswith("/slow"):
            time.sleep(SLOW_SECONDS)
        if self.path.startswith("/broken"):
            return self._answer(500, {"error": "the body of an error"})
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return None
        presented = {
            headers.get("authorization", "").removeprefix("Bearer "),
            headers.get("x-api-key"),
            headers.get("x-goog-api-key"),
            headers.get("api-key"),
        }
        if presented & self.server.good_keys:
            return self._answer(200, {"data": [{"id": "gpt-4o-mini", "object": "model"}]})
        return self._answer(401, {"error": {"message": "Incorrect API key provided"}})

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (the timeout test)
            pass

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def fake_provider(settings) -> Iterator[FakeProvider]:
    """The fake provider, running; every provider's endpoint points at it, private
    addresses allowed (it is on 127.0.0.1) and the timeout short."""
    server = FakeProvider()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.PROVIDER_BASE_URLS = {
        "openai": server.url + "/v1",
        "anthropic": server.url,
        "google": server.url,
    }
    settings.PROVIDER_ALLOW_PRIVATE_URLS = True
    settings.PROVIDER_VERIFY_TIMEOUT = TIMEOUT
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _verify(client, key_id: int) -> dict:
    response = client.post(reverse("users:keys-verify", args=[key_id]))
    assert response.status_code == 200, response.content
    return response.json()


def _key(user, provider: str, fake: FakeProvider, *, good: bool, n: int = 0, **kwargs):
    api_key = sample_key(provider, n)
    if good:
        fake.good_keys.add(api_key)
    if provider in (Provider.AZURE_OPENAI, Provider.OPENAI_COMPATIBLE):
        kwargs.setdefault("base_url", fake.url + ("/v1" if provider != "azure_openai" else ""))
    key = services.provider_key_create(user=user, provider=provider, api_key=api_key, **kwargs)
    return key, api_key


# --- What each provider is sent ------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "path", "expected_headers"),
    [
        ("openai", "/v1/models", {"authorization": "Bearer {key}"}),
        ("openai_compatible", "/v1/models", {"authorization": "Bearer {key}"}),
        ("anthropic", "/v1/models", {"x-api-key": "{key}", "anthropic-version": "2023-06-01"}),
        ("google", "/v1beta/models", {"x-goog-api-key": "{key}"}),
        ("azure_openai", "/openai/models?api-version=2024-10-21", {"api-key": "{key}"}),
    ],
)
def test_a_good_key_is_valid_and_each_provider_gets_its_headers(
    auth_client, user, fake_provider, provider, path, expected_headers
):
    key, api_key = _key(user, provider, fake_provider, good=True)

    body = _verify(auth_client, key.pk)

    assert (body["last_verification"], body["status"]) == ("valid", "active")
    assert body["last_verified_at"] is not None
    [request] = fake_provider.requests
    assert request["path"] == path
    for name, value in expected_headers.items():
        assert request["headers"][name] == value.format(key=api_key)
    # Only the header the provider reads carries the key.
    carrying = [name for name, value in request["headers"].items() if api_key in value]
    assert carrying == list(expected_headers)[:1]
    stored = ProviderKey.objects.get(pk=key.pk)
    assert stored.last_verification_detail == "HTTP 200"


def test_a_refused_key_becomes_invalid_and_a_later_success_restores_it(
    auth_client, user, fake_provider, caplog
):
    caplog.set_level(logging.DEBUG)
    key, api_key = _key(user, "anthropic", fake_provider, good=False)

    body = _verify(auth_client, key.pk)

    assert (body["last_verification"], body["status"], body["is_default"]) == (
        "invalid",
        "invalid",
        True,  # an invalid default stays the default; the service read skips it
    )
    stored = ProviderKey.objects.get(pk=key.pk)
    assert stored.last_verification_detail == "HTTP 401"
    fake_provider.good_keys.add(api_key)  # say, the user's account was topped up
    body = _verify(auth_client, key.pk)
    assert (body["last_verification"], body["status"]) == ("valid", "active")
    assert api_key not in caplog.text
    assert "verified: invalid, HTTP 401" in caplog.text


def test_a_slow_provider_times_out_as_unreachable(auth_client, user, fake_provider, settings):
    settings.PROVIDER_BASE_URLS = {"google": fake_provider.url + "/slow"}
    key, _ = _key(user, "google", fake_provider, good=True)

    started = time.monotonic()
    body = _verify(auth_client, key.pk)

    assert time.monotonic() - started < SLOW_SECONDS
    assert (body["last_verification"], body["status"]) == ("unreachable", "active")
    assert ProviderKey.objects.get(pk=key.pk).last_verification_detail == "timed out"


@pytest.mark.parametrize(
    ("suffix", "detail"),
    [("/broken", "HTTP 500"), ("/moved", "HTTP 302")],  # a redirect is never followed
)
def test_other_statuses_are_unreachable_and_keep_the_status(
    auth_client, user, fake_provider, settings, suffix, detail, caplog
):
    caplog.set_level(logging.DEBUG)
    key, api_key = _key(user, "openai_compatible", fake_provider, good=True)
    ProviderKey.objects.filter(pk=key.pk).update(
        base_url=fake_provider.url + suffix, status=KeyStatus.INVALID
    )

    body = _verify(auth_client, key.pk)

    assert (body["last_verification"], body["status"]) == ("unreachable", "invalid")
    stored = ProviderKey.objects.get(pk=key.pk)
    assert stored.last_verification_detail == detail
    assert "the body of an error" not in stored.last_verification_detail
    assert len(fake_provider.requests) == 1  # the redirect was not followed
    assert api_key not in caplog.text


def test_nothing_listening_is_unreachable(auth_client, user, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PROVIDER_BASE_URLS = {"openai": f"http://127.0.0.1:{port}/v1"}
    key = ProviderKeyFactory(user=user)

    body = _verify(auth_client, key.pk)

    assert body["last_verification"] == "unreachable"
    assert ProviderKey.objects.get(pk=key.pk).last_verification_detail == "connection failed"


def test_verification_holds_no_transaction_during_the_call(user, fake_provider, monkeypatch):
    from django.db import connection

    key, _ = _key(user, "openai", fake_provider, good=True)
    outside = len(connection.atomic_blocks)  # pytest-django's own test transaction
    depths: list[int] = []
    call = providers._get

    def spy(*args, **kwargs):
        depths.append(len(connection.atomic_blocks))
        return call(*args, **kwargs)

    monkeypatch.setattr(providers, "_get", spy)

    verified = services.provider_key_verify(user=user, key_id=key.pk)

    assert depths == [outside]
    assert verified.last_verification == "valid"


# --- The guard against server-side request forgery ---------------------------------------


def _user_key_at(user, base_url: str, settings):
    settings.PROVIDER_ALLOW_PRIVATE_URLS = True  # stored while allowed ...
    key = services.provider_key_create(
        user=user,
        provider=Provider.OPENAI_COMPATIBLE,
        api_key=sample_key(Provider.OPENAI_COMPATIBLE),
        base_url=base_url,
    )
    settings.PROVIDER_ALLOW_PRIVATE_URLS = False  # ... checked once it is not
    return key


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "[::1]"])
def test_private_addresses_are_never_contacted(auth_client, user, fake_provider, settings, host):
    port = fake_provider.server_address[1]
    key = _user_key_at(user, f"http://{host}:{port}/v1", settings)

    body = _verify(auth_client, key.pk)

    assert body["last_verification"] == "unreachable"
    stored = ProviderKey.objects.get(pk=key.pk)
    assert stored.last_verification_detail == "blocked: not a public address"
    assert fake_provider.requests == []


def test_the_metadata_address_is_refused_before_any_connection(user, settings, monkeypatch):
    key = _user_key_at(user, "http://169.254.169.254/latest", settings)
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *a, **k: pytest.fail("connected"),
    )

    verified = services.provider_key_verify(user=user, key_id=key.pk)

    assert verified.last_verification_detail == "blocked: not a public address"


def test_a_name_with_any_private_address_is_refused(user, settings, monkeypatch):
    """DNS that answers a public and a private address (rebinding) is refused whole."""
    key = _user_key_at(user, "https://llm.example.test/v1", settings)

    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host != "llm.example.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *a, **k: pytest.fail("connected"),
    )

    verified = services.provider_key_verify(user=user, key_id=key.pk)

    assert verified.last_verification_detail == "blocked: not a public address"


def test_the_connection_goes_to_the_address_that_was_checked(
    auth_client, user, fake_provider, settings, monkeypatch
):
    """The host is resolved once; the connection uses that address, not a new lookup."""
    port = fake_provider.server_address[1]
    key, _ = _key(
        user,
        "openai_compatible",
        fake_provider,
        good=True,
        base_url=f"http://llm.example.test:{port}/v1",
    )
    lookups: list[str] = []
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        if host == "llm.example.test":
            if len([h for h in lookups if h == host]) > 1:  # a second answer: rebinding
                return real("10.9.9.9", *args, **kwargs)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    body = _verify(auth_client, key.pk)

    assert body["last_verification"] == "valid"
    assert lookups.count("llm.example.test") == 1
    assert fake_provider.requests[0]["headers"]["host"] == f"llm.example.test:{port}"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_public_addresses(address, public):
    assert providers._public(address) is public


# --- TLS: the pinned address still proves the host name ----------------------------------


@pytest.fixture
def tls_provider(tmp_path, fake_provider):
    """The fake provider behind TLS, with a certificate for ``llm.example.test``
    that the key check trusts; the names TLS clients asked for (SNI) are kept."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("llm.example.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(private_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    fake_provider.socket = context.wrap_socket(fake_provider.socket, server_side=True)
    fake_provider.server_names = server_names
    fake_provider.cafile = str(cert_file)
    return fake_provider


def _resolving(monkeypatch, host: str, address: str) -> None:
    real = socket.getaddrinfo

    def resolve(name, *args, **kwargs):
        return real(address if name == host else name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_tls_is_verified_against_the_host_name(auth_client, user, tls_provider, monkeypatch):
    port = tls_provider.server_address[1]
    _resolving(monkeypatch, "llm.example.test", "127.0.0.1")
    default_context = ssl.create_default_context
    monkeypatch.setattr(
        providers.ssl,
        "create_default_context",
        lambda *a, **k: default_context(cafile=tls_provider.cafile),
    )
    key, _ = _key(
        user,
        "openai_compatible",
        tls_provider,
        good=True,
        base_url=f"https://llm.example.test:{port}/v1",
    )

    body = _verify(auth_client, key.pk)

    assert body["last_verification"] == "valid"
    assert tls_provider.server_names == ["llm.example.test"]


def test_a_certificate_for_another_name_is_a_tls_error(user, tls_provider, monkeypatch):
    port = tls_provider.server_address[1]
    _resolving(monkeypatch, "other.example.test", "127.0.0.1")
    default_context = ssl.create_default_context
    monkeypatch.setattr(
        providers.ssl,
        "create_default_context",
        lambda *a, **k: default_context(cafile=tls_provider.cafile),
    )
    key, _ = _key(
        user,
        "openai_compatible",
        tls_provider,
        good=True,
        base_url=f"https://other.example.test:{port}/v1",
    )

    verified = services.provider_key_verify(user=user, key_id=key.pk)

    assert (verified.last_verification, verified.last_verification_detail) == (
        "unreachable",
        "TLS error",
    )
