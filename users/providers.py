"""What the users app knows of each LLM provider: the shape of its keys, its
endpoint, and its cheapest authenticated call (to verify a key).

``KEY_FORMATS`` is the one table of key shapes. ``verify_key`` talks HTTP with
the standard library (``http.client``): one GET, no redirects followed, a short
timeout, and for an endpoint the user named (Azure, OpenAI-compatible) a guard
against server-side request forgery: the host is resolved once, every address
must be public (unless ``PROVIDER_ALLOW_PRIVATE_URLS``), and the connection
goes to the address that was checked, with TLS still verified against the host
name. Nothing here logs or returns the key or a response body.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from users.models import PROVIDERS_WITH_BASE_URL, Provider, Verification


@dataclass(frozen=True)
class KeyFormat:
    pattern: re.Pattern[str]
    # What the hint shows before "...": the part of the key this matches.
    hint_prefix: re.Pattern[str] | None
    looks_like: str  # for the error message, never the value


# sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...: the shapes OpenAI issues.
OPENAI_KEY_PATTERN = re.compile(r"^sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,200}$")

KEY_FORMATS: dict[str, KeyFormat] = {
    Provider.OPENAI: KeyFormat(
        OPENAI_KEY_PATTERN,
        re.compile(r"^sk-(?:(?:proj|svcacct|admin)-)?"),
        "an OpenAI API key (sk-...)",
    ),
    Provider.ANTHROPIC: KeyFormat(
        re.compile(r"^sk-ant-[A-Za-z0-9_-]{20,200}$"),
        re.compile(r"^sk-ant-"),
        "an Anthropic API key (sk-ant-...)",
    ),
    Provider.GOOGLE: KeyFormat(
        re.compile(r"^AIza[A-Za-z0-9_-]{35}$"), re.compile(r"^AIza"), "a Google API key (AIza...)"
    ),
    Provider.AZURE_OPENAI: KeyFormat(
        re.compile(r"^[A-Za-z0-9]{32,100}$"),
        None,
        "an Azure OpenAI key (32 to 100 letters and digits)",
    ),
    Provider.OPENAI_COMPATIBLE: KeyFormat(
        re.compile(r"^[!-~]{12,512}$"),
        None,
        "an API key (12 to 512 printable characters, no spaces)",
    ),
}

# The cheapest authenticated call of each provider, relative to its base URL,
# and how the key is sent.
_AZURE_API_VERSION = "2024-10-21"
_CHECKS: dict[str, tuple[str, str]] = {
    Provider.OPENAI: ("/models", "bearer"),
    Provider.OPENAI_COMPATIBLE: ("/models", "bearer"),
    Provider.ANTHROPIC: ("/v1/models", "x-api-key"),
    Provider.GOOGLE: ("/v1beta/models", "x-goog-api-key"),
    Provider.AZURE_OPENAI: (f"/openai/models?api-version={_AZURE_API_VERSION}", "api-key"),
}


def key_format_problem(provider: str, api_key: str) -> str | None:
    """Why ``api_key`` cannot be a key of ``provider``; None if it can."""
    if KEY_FORMATS[provider].pattern.match(api_key):
        return None
    return f"This does not look like {KEY_FORMATS[provider].looks_like}."


def key_hint(provider: str, api_key: str) -> str:
    """What the owner sees of a key: its provider's prefix, "...", the last four."""
    prefix_pattern = KEY_FORMATS[provider].hint_prefix
    prefix = prefix_pattern.match(api_key) if prefix_pattern else None
    return f"{prefix.group(0) if prefix else ''}...{api_key[-4:]}"


def configured_base_url(provider: str) -> str:
    """The operator's endpoint for a provider whose keys name none (``PROVIDER_BASE_URLS``)."""
    return settings.PROVIDER_BASE_URLS.get(provider, "")


def base_url_problem(provider: str, base_url: str) -> str | None:
    """Why ``base_url`` cannot go with a key of ``provider``; None if it can.

    Azure and OpenAI-compatible keys need one: https (http too when
    ``PROVIDER_ALLOW_PRIVATE_URLS``), no credentials, query or fragment, and
    no private address literal unless allowed. The other providers' endpoint
    is the operator's (``PROVIDER_BASE_URLS``), never the user's.
    """
    if provider not in PROVIDERS_WITH_BASE_URL:
        return None if not base_url else "This provider's endpoint is configured by the operator."
    if not base_url:
        return "This provider needs the base URL of its endpoint."
    allow_private = settings.PROVIDER_ALLOW_PRIVATE_URLS
    try:
        URLValidator(schemes=["https", "http"] if allow_private else ["https"])(base_url)
    except ValidationError:
        return "Enter a valid https:// URL." if not allow_private else "Enter a valid URL."
    url = urlsplit(base_url)
    if url.username is not None or url.password is not None:
        return "A base URL carries no credentials."
    if url.query or url.fragment:
        return "A base URL has no query or fragment."
    if not allow_private and _is_address(url.hostname or "") and not _public(url.hostname or ""):
        return "The base URL names a private or reserved address."
    return None


# --- Verification ---------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    verification: str  # a Verification value
    detail: str  # short; never the key or the response body


class _BlockedAddressError(Exception):
    pass


def verify_key(*, provider: str, api_key: str, base_url: str) -> VerifyResult:
    """Call the provider's cheapest authenticated endpoint with ``api_key``.

    ``base_url`` is the key's own (a user's: guarded against private
    addresses) or empty for the operator's endpoint. 2xx is valid, 401/403
    invalid, anything else (another status, a timeout, a refused connection,
    a blocked address) unreachable. Takes at most about
    ``PROVIDER_VERIFY_TIMEOUT`` per network step; call it outside a transaction.
    """
    user_supplied = bool(base_url)
    url = urlsplit(base_url or configured_base_url(provider))
    path, auth = _CHECKS[provider]
    headers = {"Accept": "application/json", "User-Agent": "chatbot-key-check/1"}
    headers |= _auth_headers(auth, api_key)
    if provider == Provider.ANTHROPIC:
        headers["anthropic-version"] = "2023-06-01"
    guard = user_supplied and not settings.PROVIDER_ALLOW_PRIVATE_URLS
    try:
        status = _get(url, url.path.rstrip("/") + path, headers, guard=guard)
    except _BlockedAddressError:
        return VerifyResult(Verification.UNREACHABLE, "blocked: not a public address")
    except TimeoutError:
        return VerifyResult(Verification.UNREACHABLE, "timed out")
    except socket.gaierror:
        return VerifyResult(Verification.UNREACHABLE, "host name not resolved")
    except ssl.SSLError:
        return VerifyResult(Verification.UNREACHABLE, "TLS error")
    except (OSError, http.client.HTTPException):
        return VerifyResult(Verification.UNREACHABLE, "connection failed")
    if 200 <= status < 300:
        return VerifyResult(Verification.VALID, f"HTTP {status}")
    if status in (401, 403):
        return VerifyResult(Verification.INVALID, f"HTTP {status}")
    return VerifyResult(Verification.UNREACHABLE, f"HTTP {status}")


def _auth_headers(kind: str, api_key: str) -> dict[str, str]:
    if kind == "bearer":
        return {"Authorization": f"Bearer {api_key}"}
    return {kind: api_key}


def _get(url: SplitResult, path: str, headers: dict[str, str], *, guard: bool) -> int:
    """The status of ``GET path`` on ``url``'s host; the body is never read."""
    host = url.hostname or ""
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    timeout = settings.PROVIDER_VERIFY_TIMEOUT
    address = _resolve(host, port, guard=guard)
    connection: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(host, port, address=address, timeout=timeout)
        if https
        else _PinnedHTTPConnection(host, port, address=address, timeout=timeout)
    )
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _resolve(host: str, port: int, *, guard: bool) -> str:
    """One address of ``host``; with ``guard``, every address it has must be public."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise socket.gaierror("no address")
    if guard and not all(_public(address) for address in addresses):
        raise _BlockedAddressError()
    return addresses[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a second lookup of the host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection``; TLS (SNI and the certificate) checks the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
