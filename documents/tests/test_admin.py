from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:documents_documentmetadata_changelist")


def test_changelist_filters_and_searches_in_constant_queries(
    staff_client, django_assert_max_num_queries
):
    DocumentFactory.create_batch(5, failed=True)
    wanted = DocumentFactory(filename="needle-report.pdf")

    with django_assert_max_num_queries(12):
        response = staff_client.get(CHANGELIST, {"status__exact": "pending", "q": "needle"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "needle-report.pdf" in html
    assert wanted.user.email in html
    assert staff_client.get(CHANGELIST, {"q": wanted.user.email}).status_code == 200
    change = reverse("admin:documents_documentmetadata_change", args=[wanted.pk])
    assert staff_client.get(change).status_code == 200


def test_requeue_action_goes_through_the_service(staff_client):
    stuck = DocumentFactory(processing=True, attempts=3)
    done = DocumentFactory(processed_ok=True)

    response = staff_client.post(
        CHANGELIST, {"action": "requeue", "_selected_action": [stuck.pk, done.pk]}, follow=True
    )

    assert response.status_code == 200
    stuck.refresh_from_db()
    done.refresh_from_db()
    assert (stuck.status, stuck.attempts, stuck.lease_id) == ("pending", 0, None)
    assert done.status == DocumentStatus.PROCESSED  # refused, reported as skipped
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [
        "Requeued 1 document(s).",
        f"Skipped {done.pk}: A processed document cannot be requeued.",
    ]


def test_mark_failed_action(staff_client):
    pending = DocumentFactory()

    staff_client.post(CHANGELIST, {"action": "mark_failed", "_selected_action": [pending.pk]})

    pending.refresh_from_db()
    assert pending.status == DocumentStatus.FAILED
    assert pending.processing_error.startswith("Marked failed by")


def test_release_expired_leases_action(staff_client):
    expired = DocumentFactory(processing=True)
    live = DocumentFactory(processing=True)
    DocumentMetadata.objects.filter(pk=expired.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = staff_client.post(
        CHANGELIST,
        {"action": "release_expired_leases", "_selected_action": [live.pk]},
        follow=True,
    )

    assert "1 requeued, 0 failed" in response.content.decode()
    expired.refresh_from_db()
    live.refresh_from_db()
    assert (expired.status, live.status) == ("pending", "processing")


def test_admin_delete_records_the_deletion(staff_client):
    document = DocumentFactory()

    staff_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"},
    )

    assert not DocumentMetadata.objects.exists()
    assert DocumentDeletion.objects.get().document_id == document.pk
