"""WebSocket authentication and the user's own event stream (ws/events/)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from realtime.consumers import CloseCode, RealtimeConsumer, UserEventsConsumer
from realtime.publish import publish, user_group
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _user_and_token(lifetime: timedelta | None = None):
    user = await database_sync_to_async(UserFactory)()
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return user, str(token)


def _events_socket(token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/events/", subprotocols=["bearer", token])


async def _refused_with(communicator) -> int:
    connected, _ = await communicator.connect()
    assert connected  # accepted, so that the close code reaches the client
    message = await communicator.receive_output(timeout=2)
    assert message["type"] == "websocket.close"
    await communicator.disconnect(message["code"])  # the client's half of the closing handshake
    return message["code"]


async def test_events_stream_delivers_the_users_own_events():
    user, token = await _user_and_token()
    other, _ = await _user_and_token()
    communicator = _events_socket(token)
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "bearer"

    event = {"type": "document.status", "document": {"id": 7, "status": "processed"}}
    assert await database_sync_to_async(publish)(user_group(user.pk), event)
    await database_sync_to_async(publish)(user_group(other.pk), {"type": "document.status", "x": 1})

    assert await communicator.receive_json_from(timeout=2) == event
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_token_in_the_subprotocol_header_is_accepted_with_bearer():
    _, token = await _user_and_token()
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["bearer", token])
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "bearer"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize("kind", ["missing", "garbage", "expired", "revoked-service"])
async def test_bad_credentials_are_refused_with_4401(kind):
    if kind == "missing":
        communicator = WebsocketCommunicator(application, "/ws/events/")
    elif kind == "garbage":
        communicator = _events_socket("abc.def.ghi")
    elif kind == "expired":
        _, token = await _user_and_token(lifetime=-timedelta(seconds=5))
        communicator = _events_socket(token)
    else:
        from users import services

        token, secret = await database_sync_to_async(service_token_create)(scopes=[Scope.CHAT_READ])
        await database_sync_to_async(services.service_token_revoke)(token=token)
        communicator = _events_socket(secret)
    assert await _refused_with(communicator) == CloseCode.UNAUTHENTICATED


async def test_a_token_in_the_url_is_not_a_credential():
    _, token = await _user_and_token()
    communicator = WebsocketCommunicator(application, f"/ws/events/?token={token}")
    assert await _refused_with(communicator) == CloseCode.UNAUTHENTICATED


async def test_services_authenticate_with_an_authorization_header():
    _, secret = await database_sync_to_async(service_token_create)(scopes=[Scope.CHAT_READ])
    communicator = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"authorization", f"Bearer {secret}".encode())]
    )
    # Recognised (no 4401); ws/events/ itself is for user accounts, hence 4403.
    assert await _refused_with(communicator) == CloseCode.FORBIDDEN


async def _ticket(client) -> str:
    response = await database_sync_to_async(client.post)("/api/users/ws-ticket/")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


async def test_a_ticket_opens_one_socket_once():
    _, token = await _user_and_token()
    ticket = await _ticket(_bearer_client(token))

    first = WebsocketCommunicator(application, f"/ws/events/?ticket={ticket}")
    connected, _ = await first.connect()
    assert connected
    await first.send_json_to({"type": "ping"})
    assert await first.receive_json_from() == {"type": "pong"}

    again = WebsocketCommunicator(application, f"/ws/events/?ticket={ticket}")
    assert await _refused_with(again) == CloseCode.UNAUTHENTICATED
    await first.disconnect()


async def test_a_ticket_does_not_outlive_its_seconds_or_a_password_change(settings):
    user, token = await _user_and_token()
    client = _bearer_client(token)
    settings.WS_TICKET_SECONDS = 1
    stale = await _ticket(client)
    settings.WS_TICKET_SECONDS = 30
    before_change = await _ticket(client)
    await database_sync_to_async(_change_password)(user)
    await asyncio.sleep(1.2)

    for ticket in (stale, before_change, "wst_made-up"):
        communicator = WebsocketCommunicator(application, f"/ws/events/?ticket={ticket}")
        assert await _refused_with(communicator) == CloseCode.UNAUTHENTICATED


def _change_password(user) -> None:
    user.set_password("a-brand-new-password-42")
    user.save(update_fields=["password"])


def _bearer_client(token: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


async def test_service_tokens_have_no_user_event_stream():
    _, secret = await database_sync_to_async(service_token_create)(scopes=list(Scope.values))
    communicator = _events_socket(secret)
    assert await _refused_with(communicator) == CloseCode.FORBIDDEN


async def test_socket_closes_when_the_access_token_expires():
    _, token = await _user_and_token(lifetime=timedelta(seconds=1))
    communicator = _events_socket(token)
    connected, _ = await communicator.connect()
    assert connected
    assert await _closed_with(communicator, timeout=5) == CloseCode.TOKEN_EXPIRED


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", "parse_error"), ("[1, 2]", "invalid"), ('{"type": "dance"}', "unsupported")],
)
async def test_bad_frames_get_an_error_event_not_a_disconnect(frame, code):
    _, token = await _user_and_token()
    communicator = _events_socket(token)
    await communicator.connect()
    await communicator.send_to(text_data=frame)
    reply = await communicator.receive_json_from()
    assert reply["type"] == "error"
    assert reply["code"] == code
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_events_stream_carries_document_status_and_session_list_changes():
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    user, token = await _user_and_token()
    communicator = _events_socket(token)
    await communicator.connect()
    client = APIClient()
    client.force_authenticate(user)

    upload = SimpleUploadedFile("notes.md", "# 회의록\n".encode(), content_type="text/markdown")
    response = await database_sync_to_async(client.post)(
        "/api/documents/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201
    event = await communicator.receive_json_from(timeout=2)
    assert event["type"] == "document.status"
    assert event["document"]["id"] == response.json()["id"]
    assert event["document"]["status"] == "pending"

    created = await database_sync_to_async(client.post)(
        "/api/chat-history/sessions/", {"title": "t"}
    )
    event = await communicator.receive_json_from(timeout=2)
    item = {key: value for key, value in created.json().items() if key != "instructions"}
    assert event == {"type": "session.created", "session": item}
    await communicator.disconnect()


async def test_a_frame_nested_too_deep_is_refused_and_the_socket_stays_open():
    _, token = await _user_and_token()
    communicator = _events_socket(token)
    await communicator.connect()

    await communicator.send_to(
        text_data='{"type": "ping", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    )
    reply = await communicator.receive_json_from()

    assert (reply["type"], reply["code"]) == ("error", "parse_error")
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


# --- A credential that stops being valid closes its sockets ---------------------------


async def _closed_with(communicator, timeout: float = 3) -> int:
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            await communicator.disconnect(message["code"])
            return message["code"]


async def test_a_password_change_closes_the_accounts_sockets_at_once():
    _, token = await _user_and_token()
    communicator = _events_socket(token)
    assert (await communicator.connect())[0]

    response = await database_sync_to_async(_bearer_client(token).post)(
        "/api/users/password/change/",
        {"old_password": "correct-horse-battery-staple", "new_password": "violet-anchor-58"},
        format="json",
    )
    assert response.status_code == 200

    assert await _closed_with(communicator) == CloseCode.UNAUTHENTICATED


async def test_a_deactivation_in_the_admin_closes_the_accounts_sockets(settings):
    user, token = await _user_and_token()
    communicator = _events_socket(token)
    assert (await communicator.connect())[0]

    await database_sync_to_async(_deactivate_in_the_admin)(user)

    assert await _closed_with(communicator) == CloseCode.UNAUTHENTICATED


def _deactivate_in_the_admin(user) -> None:
    from django.test import Client

    operator = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    change = client.get(f"/admin/users/user/{user.pk}/change/")
    form = {
        key: value
        for key, value in change.context["adminform"].form.initial.items()
        if key in {"username", "email", "first_name", "last_name", "date_joined"}
    }
    form.update(
        {
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "profile-TOTAL_FORMS": "1",
            "profile-INITIAL_FORMS": "1",
            "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1",
            "profile-0-id": str(user.profile.pk),
            "profile-0-user": str(user.pk),
            "profile-0-preferred_language": "ko",
        }
    )
    response = client.post(f"/admin/users/user/{user.pk}/change/", form)  # is_active unticked
    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.is_active is False


async def test_a_lost_revocation_is_caught_by_the_recheck(settings):
    settings.WS_RECHECK_SECONDS = 1
    user, token = await _user_and_token()
    communicator = _events_socket(token)
    assert (await communicator.connect())[0]

    # Changed behind the services' back: no event is published.
    await database_sync_to_async(_change_password)(user)

    assert await _closed_with(communicator, timeout=5) == CloseCode.UNAUTHENTICATED


async def test_sockets_are_logged_by_path_without_their_query(caplog):
    caplog.set_level(logging.INFO, logger="realtime.access")
    _, token = await _user_and_token()
    ticket = await _ticket(_bearer_client(token))

    communicator = WebsocketCommunicator(application, f"/ws/events/?ticket={ticket}")
    assert (await communicator.connect())[0]
    await communicator.disconnect()
    refused = WebsocketCommunicator(application, f"/ws/events/?token={token}")
    assert await _refused_with(refused) == CloseCode.UNAUTHENTICATED

    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("WS /ws/events/ open") for line in lines), lines
    assert any(line.startswith("WS /ws/events/ closed 1000") for line in lines), lines
    assert any(line.startswith("WS /ws/events/ refused 4401") for line in lines), lines
    assert not [line for line in lines if ticket in line or token in line]


async def test_a_credential_that_cannot_be_checked_is_a_1011_not_a_failed_handshake():
    from channels.routing import URLRouter
    from django.db import OperationalError

    from config.routing import websocket_urlpatterns
    from realtime.auth import TokenAuthMiddleware

    def database_down(credential):
        raise OperationalError("connection refused")

    app = TokenAuthMiddleware(URLRouter(websocket_urlpatterns), identify=database_down)
    communicator = WebsocketCommunicator(app, "/ws/events/", subprotocols=["bearer", "a.b.c"])

    assert await _refused_with(communicator) == CloseCode.UNAVAILABLE


async def test_a_cleanup_that_hangs_does_not_hold_a_cancelled_socket(monkeypatch, caplog):
    # A server shutting down cancels its consumers and waits for them; one whose
    # cleanup is stuck (a hung channel layer or database) must still end.
    async def hangs(self, code):
        await asyncio.Event().wait()

    monkeypatch.setattr(RealtimeConsumer, "cleanup_seconds", 0.2)
    monkeypatch.setattr(UserEventsConsumer, "disconnect", hangs)
    _, token = await _user_and_token()
    communicator = _events_socket(token)
    assert (await communicator.connect())[0]

    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(communicator.future), timeout=2)
    assert "socket cleanup did not finish in 0.2s" in caplog.text
