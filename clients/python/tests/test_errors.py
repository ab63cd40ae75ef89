"""Errors: the backend's one JSON shape becomes one exception type per status."""

from __future__ import annotations

import httpx
import pytest
from chatbot_client import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatbotClientError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)


def answer(status, body=None, **headers):
    def handler(request):
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def test_a_validation_error_carries_its_field_errors_and_request_id(make_client):
    body = {
        "detail": 'role: "robot" is not a valid choice.',
        "code": "invalid",
        "errors": {"role": ['"robot" is not a valid choice.']},
    }
    client = make_client(answer(400, body, **{"X-Request-ID": "req-42"}))

    with pytest.raises(BadRequestError) as raised:
        client.post_message("s-1", role="user", content="hi")

    error = raised.value
    assert error.status == 400
    assert error.code == "invalid"
    assert error.errors == {"role": ['"robot" is not a valid choice.']}
    assert error.request_id == "req-42"
    assert error.method == "POST"
    assert error.url.endswith("/api/chat-history/sessions/s-1/messages/")
    assert "400 invalid" in str(error)
    assert "req-42" in repr(error)


def test_documented_context_is_kept_beside_the_shape(make_client):
    body = {"detail": "Key reused.", "code": "idempotency_key_reused", "message_id": 123}
    client = make_client(answer(409, body))

    with pytest.raises(ConflictError) as raised:
        client.post_message("s-1", role="user", content="other", client_message_id="k")

    assert raised.value.context == {"message_id": 123}
    assert raised.value.errors is None


def test_an_error_that_is_not_the_servers_json_still_raises_an_api_error(make_client):
    client = make_client(answer(502, "<html>Bad gateway</html>"))

    with pytest.raises(ServerError) as raised:
        client.list_sessions()

    assert raised.value.code == "http_502"
    assert raised.value.detail == "Bad Gateway"
    assert raised.value.body == {}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, ApiError),
        (409, ConflictError),
        (413, ApiError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServiceUnavailableError),
    ],
)
def test_each_status_has_its_class(make_client, status, kind):
    client = make_client(answer(status, {"detail": "d", "code": "c"}), max_retries=0)

    with pytest.raises(kind) as raised:
        client.get_session("s-1")

    assert type(raised.value) is kind
    assert isinstance(raised.value, ApiError)
    assert isinstance(raised.value, ChatbotClientError)
