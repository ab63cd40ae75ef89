"""No credential reaches a log: the real server, started as ``make run`` starts it."""

from __future__ import annotations

import asyncio
import json
import tempfile
import urllib.request

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = pytest.mark.django_db(transaction=True)


def _ticket(address: str, token: str) -> str:
    request = urllib.request.Request(
        f"http://{address}/api/users/ws-ticket/",
        headers={"Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["ticket"]


async def _sockets(address: str, token: str, ticket: str, service_secret: str) -> list[int | None]:
    codes = []
    attempts = [
        (f"ws://{address}/ws/events/?ticket={ticket}", {}),
        (f"ws://{address}/ws/events/?token={token}", {}),  # refused: not a credential
        (
            f"ws://{address}/ws/events/",
            {"additional_headers": {"Authorization": f"Bearer {service_secret}"}},
        ),
    ]
    for url, options in attempts:
        async with websockets.connect(url, **options) as socket_:
            try:
                await socket_.send(json.dumps({"type": "ping"}))
                await asyncio.wait_for(socket_.recv(), 5)
            except websockets.ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd else None)
            else:
                codes.append(None)
    return codes


def test_credentials_in_socket_urls_and_headers_never_reach_the_server_log(asgi_server):
    token = str(AccessToken.for_user(UserFactory()))
    _, service_secret = service_token_create(scopes=[Scope.CHAT_READ])
    with tempfile.TemporaryFile(mode="w+") as log:
        with asgi_server(log=log) as address:
            ticket = _ticket(address, token)
            codes = asyncio.run(_sockets(address, token, ticket, service_secret))
        log.seek(0)
        output = log.read()

    assert codes == [None, 4401, 4403]  # the ticket opened a socket; the others were refused
    assert "WS /ws/events/ open" in output  # the app's own line, by path
    for secret in (token, ticket, service_secret, "?ticket=", "?token="):
        assert secret not in output
