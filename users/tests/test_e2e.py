"""The login limits against the real server, started as ``make run`` starts it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _login(address: str, email: str, forwarded_for: str) -> int:
    request = urllib.request.Request(
        f"http://{address}/api/users/login/",
        data=json.dumps({"email": email, "password": "not-it"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_forged_forwarded_for_does_not_dodge_the_per_client_login_limit(asgi_server):
    limits = {"THROTTLE_LOGIN_CLIENT": "2/min", "THROTTLE_LOGIN_ACCOUNT": "100/min"}
    with asgi_server(**limits) as address:
        statuses = [
            _login(address, f"guess{n}@example.com", forwarded_for=f"198.51.100.{n}")
            for n in range(3)
        ]

    # Every attempt came from 127.0.0.1, whatever the header claimed.
    assert statuses == [401, 401, 429]
