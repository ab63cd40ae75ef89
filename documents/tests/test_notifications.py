"""A finished document notifies its owner (``notifications``), in the same
transaction as the status change, and both go out on the owner's stream."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from documents import services
from documents.models import DocumentMetadata, DocumentStatus
from documents.tests.factories import DocumentFactory
from notifications.models import Notification, NotificationKind
from notifications.serializers import NotificationSerializer

pytestmark = pytest.mark.django_db


def _report(document: DocumentMetadata, status: str, **fields) -> DocumentMetadata:
    return services.document_report_status(
        document_id=document.pk, lease_id=document.lease_id, status=status, **fields
    )


def test_a_processed_report_notifies_the_owner_and_publishes_both_events(
    user, other_user, user_events, django_capture_on_commit_callbacks
):
    document = DocumentFactory(user=user, processing=True, filename="report.pdf")
    events, stranger = user_events(user), user_events(other_user)

    with django_capture_on_commit_callbacks(execute=True):
        _report(document, "processed", chunk_count=12)

    notification = Notification.objects.get()
    assert notification.user_id == user.pk
    assert notification.kind == NotificationKind.DOCUMENT_PROCESSED
    assert notification.title == "report.pdf is ready"
    assert notification.body == ""
    assert notification.data == {"document_id": document.pk}
    assert notification.read_at is None
    status, created = events.drain()
    assert (status["type"], status["document"]["status"]) == ("document.status", "processed")
    assert created == {
        "type": "notification.created",
        "notification": NotificationSerializer(notification).data,
        "unread_count": 1,
    }
    assert stranger.drain() == []


def test_a_failed_report_notifies_the_owner_with_the_error(
    user, user_events, django_capture_on_commit_callbacks
):
    document = DocumentFactory(user=user, processing=True, filename="scan.pdf")
    events = user_events(user)

    with django_capture_on_commit_callbacks(execute=True):
        _report(document, "failed", error="The PDF has no text layer (a scan?).")

    notification = Notification.objects.get()
    assert notification.kind == NotificationKind.DOCUMENT_FAILED
    assert notification.title == "scan.pdf could not be processed"
    assert notification.body == "The PDF has no text layer (a scan?)."
    assert notification.data == {"document_id": document.pk}
    assert [event["type"] for event in events.drain()] == [
        "document.status",
        "notification.created",
    ]


def _report_in_a_change_that_fails(document: DocumentMetadata, status: str, **fields) -> None:
    with transaction.atomic():
        _report(document, status, **fields)
        raise RuntimeError("the caller's transaction failed after the report")


@pytest.mark.parametrize(
    ("status", "fields"), [("processed", {"chunk_count": 3}), ("failed", {"error": "boom"})]
)
def test_a_rolled_back_report_leaves_no_notification_and_publishes_nothing(
    user, user_events, django_capture_on_commit_callbacks, status, fields
):
    document = DocumentFactory(user=user, processing=True)
    events = user_events(user)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        _report_in_a_change_that_fails(document, status, **fields)

    assert not Notification.objects.exists()
    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING
    assert events.drain() == []


def test_a_notification_that_cannot_be_written_fails_the_report(user, monkeypatch):
    document = DocumentFactory(user=user, processing=True)

    def refuse(**kwargs):
        raise RuntimeError("the notifications table is unavailable")

    monkeypatch.setattr("documents.services.notification_create", refuse)
    with pytest.raises(RuntimeError):
        _report(document, "processed", chunk_count=3)

    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING  # report again: nothing was lost


def test_heartbeats_and_requeues_notify_no_one(user):
    document = DocumentFactory(user=user, processing=True)

    _report(document, "processing")
    services.document_requeue(document_id=document.pk)
    failed = DocumentFactory(user=user, failed=True)
    services.document_reprocess(user=user, document_id=failed.pk)

    assert not Notification.objects.exists()


def test_a_document_out_of_attempts_notifies_without_naming_the_worker(user, settings):
    settings.DOCUMENT_MAX_ATTEMPTS = 1
    document = DocumentFactory(
        user=user, processing=True, attempts=1, lease_owner="svc-prod/gpu-node-7:4711"
    )
    DocumentMetadata.objects.filter(pk=document.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    services.document_requeue_expired()

    notification = Notification.objects.get()
    assert notification.kind == NotificationKind.DOCUMENT_FAILED
    assert notification.body == "Processing did not finish within the lease in 1 attempt(s)."
    assert "gpu-node" not in notification.body


def test_an_operator_marking_a_document_failed_notifies_the_owner(user):
    document = DocumentFactory(user=user)

    services.document_mark_failed(document_id=document.pk, error="Unsupported scan.")

    notification = Notification.objects.get()
    assert (notification.kind, notification.body) == ("document.failed", "Unsupported scan.")
