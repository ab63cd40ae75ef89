"""Every route the client calls, against the real server (see conftest.py)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from chatbot_client import (
    AuthenticationError,
    BadRequestError,
    ChatbotClient,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _jwt(user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


# --- sessions, history, messages ----------------------------------------------------


def test_sessions_of_a_user(client, user):
    created = client.create_session(user.id, title="RAG 질문", instructions="Be brief.")

    assert created.user_id == user.id
    assert created.instructions == "Be brief."
    fetched = client.get_session(created.session_id)
    assert (fetched.session_id, fetched.title, fetched.instructions) == (
        created.session_id,
        "RAG 질문",
        "Be brief.",
    )
    assert fetched.my_role is None  # a service token has no role (the create says "owner")
    other = client.create_session(user.id)
    listed = client.list_sessions(user_id=user.id, page_size=1)
    assert listed.count == 2
    assert listed.has_next
    assert {s.session_id for s in client.iter_sessions(user_id=user.id, page_size=1)} == {
        created.session_id,
        other.session_id,
    }


def test_history_pages_formats_and_idempotent_posts(client, user):
    session = client.create_session(user.id, instructions="Answer in Korean.")
    sid = session.session_id
    question = client.post_message(sid, role="user", content="RAG가 무엇인가요?")
    answer = client.post_message(
        sid,
        role="assistant",
        content="RAG는 검색 증강 생성입니다.",
        metadata={"tokens_used": 45, "model": "gpt-oss-20b", "sources": ["doc:2#p3"]},
        client_message_id="run-8c1d:final",
        stream_id="stream-8c1d",
    )
    assert (question.created, answer.created) == (True, True)
    assert question.client_message_id.startswith("auto-")  # the automatic key
    assert answer.stream_id == "stream-8c1d"
    assert answer.parent_id == question.id

    replay = client.post_message(
        sid,
        role="assistant",
        content="RAG는 검색 증강 생성입니다.",
        client_message_id="run-8c1d:final",
    )
    assert replay.created is False
    assert replay.id == answer.id
    with pytest.raises(ConflictError) as raised:
        client.post_message(
            sid, role="assistant", content="something else", client_message_id="run-8c1d:final"
        )
    assert raised.value.code == "idempotency_key_reused"
    assert raised.value.context["message_id"] == answer.id

    third = client.post_message(sid, role="user", content="예를 들어 주세요.")
    page = client.get_history(sid, limit=2)
    assert [m.id for m in page.messages] == [answer.id, third.id]
    assert page.has_more_before
    older = client.get_history(sid, before=page.oldest_id)
    assert [m.id for m in older.messages] == [question.id]
    assert [m.id for m in client.iter_messages(sid, page_size=1)] == [
        question.id,
        answer.id,
        third.id,
    ]
    assert [m.id for m in client.get_recent_messages(sid, 2)] == [answer.id, third.id]
    assert client.get_message(answer.id).metadata["sources"] == ["doc:2#p3"]

    assert client.get_openai_messages(sid, limit=2) == [
        {"role": "system", "content": "Answer in Korean."},
        {"role": "assistant", "content": "RAG는 검색 증강 생성입니다."},
        {"role": "user", "content": "예를 들어 주세요."},
    ]
    lc = client.get_langchain_messages(sid, instructions=True)
    assert [(m.type, m.content) for m in lc] == [
        ("system", "Answer in Korean."),
        ("human", "RAG가 무엇인가요?"),
        ("ai", "RAG는 검색 증강 생성입니다."),
        ("human", "예를 들어 주세요."),
    ]


def test_a_branch_and_a_new_first_message(client, user):
    sid = client.create_session(user.id).session_id
    question = client.post_message(sid, role="user", content="q")
    client.post_message(sid, role="assistant", content="a1")
    regenerated = client.post_message(sid, role="assistant", content="a2", parent_id=question.id)

    assert regenerated.siblings is not None
    assert (regenerated.siblings.index, regenerated.siblings.count) == (2, 2)
    assert [m.content for m in client.iter_messages(sid)] == ["q", "a2"]
    restart = client.post_message(sid, role="user", content="from scratch", parent_id=None)
    assert restart.parent_id is None


def test_errors_carry_the_servers_code_and_request_id(client, base_url, make_token, user):
    with pytest.raises(NotFoundError) as raised:
        client.get_session(str(uuid.uuid4()))
    assert raised.value.code == "session_not_found"
    assert raised.value.request_id

    sid = client.create_session(user.id).session_id
    with pytest.raises(BadRequestError) as raised:
        client.post_message(sid, role="user", content="   ")
    assert "content" in raised.value.errors

    with ChatbotClient(base_url, make_token("chat:read")) as read_only:
        with pytest.raises(PermissionDeniedError) as raised:
            read_only.post_message(sid, role="assistant", content="no")
        assert raised.value.code == "missing_scope"

    with ChatbotClient(base_url, "svc_not-a-token") as stranger:
        with pytest.raises(AuthenticationError) as raised:
            stranger.list_sessions()
        assert raised.value.code == "invalid_service_token"


# --- streaming ---------------------------------------------------------------------------


async def _watch(base_url: str, token: str, sid: str, produce) -> list[dict]:
    """The events a socket of the session receives while ``produce()`` runs, up to
    the first ``message.created``."""
    url = base_url.replace("http://", "ws://") + f"/ws/chat/{sid}/"
    async with websockets.connect(url, subprotocols=["bearer", token]) as socket_:
        assert json.loads(await asyncio.wait_for(socket_.recv(), 10))["type"] == "presence"
        producer = asyncio.create_task(asyncio.to_thread(produce))
        events = []
        while True:
            event = json.loads(await asyncio.wait_for(socket_.recv(), 10))
            if event["type"] == "presence":
                continue
            events.append(event)
            if event["type"] == "message.created":
                break
        await producer
    return events


def test_a_streamed_reply_reaches_the_sessions_socket(base_url, make_token, user):
    token = make_token()
    with ChatbotClient(base_url, token) as client:
        sid = client.create_session(user.id).session_id
        results = {}

        def produce():
            with client.reply_stream(sid, "stream-live") as reply:
                reply.send("RAG는 ")
                reply.send("검색 증강 생성입니다.")
                results["message"] = reply.finish("RAG는 검색 증강 생성입니다.")

        events = asyncio.run(_watch(base_url, token, sid, produce))

    assert [event["type"] for event in events] == [
        "assistant.typing",
        "assistant.delta",
        "assistant.delta",
        "message.created",
    ]
    assert events[0]["typing"] is True
    assert [(e["seq"], e["delta"]) for e in events[1:3]] == [
        (0, "RAG는 "),
        (1, "검색 증강 생성입니다."),
    ]
    assert {e["stream_id"] for e in events[:3]} == {"stream-live"}
    assert events[3]["message"]["metadata"]["stream_id"] == "stream-live"
    assert events[3]["message"]["id"] == results["message"].id


def test_a_throttled_stream_is_a_rate_limit_error_with_retry_after(start_server, make_token, user):
    slept: list[float] = []
    token = make_token()
    with (
        start_server(THROTTLE_SERVICE_STREAM="2/min") as url,
        ChatbotClient(url, token, max_retry_after=5, sleep=slept.append) as client,
    ):
        sid = client.create_session(user.id).session_id
        reply = client.reply_stream(sid, typing=False)
        reply.send("one")
        reply.send("two")
        with pytest.raises(RateLimitError) as raised:
            reply.send("three")

    assert raised.value.code == "throttled"
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 5  # longer than we may wait: raised at once
    assert slept == []


# --- documents ---------------------------------------------------------------------------


def _upload(base_url: str, user, name: str, content: bytes) -> int:
    response = httpx.post(
        f"{base_url}/api/documents/",
        headers={"Authorization": f"Bearer {_jwt(user)}"},
        files={"file": (name, content, "text/plain")},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_the_document_protocol_claim_download_report(client, base_url, user):
    content = "RAG 문서\n".encode() * 500
    document_id = _upload(base_url, user, "notes.txt", content)

    claim = client.claim_document(worker="test-host")
    assert claim is not None
    assert (claim.id, claim.owner_id, claim.attempt) == (document_id, user.id, 1)
    assert client.claim_document() is None  # nothing else pending

    out = io.BytesIO()
    assert client.download_document(claim, out, chunk_size=1024) == len(content)
    assert out.getvalue() == content

    renewed = client.heartbeat(claim)
    assert renewed.status == "processing"
    done = client.complete_document(claim, chunk_count=3, page_count=1)
    assert (done.status, done.chunk_count, done.page_count) == ("processed", 3, 1)

    with pytest.raises(ConflictError) as raised:
        client.fail_document(claim, "too late")
    assert raised.value.code == "invalid_transition"
    assert raised.value.context["current_status"] == "processed"


def test_the_deletions_feed(client, base_url, user):
    first = _upload(base_url, user, "a.txt", b"first document")
    second = _upload(base_url, user, "b.txt", b"second document")
    feed = client.deletions_feed(since=datetime.now(UTC) - timedelta(minutes=5))
    assert feed.poll() == []

    auth = {"Authorization": f"Bearer {_jwt(user)}"}
    for document_id in (first, second):
        deleted = httpx.delete(f"{base_url}/api/documents/{document_id}/", headers=auth)
        assert deleted.status_code == 204

    news = feed.poll()
    assert [d.document_id for d in news] == [first, second]
    assert {d.owner_id for d in news} == {user.id}
    assert feed.cursor == news[-1].deleted_at
    assert feed.poll() == []  # asked again with the overlap, returned once
    assert [d.document_id for d in client.iter_deletions(page_size=1)] == [first, second]

    with pytest.raises(NotFoundError):
        client.report_document(first, lease_id=str(uuid.uuid4()), status="processing")


# --- keys, usage, budgets ------------------------------------------------------------------


SECRET_KEY = "sk-proj-" + "Aa1Bb2Cc3" * 3 + "00000001"


def _provider_key(user):
    factories = pytest.importorskip("users.tests.factories")
    if not hasattr(factories, "ProviderKeyFactory"):
        pytest.skip("The provider keys (users.ProviderKey) are not in this tree yet.")
    return factories.ProviderKeyFactory(user=user, provider="openai", api_key=SECRET_KEY)


def test_resolve_a_users_provider_key(client, user):
    key = _provider_key(user)

    grant = client.get_api_key(user.id, provider="openai")

    assert grant.api_key == SECRET_KEY
    assert SECRET_KEY not in repr(grant)
    assert (grant.user_id, grant.key_id, grant.provider) == (user.id, key.pk, "openai")
    assert client.get_api_key(user.id, key_id=key.pk).key_id == key.pk
    with pytest.raises(NotFoundError) as raised:
        client.get_api_key(user.id, provider="anthropic")
    assert raised.value.code == "api_key_not_set"


def _needs_usage_routes(client) -> None:
    try:
        client.get_budget(10**9)
    except NotFoundError as error:
        if error.code != "not_found" or "user" not in error.detail.lower():
            pytest.skip(f"The usage routes are not served yet ({error.code}: {error.detail}).")


def test_record_usage_once_and_check_the_budget(client, user):
    _needs_usage_routes(client)
    key = _provider_key(user)
    sid = client.create_session(user.id).session_id
    call = {
        "user_id": user.id,
        "key_id": key.pk,
        "session_id": sid,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": 0.000027,
        "idempotency_key": "run-live:llm-1",
    }

    first = client.record_usage(**call)
    again = client.record_usage(**call)

    assert (first.created, again.created) == (True, False)
    assert again.id == first.id
    assert (first.total_tokens, str(first.cost)) == (120, "0.000027")
    with pytest.raises(ConflictError) as raised:
        client.record_usage(**{**call, "prompt_tokens": 101})
    assert raised.value.code == "idempotency_key_reused"
    assert raised.value.context["record_id"] == first.id

    budget = client.get_budget(user.id, key_id=key.pk)
    assert budget.allowed is True
    assert budget.user.tokens_used == 120
    assert budget.key is not None
    assert budget.key.tokens_used == 120
    assert client.get_budget(user.id).key is None


def test_a_message_with_usage_records_its_call_once(client, user):
    _needs_usage_routes(client)
    key = _provider_key(user)
    sid = client.create_session(user.id).session_id
    usage = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}

    for _ in range(2):  # the second is a replay: nothing more is counted
        client.post_message(
            sid,
            role="assistant",
            content="answer",
            metadata={"usage": usage, "model": "gpt-4o-mini"},
            key_id=key.pk,
            client_message_id="run-usage:final",
        )

    assert client.get_budget(user.id, key_id=key.pk).key.tokens_used == 42


def test_concurrent_use_of_one_client(client, user):
    sid = client.create_session(user.id).session_id
    errors: list[BaseException] = []

    def post(index: int) -> None:
        try:
            client.post_message(sid, role="assistant", content=f"m{index}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(list(client.iter_messages(sid))) == 8
