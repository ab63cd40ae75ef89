"""The retry policy: which answers and failures are repeated, and how long it waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from chatbot_client import (
    ChatbotClient,
    RateLimitError,
    ServiceUnavailableError,
    TransportError,
)
from chatbot_client.client import parse_retry_after

MESSAGE = {
    "id": 7,
    "session_id": "s-1",
    "role": "assistant",
    "content": "hi",
    "metadata": {},
    "client_message_id": "k",
    "created_at": "2025-01-15T10:31:00Z",
    "updated_at": "2025-01-15T10:31:00Z",
}
THROTTLED = {"detail": "Request was throttled.", "code": "throttled"}


def scripted(*answers):
    """A handler answering with each of ``answers`` in turn (a response, or an
    exception to raise); it records the requests it saw."""
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        handler.requests.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    handler.requests = []
    return handler


def test_a_429_is_retried_after_its_retry_after(make_client, sleeps):
    handler = scripted(
        httpx.Response(429, json=THROTTLED, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"relayed": True}),
    )
    client = make_client(handler)

    assert client.stream_delta("s-1", "st", "piece", seq=0) is True

    assert len(handler.requests) == 2
    assert len(sleeps) == 1
    assert 3 <= sleeps[0] <= 3.3  # never earlier than asked, a little jitter


def test_a_503_without_retry_after_backs_off_exponentially_with_jitter(make_client, sleeps):
    unavailable = {"detail": "The database is unavailable.", "code": "database_unavailable"}
    handler = scripted(
        *[httpx.Response(503, json=unavailable) for _ in range(3)],
        httpx.Response(200, json={"count": 0, "next": None, "previous": None, "results": []}),
    )
    client = make_client(handler, backoff_base=1.0, max_backoff=3.0)

    client.list_sessions()

    assert len(sleeps) == 3
    for slept, ceiling in zip(sleeps, [1.0, 2.0, 3.0], strict=True):  # 1, 2, then capped
        assert ceiling / 2 <= slept <= ceiling


def test_the_last_answer_is_raised_once_the_retries_are_spent(make_client, sleeps):
    handler = scripted(
        *[
            httpx.Response(
                503,
                json={"detail": "down", "code": "database_unavailable"},
                headers={"Retry-After": "1", "X-Request-ID": f"r{i}"},
            )
            for i in range(3)
        ]
    )
    client = make_client(handler, max_retries=2)

    with pytest.raises(ServiceUnavailableError) as raised:
        client.get_session("s-1")

    assert len(handler.requests) == 3
    assert raised.value.code == "database_unavailable"
    assert raised.value.retry_after == 1
    assert raised.value.request_id == "r2"


def test_a_retry_after_longer_than_allowed_is_raised_at_once(make_client, sleeps):
    handler = scripted(httpx.Response(429, json=THROTTLED, headers={"Retry-After": "120"}))
    client = make_client(handler, max_retry_after=30)

    with pytest.raises(RateLimitError) as raised:
        client.stream_typing("s-1", "st")

    assert raised.value.retry_after == 120
    assert raised.value.status == 429
    assert sleeps == []


def test_no_retries_when_max_retries_is_zero(make_client, sleeps):
    handler = scripted(httpx.Response(429, json=THROTTLED, headers={"Retry-After": "1"}))
    client = make_client(handler, max_retries=0)

    with pytest.raises(RateLimitError):
        client.list_sessions()
    assert sleeps == []


def test_a_post_without_idempotency_key_is_not_repeated_after_a_broken_connection(
    make_client, sleeps
):
    handler = scripted(httpx.ReadTimeout("timed out"))
    client = make_client(handler)

    with pytest.raises(TransportError) as raised:
        client.claim_document(worker="w")  # a second claim could lease another document

    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert len(handler.requests) == 1
    assert sleeps == []


def test_a_message_create_is_repeated_after_a_broken_connection_with_the_same_key(
    make_client, sleeps
):
    handler = scripted(
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json=MESSAGE),  # the first attempt had landed: a replay
    )
    client = make_client(handler)

    message = client.post_message("s-1", role="assistant", content="hi", client_message_id="k")

    first, second = handler.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "k"
    assert first.headers["X-Request-ID"] == second.headers["X-Request-ID"]
    assert message.created is False
    assert len(sleeps) == 1


def test_an_automatic_idempotency_key_makes_any_message_create_repeatable(make_client):
    handler = scripted(httpx.ReadError("reset"), httpx.Response(201, json=MESSAGE))
    client = make_client(handler)

    message = client.post_message("s-1", role="assistant", content="hi")

    keys = {request.headers["Idempotency-Key"] for request in handler.requests}
    assert len(handler.requests) == 2
    assert len(keys) == 1
    assert keys.pop().startswith("auto-")
    assert message.created is True


def test_without_automatic_keys_a_message_create_is_not_repeated(make_client):
    handler = scripted(httpx.ReadError("reset"))
    client = make_client(handler, auto_idempotency_keys=False)

    with pytest.raises(TransportError):
        client.post_message("s-1", role="assistant", content="hi")

    assert "Idempotency-Key" not in handler.requests[0].headers


def test_a_connection_that_could_not_be_opened_is_retried_even_for_a_post(make_client, sleeps):
    handler = scripted(
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("connect timeout"),
        httpx.Response(204),
    )
    client = make_client(handler)

    assert client.claim_document() is None
    assert len(handler.requests) == 3
    assert len(sleeps) == 2


def test_a_get_is_repeated_after_a_read_timeout(make_client):
    handler = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json=MESSAGE))
    client = make_client(handler)

    assert client.get_message(7).id == 7
    assert len(handler.requests) == 2


def test_a_heartbeat_is_repeatable_but_a_final_report_is_not(make_client):
    document = {
        "id": 2,
        "filename": "a.txt",
        "file_type": "TXT",
        "file_size": 3,
        "status": "processing",
        "processed": False,
    }
    heartbeat = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json=document))
    assert make_client(heartbeat).report_document(2, lease_id="l", status="processing")
    assert len(heartbeat.requests) == 2

    final = scripted(httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError):
        make_client(final).report_document(2, lease_id="l", status="processed", chunk_count=1)
    assert len(final.requests) == 1


def test_transport_errors_give_up_after_max_retries(make_client, sleeps):
    handler = scripted(*[httpx.ConnectError("refused") for _ in range(4)])
    client = make_client(handler, max_retries=3)

    with pytest.raises(TransportError):
        client.list_sessions()
    assert len(handler.requests) == 4
    assert len(sleeps) == 3


def test_a_4xx_other_than_429_is_never_retried(make_client, sleeps):
    handler = scripted(httpx.Response(409, json={"detail": "x", "code": "lease_expired"}))
    with pytest.raises(Exception, match="lease_expired"):
        make_client(handler).report_document(1, lease_id="l", status="processing")
    assert sleeps == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    now = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0


def test_a_wrong_base_url_is_not_retried(sleeps):
    client = ChatbotClient("ftp://nowhere", "svc", sleep=sleeps)
    with client, pytest.raises(TransportError):
        client.list_sessions()
    assert sleeps == []
