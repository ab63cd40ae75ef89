"""Verifying the backend's webhooks: the Standard Webhooks scheme.

Each delivery carries three headers: ``webhook-id`` (the event's id, the same
on every retry: use it to drop duplicates), ``webhook-timestamp`` (Unix
seconds of this attempt) and ``webhook-signature``, a space-separated list of
``v1,<base64 HMAC-SHA256>`` signatures of ``"{id}.{timestamp}.{body}"`` under
the endpoint's secret (several while a secret is being rotated). The secret
is shown as ``whsec_`` + base64 of the key bytes. See
https://www.standardwebhooks.com/ (spec/standard-webhooks.md).

In a receiver, verify the raw body exactly as received (before any JSON
parsing: a re-serialised body no longer matches)::

    from chatbot_client.webhooks import verify_webhook

    event = verify_webhook(WEBHOOK_SECRET, request.headers, request.body)  # raises if forged
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["WebhookVerificationError", "sign_webhook", "verify_webhook"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
#: How far a delivery's timestamp may be from now, either way (replays, clock skew).
DEFAULT_TOLERANCE = timedelta(minutes=5)


class WebhookVerificationError(Exception):
    """The delivery is not authentic, or too old or too new: answer it with a 4xx
    (400 or 401) and do not act on it."""


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError("The webhook secret is not whsec_ + base64.") from exc
    if not key:
        raise ValueError("The webhook secret is empty.")
    return key


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_webhook(
    secret: str | bytes, msg_id: str, timestamp: int | datetime, body: bytes | str
) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of a delivery: what the
    sender puts in the header (and what tests use to make vectors)."""
    if isinstance(timestamp, datetime):
        timestamp = int(timestamp.timestamp())
    digest = _signature(_key(secret), msg_id, str(int(timestamp)), _as_bytes(body))
    return "v1," + base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    if not value:
        raise WebhookVerificationError(f"Missing the {name} header.")
    return value


def verify_webhook(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery and return its decoded JSON body.

    ``secret`` is the endpoint's ``whsec_...`` secret (or the raw key bytes);
    ``headers`` any mapping of the request's headers (names in any case:
    Django's ``request.headers``, Starlette's, a dict); ``body`` the raw body.
    Raises :class:`WebhookVerificationError` when a header is missing, the
    timestamp is more than ``tolerance`` away from ``now`` (default: the
    current time), no ``v1`` signature matches (compared in constant time), or
    the body is not a JSON object.
    """
    key = _key(secret)
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("The webhook-timestamp header is not a number.") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance.total_seconds():
        raise WebhookVerificationError("The webhook-timestamp is too old or too new.")
    raw = _as_bytes(body)
    expected = _signature(key, msg_id, timestamp, raw)
    matched = False
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue  # v1a (asymmetric) or a future scheme: not ours to check
        try:
            given = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        # Every candidate is compared, each in constant time.
        matched = hmac.compare_digest(given, expected) or matched
    if not matched:
        raise WebhookVerificationError("No signature matches.")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("The body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("The body is not a JSON object.")
    return payload
