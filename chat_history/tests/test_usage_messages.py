"""Messages and the usage ledger: a service's message carrying OpenAI's usage
object records the call in the same transaction; sessions and messages count
as the owner's monthly activity (the dashboard's figures), imports do not."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.urls import reverse

from chat_history import services
from chat_history.models import ChatMessage, ChatSession
from chat_history.tests.factories import ChatSessionFactory, add_member
from chat_history.tests.urls import history_url, sessions_url
from usage.models import ALL_KEYS, UsageDaily, UsageMonthly, UsageRecord
from users.models import Profile, Scope
from users.tests.factories import ProviderKeyFactory, UserFactory

pytestmark = pytest.mark.django_db

MESSAGES_URL = reverse("chat_history:message-list")
USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.USAGE_PRICES = {"gpt-4o": {"prompt": "2.50", "completion": "10.00"}}


@pytest.fixture
def ai(make_service_client):
    """The AI service: writes messages and records usage."""
    return make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE, Scope.USAGE_WRITE)


def _answer(session, **fields):
    metadata = fields.pop("metadata", {"model": "gpt-4o-2024-08-06", "usage": USAGE})
    return {
        "role": "assistant",
        "content": "RAG는 검색 증강 생성입니다.",
        "metadata": metadata,
        **fields,
    }


def _activity(user) -> tuple[int, int]:
    totals = UsageMonthly.objects.filter(user=user, key_id=ALL_KEYS).aggregate(
        sessions=Sum("sessions", default=0), messages=Sum("messages", default=0)
    )
    return totals["sessions"], totals["messages"]


# --- Recording -----------------------------------------------------------------------


def test_an_answer_with_usage_and_a_key_records_the_call(ai, session, user):
    key = ProviderKeyFactory(user=user, provider="openai")

    response = ai.post(history_url(session), _answer(session, key_id=key.pk), format="json")

    assert response.status_code == 201
    message = response.json()
    record = UsageRecord.objects.get()
    assert (record.user_id, record.key_id, record.provider, record.model) == (
        user.pk,
        key.pk,
        "openai",
        "gpt-4o-2024-08-06",
    )
    assert (record.prompt_tokens, record.completion_tokens) == (1200, 300)
    assert record.cost == Decimal("0.006000")
    assert (record.session_id, record.message_id) == (session.session_id, message["id"])
    assert record.idempotency_key == f"message:{message['id']}"
    assert message["metadata"]["usage"] == USAGE  # the metadata is kept as sent
    daily = UsageDaily.objects.get()
    assert (daily.key_id, daily.calls, daily.total_tokens) == (key.pk, 1, 1500)
    assert sorted(UsageMonthly.objects.values_list("key_id", "calls")) == [(0, 1), (key.pk, 1)]


def test_without_a_key_the_provider_comes_from_the_metadata_else_openai(ai, session, user):
    anthropic = {"model": "claude-sonnet-4", "provider": "anthropic", "usage": USAGE}
    ai.post(history_url(session), _answer(session, metadata=anthropic), format="json")
    ai.post(MESSAGES_URL, {**_answer(session), "session_id": str(session.session_id)})

    records = UsageRecord.objects.order_by("id")
    assert [(r.provider, r.model, r.key_id) for r in records] == [
        ("anthropic", "claude-sonnet-4", None),
        ("openai", "gpt-4o-2024-08-06", None),
    ]
    assert records[0].cost_source == "unpriced"


def test_a_key_of_another_user_or_provider_is_refused_with_nothing_written(
    ai, session, user, other_user
):
    theirs = ProviderKeyFactory(user=other_user)
    anthropic = ProviderKeyFactory(user=user, provider="anthropic")
    said_openai = {"model": "gpt-4o", "provider": "openai", "usage": USAGE}

    for body in (
        _answer(session, key_id=theirs.pk),
        _answer(session, key_id=anthropic.pk, metadata=said_openai),
    ):
        response = ai.post(history_url(session), body, format="json")
        assert response.status_code == 400
        assert "key_id" in response.json()["errors"]
    assert not ChatMessage.objects.exists()
    assert not UsageRecord.objects.exists()


def test_with_a_key_the_provider_is_the_keys(ai, session, user):
    anthropic = ProviderKeyFactory(user=user, provider="anthropic")
    metadata = {"model": "claude-sonnet-4", "usage": USAGE}

    ai.post(history_url(session), _answer(session, key_id=anthropic.pk, metadata=metadata))

    assert UsageRecord.objects.get().provider == "anthropic"


def test_a_retried_message_records_its_usage_once(ai, session):
    body = _answer(session, client_message_id="turn-7")

    first = ai.post(history_url(session), body, format="json")
    again = ai.post(history_url(session), body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert UsageRecord.objects.count() == 1
    assert UsageMonthly.objects.get(key_id=ALL_KEYS).calls == 1
    assert _activity(session.user)[1] == 1


def test_a_used_up_budget_refuses_the_message_whole(ai, session, user, clock_march):
    key = ProviderKeyFactory(user=user, monthly_token_limit=1000)
    ai.post(history_url(session), _answer(session, key_id=key.pk), format="json")
    session.refresh_from_db()
    before = (session.message_count, session.last_message_id, _activity(user))

    response = ai.post(history_url(session), _answer(session, key_id=key.pk), format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Key {key.pk}'s monthly token budget (1000 tokens) is used up for 2026-03; "
        "nothing was recorded.",
        "code": "budget_exceeded",
        "budget": "key",
        "metric": "tokens",
        "key_id": key.pk,
        "month": "2026-03",
    }
    session.refresh_from_db()
    assert ChatMessage.objects.count() == 1
    assert UsageRecord.objects.count() == 1
    assert (session.message_count, session.last_message_id, _activity(user)) == before


def test_the_owners_budget_applies_without_a_key(ai, session, user):
    Profile.objects.filter(user=user).update(monthly_cost_limit=Decimal("0.006"))
    assert ai.post(history_url(session), _answer(session), format="json").status_code == 201
    response = ai.post(history_url(session), _answer(session), format="json")
    assert (response.status_code, response.json()["budget"]) == (409, "user")


def test_a_failure_after_the_record_leaves_neither_message_nor_record(ai, session, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("after the usage was recorded")

    monkeypatch.setattr(services, "_session_record_new_message", broken)

    with pytest.raises(RuntimeError):
        services.chat_message_create(
            actor=_service_actor(),
            session=session,
            role="assistant",
            content="answer",
            metadata={"model": "gpt-4o", "usage": USAGE},
        )

    assert not ChatMessage.objects.exists()
    assert not UsageRecord.objects.exists()
    assert not UsageDaily.objects.exists()
    assert not UsageMonthly.objects.filter(calls__gt=0).exists()


def _service_actor():
    from users.principals import ServicePrincipal
    from users.tests.factories import service_token_create

    token, _ = service_token_create(scopes=[Scope.CHAT_WRITE, Scope.USAGE_WRITE])
    return ServicePrincipal(token)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1, "completion_tokens": 3},
        {"prompt_tokens": "12", "completion_tokens": 3},
        {"prompt_tokens": 1.5, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 12},
        {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": -15},
        # More than any call: the ledger's sums must never overflow.
        {"prompt_tokens": 10**9 + 1, "completion_tokens": 3},
        {"prompt_tokens": 12, "completion_tokens": 2**63 - 1},
    ],
)
def test_a_malformed_usage_object_is_a_400(ai, auth_client, session, usage):
    metadata = {"model": "gpt-4o", "usage": usage}

    by_service = ai.post(history_url(session), _answer(session, metadata=metadata), format="json")
    by_user = auth_client.post(
        history_url(session), {"role": "user", "content": "hi", "metadata": metadata}
    )

    for response in (by_service, by_user):
        assert response.status_code == 400
        assert "metadata" in response.json()["errors"]
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize(
    "metadata",
    [
        {"model": "", "usage": USAGE},
        {"model": 4, "usage": USAGE},
        {"model": "gpt-4o", "provider": "mistral", "usage": USAGE},
    ],
)
def test_the_model_and_provider_beside_a_usage_object_are_checked(ai, session, metadata):
    response = ai.post(history_url(session), _answer(session, metadata=metadata), format="json")
    assert response.status_code == 400
    assert "metadata" in response.json()["errors"]


@pytest.mark.parametrize(
    "metadata",
    [
        {"tokens_used": 42},
        {"usage": {"tokens": 12}},  # not OpenAI's usage object: free-form
        {"usage": USAGE},  # no model: nothing to price or name
        {"model": "gpt-4o"},
    ],
)
def test_metadata_without_a_recordable_usage_records_nothing(ai, session, metadata):
    response = ai.post(history_url(session), _answer(session, metadata=metadata), format="json")
    assert response.status_code == 201
    assert not UsageRecord.objects.exists()


def test_a_key_id_needs_the_usage_it_was_spent_on(ai, session, user):
    key = ProviderKeyFactory(user=user)
    body = _answer(session, metadata={"model": "gpt-4o"}, key_id=key.pk)

    response = ai.post(history_url(session), body, format="json")

    assert response.status_code == 400
    assert "key_id" in response.json()["errors"]


def test_only_a_token_holding_usage_write_records(make_service_client, auth_client, session, user):
    chat_only = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)
    key = ProviderKeyFactory(user=user)

    plain = chat_only.post(history_url(session), _answer(session), format="json")
    keyed = chat_only.post(history_url(session), _answer(session, key_id=key.pk), format="json")
    mine = auth_client.post(
        history_url(session),
        {"role": "user", "content": "hi", "metadata": {"model": "gpt-4o", "usage": USAGE}},
    )
    my_key = auth_client.post(
        history_url(session),
        {
            "role": "user",
            "content": "hi",
            "metadata": {"model": "gpt-4o", "usage": USAGE},
            "key_id": key.pk,
        },
    )

    assert plain.status_code == 201  # kept as metadata; nothing recorded without the scope
    assert (keyed.status_code, keyed.json()["code"]) == (403, "missing_scope")
    assert mine.status_code == 201  # a user's own metadata records nothing
    assert my_key.status_code == 400
    assert not UsageRecord.objects.exists()


def test_posting_with_usage_costs_the_records_queries(ai, session, django_assert_num_queries):
    ai.post(history_url(session), _answer(session), format="json")  # the month's rows exist
    # token, session, savepoint, lock, INSERT, [savepoint, limits, savepoint,
    # INSERT, release, the month's rows ensured, the user's row, the day's row,
    # release], activity, UPDATE session, UPDATE unread counts, the outbox's event,
    # release
    with django_assert_num_queries(19):
        response = ai.post(history_url(session), _answer(session), format="json")
    assert response.status_code == 201


# --- Activity -------------------------------------------------------------------------


def test_sessions_and_messages_count_for_the_owner_this_month(auth_client, ai, user, clock_march):
    session_id = auth_client.post(sessions_url(), {"title": "t"}).json()["session_id"]
    session = ChatSession.objects.get(session_id=session_id)
    editor = UserFactory()
    add_member(session, editor)
    auth_client.post(history_url(session), {"role": "user", "content": "q"})
    ai.post(history_url(session), _answer(session), format="json")
    auth_client.post(history_url(session), {"role": "user", "content": "q2"})

    assert _activity(user) == (1, 3)
    assert _activity(editor) == (0, 0)
    row = UsageMonthly.objects.get(user=user, key_id=ALL_KEYS)
    assert row.month.isoformat() == "2026-03-01"


def test_a_replayed_message_counts_once(auth_client, session, user):
    body = {"role": "user", "content": "q", "client_message_id": "once"}
    auth_client.post(history_url(session), body)
    auth_client.post(history_url(session), body)
    assert _activity(user)[1] == 1


def test_imported_conversations_are_not_this_months_activity(auth_client, user):
    sample = Path(__file__).parent / "samples" / "chatbot_export.json"
    upload = SimpleUploadedFile("chats.json", sample.read_bytes(), content_type="application/json")

    response = auth_client.post(
        reverse("chat_history:import"), {"file": upload}, format="multipart"
    )

    assert response.status_code == 201, response.content
    assert ChatSession.objects.filter(user=user).exists()
    assert ChatMessage.objects.filter(session__user=user).exists()
    assert _activity(user) == (0, 0)
    assert not UsageRecord.objects.exists()


def test_the_factory_counts_a_session_as_the_service_does(user):
    ChatSessionFactory(user=user)
    assert _activity(user) == (1, 0)


@pytest.fixture
def clock_march(monkeypatch):
    moment = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: moment)
    return moment
