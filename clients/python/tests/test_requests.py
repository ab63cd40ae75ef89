"""What each method sends and how it reads the answer (the routes of the backend's README)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from chatbot_client import OMIT, ChatbotClient, Claim, ConflictError
from chatbot_client.client import STREAM_DELTA_MAX_LENGTH

from .test_models import MESSAGE, SESSION

SID = SESSION["session_id"]


class Recorder:
    """A handler that records each request and answers from a function of it."""

    def __init__(self, respond):
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request):
        self.requests.append(request)
        return self.respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def bodies(self) -> list:
        return [json.loads(request.content) for request in self.requests]


def ok(body, status=200):
    return lambda request: httpx.Response(status, json=body)


def test_every_request_carries_the_token_and_a_request_id(make_client):
    recorder = Recorder(ok(SESSION))
    make_client(recorder).get_session(SID)

    request = recorder.last
    assert request.headers["Authorization"] == "Bearer svc_test"
    assert len(request.headers["X-Request-ID"]) == 32
    assert request.headers["User-Agent"].startswith("chatbot-client-python/")
    assert request.url.path == f"/api/chat-history/sessions/{SID}/"


def test_base_url_may_carry_a_path_prefix():
    recorder = Recorder(ok(SESSION))
    with ChatbotClient(
        "http://testserver/backend/", "svc", transport=httpx.MockTransport(recorder)
    ) as client:
        client.get_session(SID)
    assert recorder.last.url.path == f"/backend/api/chat-history/sessions/{SID}/"


def test_create_session_for_a_user(make_client):
    recorder = Recorder(ok(SESSION, 201))
    session = make_client(recorder).create_session(1, title="RAG", instructions="Be brief.")

    assert recorder.last.method == "POST"
    assert recorder.bodies() == [{"user_id": 1, "title": "RAG", "instructions": "Be brief."}]
    assert session.session_id == SID


def test_list_and_iterate_a_users_sessions(make_client):
    def respond(request):
        page = int(request.url.params["page"])
        return httpx.Response(
            200,
            json={
                "count": 3,
                "next": "http://elsewhere/?page=2" if page == 1 else None,
                "previous": None,
                "results": [SESSION, SESSION] if page == 1 else [SESSION],
            },
        )

    recorder = Recorder(respond)
    client = make_client(recorder)

    sessions = list(client.iter_sessions(user_id=1, archived=False, page_size=2))

    assert len(sessions) == 3
    assert [dict(request.url.params) for request in recorder.requests] == [
        {"user_id": "1", "archived": "false", "page": "1", "page_size": "2"},
        {"user_id": "1", "archived": "false", "page": "2", "page_size": "2"},
    ]


def test_history_window_parameters(make_client):
    page = {
        "session_id": SID,
        "title": "",
        "messages": [MESSAGE],
        "has_more_before": True,
        "has_more_after": False,
        "oldest_id": 123,
        "newest_id": 123,
    }
    recorder = Recorder(ok(page))
    client = make_client(recorder)

    result = client.get_history(SID, limit=50, before=4021)

    assert dict(recorder.last.url.params) == {"limit": "50", "before": "4021"}
    assert result.oldest_id == 123


def test_iter_messages_walks_forward_from_the_first(make_client):
    def respond(request):
        after = int(request.url.params["after"])
        ids = [1, 2] if after == 0 else [3]
        return httpx.Response(
            200,
            json={
                "session_id": SID,
                "title": "",
                "messages": [{**MESSAGE, "id": i} for i in ids],
                "has_more_before": after > 0,
                "has_more_after": after == 0,
                "oldest_id": ids[0],
                "newest_id": ids[-1],
            },
        )

    recorder = Recorder(respond)
    messages = list(make_client(recorder).iter_messages(SID, page_size=2))

    assert [message.id for message in messages] == [1, 2, 3]
    assert [request.url.params["after"] for request in recorder.requests] == ["0", "2"]


def test_recent_messages_page_back_until_enough(make_client):
    def respond(request):
        before = request.url.params.get("before")
        ids = [4, 5] if before is None else [2, 3]
        return httpx.Response(
            200,
            json={
                "session_id": SID,
                "title": "",
                "messages": [{**MESSAGE, "id": i} for i in ids],
                "has_more_before": True,
                "has_more_after": False,
                "oldest_id": ids[0],
                "newest_id": ids[-1],
            },
        )

    recorder = Recorder(respond)
    messages = make_client(recorder).get_recent_messages(SID, 4)

    assert [message.id for message in messages] == [2, 3, 4, 5]
    assert [dict(request.url.params) for request in recorder.requests] == [
        {"limit": "4"},
        {"limit": "2", "before": "4"},
    ]


def test_openai_format(make_client):
    body = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    recorder = Recorder(ok(body))

    messages = make_client(recorder).get_openai_messages(SID, limit=20)

    assert messages == body
    assert dict(recorder.last.url.params) == {"format": "openai", "limit": "20"}


def test_post_message_sends_the_key_as_the_idempotency_key_header(make_client):
    recorder = Recorder(ok(MESSAGE, 201))
    message = make_client(recorder).post_message(
        SID,
        role="assistant",
        content="RAG는...",
        metadata={"model": "gpt-oss-20b"},
        client_message_id="run-8c1d:final",
        stream_id="stream-8c1d",
        key_id=4,
    )

    assert recorder.last.headers["Idempotency-Key"] == "run-8c1d:final"
    assert recorder.bodies() == [
        {
            "role": "assistant",
            "content": "RAG는...",
            "metadata": {"model": "gpt-oss-20b"},
            "stream_id": "stream-8c1d",
            "key_id": 4,
        }
    ]
    assert message.created is True


def test_parent_id_none_is_sent_and_omitted_is_not(make_client):
    recorder = Recorder(ok(MESSAGE, 201))
    client = make_client(recorder)

    client.post_message(SID, role="user", content="a", parent_id=None)
    client.post_message(SID, role="user", content="b", parent_id=OMIT)
    client.post_message(SID, role="assistant", content="c", parent_id=122)

    assert [body.get("parent_id", "absent") for body in recorder.bodies()] == [None, "absent", 122]


def test_a_replay_is_a_200_and_says_so(make_client):
    message = make_client(Recorder(ok(MESSAGE, 200))).post_message(
        SID, role="user", content="x", client_message_id="c-1"
    )
    assert message.created is False


def test_reply_stream_numbers_pieces_splits_long_ones_and_finishes_once(make_client):
    def respond(request):
        if request.url.path.endswith("/stream/"):
            return httpx.Response(202, json={"relayed": True})
        return httpx.Response(201, json={**MESSAGE, "role": "assistant"})

    recorder = Recorder(respond)
    client = make_client(recorder)

    with client.reply_stream(SID, "st-1") as reply:
        reply.send("RAG는 ")
        reply.send("x" * (STREAM_DELTA_MAX_LENGTH + 1))
        reply.finish("RAG는 " + "x" * (STREAM_DELTA_MAX_LENGTH + 1), metadata={"model": "m"})

    bodies = recorder.bodies()
    assert bodies[0] == {"stream_id": "st-1", "typing": True}
    assert [(body["seq"], len(body["delta"])) for body in bodies[1:4]] == [
        (0, 5),
        (1, STREAM_DELTA_MAX_LENGTH),
        (2, 1),
    ]
    assert bodies[4]["stream_id"] == "st-1"
    assert recorder.last.headers["Idempotency-Key"] == "st-1:final"
    assert len(bodies) == 5  # no typing: false after a finished reply


def test_reply_stream_says_typing_false_when_the_block_fails(make_client):
    recorder = Recorder(ok({"relayed": True}, 202))
    client = make_client(recorder)

    def generate():
        with client.reply_stream(SID) as reply:
            reply.send("half")
            raise RuntimeError(reply.stream_id)  # the model failed

    with pytest.raises(RuntimeError) as raised:
        generate()

    stream_id = str(raised.value)

    bodies = recorder.bodies()
    assert bodies[-1] == {"stream_id": stream_id, "typing": False}
    assert stream_id.startswith("stream-")


CLAIM = {
    "id": 2,
    "owner_id": 7,
    "filename": "notes.txt",
    "file_type": "TXT",
    "file_size": 11,
    "download_url": "http://testserver/api/documents/2/file/",
    "qdrant_collection": "documents",
    "lease_id": "5b0c0000-0000-0000-0000-000000000000",
    "lease_expires_at": "2025-01-15T10:40:00Z",
    "attempt": 1,
}


def test_claim_a_document_or_nothing(make_client):
    recorder = Recorder(ok(CLAIM))
    claim = make_client(recorder).claim_document(worker="host-1")
    assert recorder.bodies() == [{"worker": "host-1"}]
    assert claim is not None
    assert claim.lease_id == CLAIM["lease_id"]

    assert make_client(lambda request: httpx.Response(204)).claim_document() is None


def test_download_streams_into_a_file(make_client):
    content = b"hello world" * 10000
    recorder = Recorder(lambda request: httpx.Response(200, content=content))
    out = io.BytesIO()

    written = make_client(recorder).download_document(Claim.from_json(CLAIM), out, chunk_size=1000)

    assert written == len(content)
    assert out.getvalue() == content
    assert recorder.last.url == "http://testserver/api/documents/2/file/"


def test_download_never_sends_the_token_to_another_host(make_client):
    recorder = Recorder(lambda request: httpx.Response(200, content=b"x"))
    claim = Claim.from_json({**CLAIM, "download_url": "https://public.example.com/api/x/"})

    make_client(recorder).download_document(claim, io.BytesIO())

    assert recorder.last.url == "http://testserver/api/documents/2/file/"


def test_reports(make_client):
    document = {
        "id": 2,
        "filename": "notes.txt",
        "file_type": "TXT",
        "file_size": 11,
        "status": "processed",
        "processed": True,
        "chunk_count": 3,
    }
    recorder = Recorder(ok(document))
    client = make_client(recorder)
    claim = Claim.from_json(CLAIM)

    client.heartbeat(claim)
    client.complete_document(claim, chunk_count=3, page_count=1)
    client.fail_document(claim, "no text")

    lease = CLAIM["lease_id"]
    assert recorder.bodies() == [
        {"status": "processing", "lease_id": lease},
        {"status": "processed", "lease_id": lease, "chunk_count": 3, "page_count": 1},
        {"status": "failed", "lease_id": lease, "error": "no text"},
    ]
    assert {request.url.path for request in recorder.requests} == {"/api/documents/2/status/"}


def test_a_lost_lease_is_a_conflict_with_the_current_status(make_client):
    body = {"detail": "Lease expired.", "code": "lease_expired", "current_status": "pending"}
    client = make_client(Recorder(ok(body, 409)))

    with pytest.raises(ConflictError) as raised:
        client.complete_document(Claim.from_json(CLAIM), chunk_count=1)
    assert raised.value.code == "lease_expired"
    assert raised.value.context["current_status"] == "pending"


def _deletion(document_id, at):
    return {
        "document_id": document_id,
        "owner_id": 7,
        "filename": f"{document_id}.pdf",
        "qdrant_collection": "documents",
        "deleted_at": at.isoformat().replace("+00:00", "Z"),
    }


def test_the_deletions_feed_pages_and_keeps_its_cursor(make_client):
    base = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    deleted = [_deletion(i, base + timedelta(seconds=i)) for i in range(1, 4)]

    def respond(request):
        since = request.url.params.get("since")
        visible = [
            item
            for item in deleted
            if since is None
            or datetime.fromisoformat(item["deleted_at"]) > datetime.fromisoformat(since)
        ]
        page = int(request.url.params["page"])
        chunk = visible[(page - 1) * 2 : page * 2]
        more = len(visible) > page * 2
        return httpx.Response(
            200,
            json={
                "count": len(visible),
                "next": "x" if more else None,
                "previous": None,
                "results": chunk,
            },
        )

    recorder = Recorder(respond)
    feed = make_client(recorder).deletions_feed(page_size=2)

    assert [d.document_id for d in feed.poll()] == [1, 2, 3]
    assert feed.cursor == base + timedelta(seconds=3)
    assert feed.poll() == []  # the overlap asks again; nothing new is returned twice
    assert recorder.last.url.params["since"] == "2025-01-15T09:59:03Z"

    deleted.append(_deletion(4, base + timedelta(seconds=2, milliseconds=500)))  # a late commit
    assert [d.document_id for d in feed.poll()] == [4]
    assert feed.cursor == base + timedelta(seconds=3)


def test_since_must_be_an_aware_time(make_client):
    client = make_client(Recorder(ok({})))
    with pytest.raises(ValueError, match="aware"):
        client.list_deletions(since=datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


def test_resolve_a_users_key(make_client):
    grant = {
        "user_id": 1,
        "api_key": "sk-proj-x",
        "key_id": 4,
        "provider": "openai",
        "label": "",
        "base_url": "",
    }
    recorder = Recorder(ok(grant))
    result = make_client(recorder).get_api_key(1, provider="openai")

    assert recorder.last.url.path == "/api/users/1/api-key/"
    assert dict(recorder.last.url.params) == {"provider": "openai"}
    assert result.key_id == 4


def test_record_usage_and_its_replay(make_client):
    record = {
        "id": 9,
        "user_id": 1,
        "key_id": 4,
        "session_id": SID,
        "message_id": 123,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "cost": "0.000027",
        "cost_source": "reported",
        "idempotency_key": "run-1:llm",
        "created_at": "2025-01-15T10:31:00Z",
    }
    statuses = iter([201, 200])
    recorder = Recorder(lambda request: httpx.Response(next(statuses), json=record))
    client = make_client(recorder)
    arguments = {
        "user_id": 1,
        "key_id": 4,
        "session_id": SID,
        "message_id": 123,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": 0.000027,
        "idempotency_key": "run-1:llm",
    }

    first = client.record_usage(**arguments)
    again = client.record_usage(**arguments)

    assert (first.created, again.created) == (True, False)
    assert recorder.last.headers["Idempotency-Key"] == "run-1:llm"
    body = recorder.bodies()[0]
    assert body == {k: v for k, v in arguments.items() if k != "idempotency_key"}


def test_budget(make_client):
    level = {
        "token_limit": 1000,
        "tokens_used": 1000,
        "tokens_remaining": 0,
        "cost_limit": None,
        "cost_used": "0.5",
        "cost_remaining": None,
    }
    recorder = Recorder(ok({"allowed": False, "month": "2025-01", "user": level, "key": level}))

    budget = make_client(recorder).get_budget(1, key_id=4)

    assert dict(recorder.last.url.params) == {"key_id": "4"}
    assert budget.allowed is False
    assert budget.key is not None
    assert budget.key.tokens_remaining == 0
