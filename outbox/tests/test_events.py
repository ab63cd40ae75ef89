"""Which changes write which events: type, aggregate, owner and payload (the
socket event's JSON) for each emit point."""

from __future__ import annotations

import pytest

from chat_history import services as chat
from chat_history.models import Role
from chat_history.tests.factories import ChatSessionFactory, add_member
from documents import services as documents
from documents.errors import DuplicateDocumentError
from documents.tests.factories import DocumentFactory, upload
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _events() -> list[tuple[str, str, str, int]]:
    return list(
        OutboxEvent.objects.order_by("id").values_list(
            "type", "aggregate_type", "aggregate_id", "user_id"
        )
    )


def _socket_event(published, type_: str) -> dict:
    return next(event for _, event in published if event["type"] == type_)


def test_a_sessions_life_writes_session_and_message_events(
    user, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session = chat.chat_session_create(actor=user, title="Plans")
        message = chat.chat_message_create(
            actor=user, session=session, role=Role.USER, content="a"
        )[0]
        chat.chat_message_update(actor=user, message=message, content="b")
        chat.chat_message_delete(actor=user, message=message)
        chat.chat_message_restore(actor=user, message=message)
        chat.chat_session_delete(actor=user, session=session)

    key = str(session.session_id)
    assert _events() == [
        ("session.created", "session", key, user.pk),
        ("message.created", "session", key, user.pk),
        ("message.updated", "session", key, user.pk),
        ("message.deleted", "session", key, user.pk),
        ("message.restored", "session", key, user.pk),
        ("session.deleted", "session", key, user.pk),
    ]
    stored = {event.type: event.payload for event in OutboxEvent.objects.all()}
    for type_ in ("message.updated", "message.deleted", "message.restored", "session.deleted"):
        assert stored[type_] == _socket_event(published, type_)
    assert stored["session.created"]["session"]["session_id"] == key
    assert stored["message.deleted"] == {
        "type": "message.deleted",
        "session_id": key,
        "message_id": message.pk,
    }


def test_a_members_message_in_a_shared_session_is_the_owners_event(user, other_user):
    session = ChatSessionFactory(user=user)
    add_member(session, other_user)

    chat.chat_message_create(actor=other_user, session=session, role=Role.USER, content="hi")

    event = OutboxEvent.objects.get(type="message.created")
    assert (event.user_id, event.aggregate_id) == (user.pk, str(session.session_id))
    assert event.payload["message"]["author"]["user_id"] == other_user.pk


def test_a_documents_life_writes_document_events(
    user, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = documents.document_upload(user=user, file=upload("notes.txt", b"Hello, RAG."))
        claimed = documents.document_claim_next(worker="w")
        assert claimed is not None
        documents.document_report_status(
            document_id=document.pk, lease_id=claimed.lease_id, status="processed", chunk_count=3
        )
        documents.document_delete(user=user, document_id=document.pk)

    key = str(document.pk)
    assert _events() == [  # claiming (processing) goes to sockets only
        ("document.uploaded", "document", key, user.pk),
        ("document.processed", "document", key, user.pk),
        ("document.deleted", "document", key, user.pk),
    ]
    uploaded, processed, deleted = OutboxEvent.objects.order_by("id")
    assert uploaded.payload["type"] == "document.status"
    assert uploaded.payload["document"]["status"] == "pending"
    assert processed.payload["document"]["status"] == "processed"
    assert processed.payload["document"]["chunk_count"] == 3
    assert deleted.payload == {"type": "document.deleted", "document_id": document.pk}
    assert deleted.payload == _socket_event(published, "document.deleted")


def test_a_failed_document_writes_document_failed(user):
    document = DocumentFactory(user=user)

    documents.document_mark_failed(document_id=document.pk, error="Unreadable scan.")

    event = OutboxEvent.objects.get()
    assert (event.type, event.aggregate_id, event.user_id) == (
        "document.failed",
        str(document.pk),
        user.pk,
    )
    assert event.payload["document"]["processing_error"] == "Unreadable scan."


def test_a_refused_upload_writes_no_event(user):
    documents.document_upload(user=user, file=upload("notes.txt", b"Hello, RAG."))

    with pytest.raises(DuplicateDocumentError):
        documents.document_upload(user=user, file=upload("again.txt", b"Hello, RAG."))

    assert OutboxEvent.objects.filter(type="document.uploaded").count() == 1
