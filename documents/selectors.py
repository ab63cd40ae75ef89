"""Reads of the documents domain, scoped to the acting user or service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, QuerySet

from core.batches import iter_by_pk
from documents.errors import DocumentNotFoundError
from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus
from users.models import User
from users.principals import Principal


def document_list(
    *,
    user: User,
    status: str | None = None,
    file_type: str | None = None,
    search: str | None = None,
) -> QuerySet[DocumentMetadata]:
    """The user's documents, newest first, optionally filtered (one query per page)."""
    documents = DocumentMetadata.objects.filter(user=user)
    if status:
        documents = documents.filter(status=status)
    if file_type:
        documents = documents.filter(file_type=file_type)
    if search:
        documents = documents.filter(filename__icontains=search)
    return documents.order_by("-uploaded_at", "-id")


def document_get(*, user: User, document_id: int) -> DocumentMetadata:
    """The user's own document; someone else's is a 404, never a 403."""
    document = DocumentMetadata.objects.filter(pk=document_id, user=user).first()
    if document is None:
        raise DocumentNotFoundError()
    return document


def document_get_for_file(*, actor: Principal, document_id: int) -> DocumentMetadata:
    """The document whose file ``actor`` may download.

    Owners get their own; a service principal (already checked for the
    ``documents:process`` scope by the view's permission) gets any.
    """
    if actor.is_service:
        document = DocumentMetadata.objects.filter(pk=document_id).first()
        if document is None:
            raise DocumentNotFoundError()
        return document
    return document_get(user=actor, document_id=document_id)


def document_iter_owned(*, user_id: int, batch_size: int = 500) -> Iterator[DocumentMetadata]:
    """Every document of ``user_id``, oldest first, read ``batch_size`` at a time."""
    return iter_by_pk(DocumentMetadata.objects.filter(user_id=user_id), batch_size=batch_size)


def document_find_duplicate(*, user_id: int, sha256: str) -> DocumentMetadata | None:
    return DocumentMetadata.objects.filter(user_id=user_id, sha256=sha256).only("id").first()


def document_deletion_list(*, since: datetime | None = None) -> QuerySet[DocumentDeletion]:
    """Deletions after ``since`` (exclusive), oldest first."""
    deletions = DocumentDeletion.objects.all()
    if since is not None:
        deletions = deletions.filter(deleted_at__gt=since)
    return deletions.order_by("deleted_at", "id")


def document_status_counts(*, user: User) -> dict[str, int]:
    """How many of the user's documents are in each status (every status listed):
    one grouped count over the user's rows."""
    counts = dict.fromkeys(DocumentStatus.values, 0)
    rows = (
        DocumentMetadata.objects.filter(user=user)
        .values_list("status")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts
