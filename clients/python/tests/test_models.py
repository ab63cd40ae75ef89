"""The typed results: built from the JSON, forward compatible, safe to log."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from chatbot_client import (
    Budget,
    Claim,
    Document,
    HistoryPage,
    KeyGrant,
    Message,
    Session,
    UsageRecord,
)

SESSION = {
    "session_id": "550e8400-e29b-41d4-a716-446655440000",
    "user_id": 1,
    "title": "RAG",
    "archived": False,
    "pinned": True,
    "message_count": 6,
    "last_message": {
        "id": 123,
        "role": "assistant",
        "preview": "RAG는…",
        "created_at": "2025-01-15T10:35:00Z",
    },
    "active_leaf_id": 123,
    "member_count": 1,
    "my_role": None,
    "unread_count": None,
    "last_read_message_id": None,
    "created_at": "2025-01-15T10:30:00Z",
    "updated_at": "2025-01-15T10:35:00Z",
    "deleted_at": None,
    "instructions": "Answer briefly.",
}
MESSAGE = {
    "id": 123,
    "session_id": SESSION["session_id"],
    "role": "user",
    "author": {"user_id": 1, "username": "kim"},
    "content": "RAG가 무엇인가요?",
    "metadata": {"stream_id": "st-1", "tokens_used": 3},
    "client_message_id": "c-1",
    "parent_id": 122,
    "siblings": {"index": 1, "count": 2},
    "version": 2,
    "feedback": None,
    "created_at": "2025-01-15T10:31:00Z",
    "updated_at": "2025-01-15T10:32:00Z",
    "deleted_at": None,
}


def test_a_session_is_parsed_with_aware_times():
    session = Session.from_json(SESSION)

    assert session.pinned is True
    assert session.instructions == "Answer briefly."
    assert session.last_message is not None
    assert session.last_message.id == 123
    assert session.created_at == datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
    assert session.my_role is None


def test_unknown_fields_are_kept_out_of_the_way():
    session = Session.from_json({**SESSION, "folder": {"id": 3}, "instructions": None})

    assert session.raw["folder"] == {"id": 3}
    assert "folder" not in repr(session)
    assert session == Session.from_json(SESSION | {"instructions": None})  # raw not compared


def test_a_message_knows_its_stream_author_and_branch():
    message = Message.from_json(MESSAGE, created=True)

    assert message.stream_id == "st-1"
    assert message.author is not None
    assert message.author.username == "kim"
    assert message.siblings is not None
    assert (message.siblings.index, message.siblings.count) == (1, 2)
    assert message.version == 2
    assert message.created is True
    assert Message.from_json({**MESSAGE, "metadata": {}}).stream_id is None


def test_a_history_page():
    page = HistoryPage.from_json(
        {
            "session_id": SESSION["session_id"],
            "title": "RAG",
            "messages": [MESSAGE],
            "has_more_before": True,
            "has_more_after": False,
            "oldest_id": 123,
            "newest_id": 123,
        }
    )
    assert page.messages[0].content == "RAG가 무엇인가요?"
    assert page.has_more_before is True


def test_a_claim_and_a_document():
    claim = Claim.from_json(
        {
            "id": 2,
            "owner_id": 7,
            "filename": "rag.pdf",
            "file_type": "PDF",
            "file_size": 1024,
            "download_url": "http://testserver/api/documents/2/file/",
            "qdrant_collection": "documents",
            "lease_id": "5b0c0000-0000-0000-0000-000000000000",
            "lease_expires_at": "2025-01-15T10:40:00+00:00",
            "attempt": 1,
        }
    )
    assert claim.lease_expires_at.tzinfo is not None
    document = Document.from_json(
        {
            "id": 2,
            "filename": "rag.pdf",
            "file_type": "PDF",
            "file_size": 1024,
            "page_count": 10,
            "chunk_count": 45,
            "uploaded_at": "2025-01-15T10:30:00Z",
            "processed": True,
            "status": "processed",
            "qdrant_collection": "documents",
            "processing_error": "",
            "processed_at": "2025-01-15T10:39:00Z",
        }
    )
    assert document.chunk_count == 45
    assert document.processed_at is not None


def test_a_key_grant_never_shows_its_key():
    grant = KeyGrant.from_json(
        {
            "user_id": 1,
            "api_key": "sk-proj-secret",
            "key_id": 4,
            "provider": "openai",
            "label": "work",
            "base_url": "",
        }
    )
    assert grant.api_key == "sk-proj-secret"
    assert "sk-proj-secret" not in repr(grant)
    assert "api_key" not in grant.raw


def test_a_key_grant_of_the_original_route_shape():
    grant = KeyGrant.from_json({"user_id": 1, "api_key": "sk-x"})
    assert (grant.key_id, grant.provider, grant.base_url) == (None, "openai", "")


def test_money_is_decimal():
    record = UsageRecord.from_json(
        {
            "id": 1,
            "user_id": 1,
            "key_id": None,
            "session_id": None,
            "message_id": None,
            "provider": "openai",
            "model": "gpt-4o-mini",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cost": "0.000012",
            "cost_source": "price_table",
            "idempotency_key": "run-1",
            "created_at": "2025-01-15T10:31:00Z",
        },
        created=False,
    )
    assert record.cost == Decimal("0.000012")
    assert record.created is False

    budget = Budget.from_json(
        {
            "allowed": True,
            "month": "2025-01",
            "user": {
                "token_limit": None,
                "tokens_used": 15,
                "tokens_remaining": None,
                "cost_limit": "10.000000",
                "cost_used": "0.000012",
                "cost_remaining": "9.999988",
            },
            "key": None,
        }
    )
    assert budget.user.cost_remaining == Decimal("9.999988")
    assert budget.user.token_limit is None
    assert budget.key is None
