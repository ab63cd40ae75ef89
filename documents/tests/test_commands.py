from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from documents.models import DocumentMetadata
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db


def test_requeue_expired_documents_command(settings, capsys):
    settings.DOCUMENT_MAX_ATTEMPTS = 2
    retry = DocumentFactory(processing=True, attempts=1)
    give_up = DocumentFactory(processing=True, attempts=2)
    DocumentMetadata.objects.update(lease_expires_at=timezone.now() - timedelta(minutes=1))

    call_command("requeue_expired_documents")

    assert capsys.readouterr().out.strip() == "Requeued 1, failed 1."
    retry.refresh_from_db()
    give_up.refresh_from_db()
    assert (retry.status, give_up.status) == ("pending", "failed")
