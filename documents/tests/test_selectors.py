from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from documents import selectors
from documents.errors import DocumentNotFoundError
from documents.models import FileType
from documents.tests.factories import DocumentDeletionFactory, DocumentFactory
from users.authentication import ServicePrincipal
from users.tests.factories import service_token_create

pytestmark = pytest.mark.django_db


def _ids(queryset) -> list[int]:
    return [document.pk for document in queryset]


def test_document_list_is_the_users_own_newest_first(user, other_user):
    now = timezone.now()
    old = DocumentFactory(user=user, uploaded_at=now - timedelta(days=2))
    new = DocumentFactory(user=user, uploaded_at=now)
    DocumentFactory(user=other_user)

    assert _ids(selectors.document_list(user=user)) == [new.pk, old.pk]


def test_document_list_filters(user):
    pdf = DocumentFactory(user=user, filename="Annual Report.pdf", processed_ok=True)
    notes = DocumentFactory(user=user, filename="notes.md", file_type=FileType.MD)
    failed = DocumentFactory(user=user, filename="report-draft.txt", failed=True)

    assert _ids(selectors.document_list(user=user, status="processed")) == [pdf.pk]
    assert _ids(selectors.document_list(user=user, file_type=FileType.MD)) == [notes.pk]
    assert set(_ids(selectors.document_list(user=user, search="REPORT"))) == {pdf.pk, failed.pk}
    assert _ids(selectors.document_list(user=user, search="report", status="failed")) == [failed.pk]


def test_document_get_hides_other_users_documents(user, other_user):
    mine = DocumentFactory(user=user)
    theirs = DocumentFactory(user=other_user)

    assert selectors.document_get(user=user, document_id=mine.pk) == mine
    with pytest.raises(DocumentNotFoundError):
        selectors.document_get(user=user, document_id=theirs.pk)


def test_document_get_for_file_lets_a_service_read_any_document(user, other_user):
    theirs = DocumentFactory(user=other_user)
    token, _ = service_token_create(scopes=["documents:process"])

    service = ServicePrincipal(token)

    assert selectors.document_get_for_file(actor=service, document_id=theirs.pk) == theirs
    with pytest.raises(DocumentNotFoundError):
        selectors.document_get_for_file(actor=user, document_id=theirs.pk)
    with pytest.raises(DocumentNotFoundError):
        selectors.document_get_for_file(actor=service, document_id=theirs.pk + 1000)


def test_document_find_duplicate_is_per_user(user, other_user):
    document = DocumentFactory(user=user)

    assert selectors.document_find_duplicate(user_id=user.pk, sha256=document.sha256) == document
    assert selectors.document_find_duplicate(user_id=other_user.pk, sha256=document.sha256) is None


def test_document_deletion_list_after_since_oldest_first():
    now = timezone.now()
    early = DocumentDeletionFactory(deleted_at=now - timedelta(hours=2))
    boundary = DocumentDeletionFactory(deleted_at=now - timedelta(hours=1))
    late = DocumentDeletionFactory(deleted_at=now)

    assert _ids(selectors.document_deletion_list()) == [early.pk, boundary.pk, late.pk]
    # Strictly after ``since``.
    assert _ids(selectors.document_deletion_list(since=boundary.deleted_at)) == [late.pk]
