"""ws/chat/<session_id>/: authentication, every event type, sending over the socket."""

from __future__ import annotations

import logging
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from chat_history import services
from chat_history.models import ChatMessage, ChatSession
from chat_history.tests.factories import ChatSessionFactory
from config.asgi import application
from realtime.consumers import CloseCode
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

DEAD_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1", "socket_connect_timeout": 1}]},
    }
}


@pytest.fixture
def owner(transactional_db):
    return UserFactory()


@pytest.fixture
def session(owner):
    return ChatSessionFactory(user=owner)


def _jwt(user) -> str:
    return str(AccessToken.for_user(user))


async def _service_secret(*scopes: str) -> str:
    _, secret = await database_sync_to_async(service_token_create)(scopes=list(scopes))
    return secret


async def _connect(session_id, token: str | None, *, expect_presence: bool = True):
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    communicator = WebsocketCommunicator(application, f"/ws/chat/{session_id}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    if expect_presence:  # the list of connections, then its own arrival
        assert (await _next(communicator, "presence"))["action"] == "snapshot"
        assert (await _next(communicator, "presence"))["action"] == "joined"
    return communicator


async def _next(communicator, event_type: str, timeout: float = 3) -> dict:
    """The next event of ``event_type``, skipping others (presence, session.updated...)."""
    while True:
        event = await communicator.receive_json_from(timeout=timeout)
        if event["type"] == event_type:
            return event


async def _close_code(communicator) -> int:
    """The code of the close that must come next; the client then completes
    the closing handshake, which ends the consumer."""
    message = await communicator.receive_output(timeout=3)
    assert message["type"] == "websocket.close"
    await communicator.disconnect(message["code"])
    return message["code"]


def _rest(user=None, *, service_secret: str | None = None) -> APIClient:
    client = APIClient()
    if service_secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {service_secret}")
    else:
        client.force_authenticate(user)
    return client


async def _post(client, url, body, **extra):
    return await database_sync_to_async(client.post)(url, body, format="json", **extra)


# --- Who may connect --------------------------------------------------------------


async def test_owner_connects_and_sees_themselves_in_presence(owner, session):
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/{session.session_id}/", subprotocols=["bearer", _jwt(owner)]
    )
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "bearer"
    snapshot = await _next(communicator, "presence")
    assert snapshot["action"] == "snapshot"
    assert snapshot["session_id"] == str(session.session_id)
    assert [(c["kind"], c["user_id"]) for c in snapshot["connections"]] == [("user", owner.pk)]
    joined = await _next(communicator, "presence")
    assert joined["action"] == "joined"
    assert joined["connection"] == snapshot["connections"][0]
    assert joined["count"] == 1
    await communicator.disconnect()


async def test_presence_tells_who_comes_and_goes(owner, session):
    phone = await _connect(session.session_id, _jwt(owner))
    laptop = await _connect(session.session_id, _jwt(owner))
    service = await _connect(session.session_id, await _service_secret(Scope.CHAT_READ))

    arrivals = [await _next(phone, "presence") for _ in range(2)]
    assert [(e["action"], e["connection"]["kind"], e["count"]) for e in arrivals] == [
        ("joined", "user", 2),
        ("joined", "service", 3),
    ]
    late = WebsocketCommunicator(
        application, f"/ws/chat/{session.session_id}/", subprotocols=["bearer", _jwt(owner)]
    )
    await late.connect()
    snapshot = await _next(late, "presence")
    assert snapshot["action"] == "snapshot"
    assert sorted(c["kind"] for c in snapshot["connections"]) == ["service", "user", "user", "user"]
    assert len({c["connection_id"] for c in snapshot["connections"]}) == 4
    await _next(phone, "presence")  # the late arrival

    await service.disconnect()
    left = await _next(phone, "presence")
    assert (left["action"], left["connection"]["kind"], left["count"]) == ("left", "service", 3)
    for communicator in (phone, laptop, late):
        await communicator.disconnect()


@pytest.mark.parametrize("who", ["stranger", "unknown-session", "malformed-id"])
async def test_other_users_and_unknown_sessions_look_the_same(owner, session, who):
    stranger = await database_sync_to_async(UserFactory)()
    session_id = {
        "stranger": session.session_id,
        "unknown-session": uuid.uuid4(),
        "malformed-id": "not-a-uuid",
    }[who]
    token = _jwt(stranger if who == "stranger" else owner)
    communicator = await _connect(session_id, token, expect_presence=False)
    assert await _close_code(communicator) == CloseCode.NOT_FOUND


async def test_a_session_in_the_trash_cannot_be_watched(owner, session):
    await database_sync_to_async(services.chat_session_delete)(actor=owner, session=session)

    communicator = await _connect(session.session_id, _jwt(owner), expect_presence=False)

    assert await _close_code(communicator) == CloseCode.NOT_FOUND


@pytest.mark.parametrize("token", [None, "garbage.token.value", "svc_not-a-real-token"])
async def test_missing_or_invalid_tokens_are_refused(session, token):
    communicator = await _connect(session.session_id, token, expect_presence=False)
    assert await _close_code(communicator) == CloseCode.UNAUTHENTICATED


async def test_service_without_chat_read_is_refused(session):
    secret = await _service_secret(Scope.CHAT_WRITE, Scope.DOCUMENTS_PROCESS)
    communicator = await _connect(session.session_id, secret, expect_presence=False)
    assert await _close_code(communicator) == CloseCode.FORBIDDEN


async def test_unknown_websocket_paths_are_refused():
    communicator = WebsocketCommunicator(application, "/ws/nothing-here/")
    connected, _ = await communicator.connect()
    assert connected
    assert await _close_code(communicator) == CloseCode.NOT_FOUND


# --- Events -------------------------------------------------------------------------


async def test_a_rest_message_reaches_every_socket_of_the_session(owner, session):
    first = await _connect(session.session_id, _jwt(owner))
    second = await _connect(session.session_id, await _service_secret(Scope.CHAT_READ))
    other_session = await database_sync_to_async(ChatSessionFactory)(user=owner)
    elsewhere = await _connect(other_session.session_id, _jwt(owner))

    url = reverse("chat_history:session-messages", args=[session.session_id])
    response = await _post(_rest(owner), url, {"role": "user", "content": "안녕하세요"})
    assert response.status_code == 201

    for communicator in (first, second):
        event = await _next(communicator, "message.created")
        assert event["session_id"] == str(session.session_id)
        assert event["message"] == response.json()
    assert await elsewhere.receive_nothing(timeout=0.3)
    for communicator in (first, second, elsewhere):
        await communicator.disconnect()


async def test_message_update_and_delete_events(owner, session):
    communicator = await _connect(session.session_id, _jwt(owner))
    client = _rest(owner)
    url = reverse("chat_history:session-messages", args=[session.session_id])
    created = (await _post(client, url, {"role": "user", "content": "draft"})).json()
    await _next(communicator, "message.created")

    detail = reverse("chat_history:message-detail", args=[created["id"]])
    patched = await database_sync_to_async(client.patch)(
        detail, {"metadata": {"feedback": "up"}}, format="json"
    )
    assert patched.status_code == 200
    updated = await _next(communicator, "message.updated")
    assert updated["message"]["metadata"] == {"feedback": "up"}

    assert (await database_sync_to_async(client.delete)(detail)).status_code == 204
    deleted = await _next(communicator, "message.deleted")
    assert deleted == {
        "type": "message.deleted",
        "session_id": str(session.session_id),
        "message_id": created["id"],
    }
    await communicator.disconnect()


async def test_session_updated_and_deleted_events(owner, session):
    communicator = await _connect(session.session_id, _jwt(owner))
    client = _rest(owner)
    detail = reverse("chat_history:session-detail", args=[session.session_id])

    await database_sync_to_async(client.patch)(
        detail, {"title": "Renamed", "pinned": True}, format="json"
    )
    event = await _next(communicator, "session.updated")
    assert event["session"]["title"] == "Renamed"
    assert event["session"]["pinned"] is True

    assert (await database_sync_to_async(client.delete)(detail)).status_code == 204
    event = await _next(communicator, "session.deleted")
    assert event["session_id"] == str(session.session_id)
    assert await _close_code(communicator) == CloseCode.NOT_FOUND


# --- Sending over the socket ---------------------------------------------------------


async def test_a_message_sent_over_the_socket_is_saved_and_broadcast_once(owner, session):
    sender = await _connect(session.session_id, _jwt(owner))
    watcher = await _connect(session.session_id, _jwt(owner))
    frame = {"type": "message", "content": "소켓으로 보냄", "client_message_id": "c-1"}

    await sender.send_json_to(frame)
    ack = await _next(sender, "message.ack")
    assert ack["created"] is True
    assert ack["client_message_id"] == "c-1"
    created = await _next(watcher, "message.created")
    assert created["message"]["id"] == ack["message_id"]
    assert created["message"]["role"] == "user"

    await sender.send_json_to(frame)  # a retry after a flaky network
    retry = await _next(sender, "message.ack")
    assert retry == {**ack, "created": False}
    assert await watcher.receive_nothing(timeout=0.3)  # nothing new broadcast
    assert await database_sync_to_async(ChatMessage.objects.filter(session=session).count)() == 1
    await sender.disconnect()
    await watcher.disconnect()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "message", "content": ""}, "content"),
        ({"type": "message", "content": "x", "role": "wizard"}, "role"),
        ({"type": "message", "content": "x", "metadata": [1]}, "metadata"),
    ],
)
async def test_invalid_socket_messages_get_an_error_and_write_nothing(owner, session, frame, field):
    communicator = await _connect(session.session_id, _jwt(owner))
    await communicator.send_json_to(frame)
    error = await _next(communicator, "error")
    assert error["code"] == "invalid"
    assert field in error["errors"]
    assert not await database_sync_to_async(ChatMessage.objects.exists)()
    await communicator.disconnect()


async def test_read_only_service_cannot_write_over_the_socket(session):
    communicator = await _connect(session.session_id, await _service_secret(Scope.CHAT_READ))
    await communicator.send_json_to({"type": "message", "role": "assistant", "content": "hi"})
    error = await _next(communicator, "error")
    assert error["code"] == "missing_scope"
    assert not await database_sync_to_async(ChatMessage.objects.exists)()
    await communicator.disconnect()


# --- Streaming ------------------------------------------------------------------------


async def test_stream_deltas_over_rest_are_relayed_not_stored_then_replaced(owner, session):
    watcher = await _connect(session.session_id, _jwt(owner))
    service = _rest(service_secret=await _service_secret(Scope.CHAT_READ, Scope.CHAT_WRITE))
    stream_url = reverse("chat_history:session-stream", args=[session.session_id])

    typing = await _post(service, stream_url, {"stream_id": "s-1", "typing": True})
    assert typing.status_code == 202
    assert (await _next(watcher, "assistant.typing"))["typing"] is True
    for seq, piece in enumerate(["RAG는 ", "검색 증강 ", "생성입니다."]):
        response = await _post(
            service, stream_url, {"stream_id": "s-1", "delta": piece, "seq": seq}
        )
        assert response.status_code == 202
        delta = await _next(watcher, "assistant.delta")
        assert (delta["stream_id"], delta["delta"], delta["seq"]) == ("s-1", piece, seq)
    assert not await database_sync_to_async(ChatMessage.objects.exists)()

    messages_url = reverse("chat_history:session-messages", args=[session.session_id])
    final = await _post(
        service,
        messages_url,
        {"role": "assistant", "content": "RAG는 검색 증강 생성입니다.", "stream_id": "s-1"},
    )
    assert final.status_code == 201
    created = await _next(watcher, "message.created")
    assert created["message"]["metadata"]["stream_id"] == "s-1"
    await watcher.disconnect()


async def test_stream_endpoint_needs_chat_write_and_a_service(owner, session):
    stream_url = reverse("chat_history:session-stream", args=[session.session_id])
    read_only = _rest(service_secret=await _service_secret(Scope.CHAT_READ))
    assert (await _post(read_only, stream_url, {"stream_id": "s", "delta": "x"})).status_code == 403
    assert (
        await _post(_rest(owner), stream_url, {"stream_id": "s", "delta": "x"})
    ).status_code == 403


async def test_service_streams_over_the_socket_and_users_cannot(owner, session):
    user_socket = await _connect(session.session_id, _jwt(owner))
    secret = await _service_secret(Scope.CHAT_READ, Scope.CHAT_WRITE)
    service_socket = await _connect(session.session_id, secret)

    await service_socket.send_json_to({"type": "assistant.typing", "stream_id": "s-9"})
    assert (await _next(user_socket, "assistant.typing"))["typing"] is True
    await service_socket.send_json_to(
        {"type": "assistant.delta", "stream_id": "s-9", "delta": "Hi"}
    )
    assert (await _next(user_socket, "assistant.delta"))["delta"] == "Hi"

    await user_socket.send_json_to({"type": "assistant.delta", "stream_id": "s-9", "delta": "x"})
    assert (await _next(user_socket, "error"))["code"] == "service_only"
    await user_socket.disconnect()
    await service_socket.disconnect()


# --- The channel layer is down ---------------------------------------------------------


async def test_rest_writes_succeed_and_log_when_the_layer_is_down(owner, session, caplog):
    caplog.set_level(logging.WARNING, logger="realtime.publish")
    url = reverse("chat_history:session-messages", args=[session.session_id])
    with override_settings(CHANNEL_LAYERS=DEAD_REDIS):
        response = await _post(_rest(owner), url, {"role": "user", "content": "still saved"})
        health = await database_sync_to_async(APIClient().get)(reverse("health"))
        stream = await _post(
            _rest(service_secret=await _service_secret(Scope.CHAT_WRITE)),
            reverse("chat_history:session-stream", args=[session.session_id]),
            {"stream_id": "s", "delta": "x"},
        )

    assert response.status_code == 201
    assert await database_sync_to_async(ChatMessage.objects.filter(content="still saved").exists)()
    session_row = await database_sync_to_async(ChatSession.objects.get)(pk=session.pk)
    assert session_row.message_count == 1
    assert "could not publish message.created" in caplog.text
    assert health.status_code == 503
    assert health.json()["checks"]["channel_layer"]["status"] == "unavailable"
    assert stream.status_code == 503
    assert stream.json()["code"] == "realtime_unavailable"


async def test_sockets_are_refused_when_the_layer_is_down(owner, session):
    with override_settings(CHANNEL_LAYERS=DEAD_REDIS):
        communicator = await _connect(session.session_id, _jwt(owner), expect_presence=False)
        assert await _close_code(communicator) == CloseCode.UNAVAILABLE


async def test_revoking_a_service_token_closes_its_open_sockets(session):
    from users import services as user_services
    from users.models import ServiceToken

    secret = await _service_secret(Scope.CHAT_READ)
    service = await _connect(session.session_id, secret)

    token = await database_sync_to_async(ServiceToken.objects.get)()
    await database_sync_to_async(user_services.service_token_revoke)(token=token)

    assert (await _next(service, "credentials.revoked"))["type"] == "credentials.revoked"
    assert await _close_code(service) == CloseCode.UNAUTHENTICATED


async def test_socket_messages_share_the_users_write_budget(owner, session, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"messages": "1/min"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    url = reverse("chat_history:session-messages", args=[session.session_id])
    assert (await _post(_rest(owner), url, {"role": "user", "content": "hi"})).status_code == 201
    communicator = await _connect(session.session_id, _jwt(owner))

    await communicator.send_json_to({"type": "message", "content": "and again"})
    error = await _next(communicator, "error")

    assert error["code"] == "throttled"
    assert await database_sync_to_async(ChatMessage.objects.count)() == 1
    await communicator.disconnect()
