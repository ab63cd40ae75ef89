"""Writes of the documents domain: upload, delete, and the processing protocol.

Every status change publishes ``document.status`` to the owner's stream once
its transaction commits; a deletion publishes ``document.deleted``
(``documents.events``). The state machine lives here and nowhere else:

=================  ==========================  ===============================
from               to                          by
=================  ==========================  ===============================
(new)              pending                     ``document_upload``
pending            processing (lease, +1 try)  ``document_claim_next``
processing         processing (lease renewed)  ``document_report_status``
processing         processed / failed          ``document_report_status``
processing         pending / failed (expiry)   ``document_requeue_expired``
failed             pending (tries reset)       ``document_reprocess`` (owner)
failed/processing  pending (tries reset)       ``document_requeue`` (operator)
pending/processing failed                      ``document_mark_failed`` (operator)
=================  ==========================  ===============================

A document that becomes processed or failed also notifies its owner
(``notifications.services.notification_create``), in the same transaction.
An upload, a finished document and a deletion also write their outbox event
there (``documents.events``, ``outbox.services.outbox_emit``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from documents import events, selectors
from documents.errors import (
    DocumentNotFoundError,
    DuplicateDocumentError,
    InvalidTransitionError,
    LeaseExpiredError,
)
from documents.inspection import CHUNK_SIZE, EXTENSION_OF_TYPE, clean_filename, inspect_upload
from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus
from notifications.models import NotificationKind
from notifications.services import notification_create
from users.models import User

logger = logging.getLogger(__name__)

Status = DocumentStatus
# Every column a state change may touch; saved together so no change is half-written.
_STATE_FIELDS = [
    "status",
    "processed",
    "processing_error",
    "processed_at",
    "attempts",
    "lease_id",
    "lease_owner",
    "lease_expires_at",
    "chunk_count",
    "page_count",
    "updated_at",
]


# --- Upload and delete --------------------------------------------------------


def document_upload(*, user: User, file: UploadedFile) -> DocumentMetadata:
    """Check, store and record an uploaded file; publish ``pending``.

    Nothing is stored when a check fails (``documents.inspection``): empty
    (400), over ``DOCUMENT_MAX_UPLOAD_SIZE`` (413), unsupported or mismatched
    type (415), unreadable content (400); nor when this user already uploaded
    identical content (409 naming it). The file goes to the default storage under a generated
    name before the row is written; if the row cannot be written, the file is
    deleted again. ``file.sha256`` is used when the upload handler computed it.
    """
    filename = clean_filename(file.name or "")
    inspection = inspect_upload(file, filename=filename)
    sha256 = getattr(file, "sha256", "") or _sha256_of(file)
    _ensure_not_duplicate(user_id=user.pk, sha256=sha256)

    name = f"documents/{user.pk}/{uuid.uuid4().hex}{EXTENSION_OF_TYPE[inspection.file_type]}"
    stored_name = default_storage.save(name, file)
    try:
        with transaction.atomic():
            document = DocumentMetadata.objects.create(
                user=user,
                filename=filename,
                file_path=stored_name,
                file_size=inspection.size,
                file_type=inspection.file_type,
                sha256=sha256,
                page_count=inspection.page_count,
                qdrant_collection=settings.DOCUMENT_QDRANT_COLLECTION,
            )
            events.document_uploaded(document)
    except Exception as exc:
        default_storage.delete(stored_name)
        if isinstance(exc, IntegrityError):
            # Lost a race with an identical upload: the constraint decided.
            _ensure_not_duplicate(user_id=user.pk, sha256=sha256)
        raise
    return document


def _sha256_of(file: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks(CHUNK_SIZE):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def _ensure_not_duplicate(*, user_id: int, sha256: str) -> None:
    existing = selectors.document_find_duplicate(user_id=user_id, sha256=sha256)
    if existing is not None:
        raise DuplicateDocumentError(
            f"You already uploaded this content as document {existing.pk}.",
            existing_document_id=existing.pk,
        )


@transaction.atomic
def document_delete(*, user: User, document_id: int) -> DocumentDeletion:
    """Delete the user's document and record the deletion for the AI service.

    The stored file is deleted only after the commit (a rollback never loses
    it); ``document.deleted`` is published then too. A worker still holding a
    lease on it gets 404 on its next report.
    """
    document = _locked(document_id, user=user)
    deletion = DocumentDeletion.objects.create(
        document_id=document.pk,
        owner_id=document.user_id,
        filename=document.filename,
        qdrant_collection=document.qdrant_collection,
    )
    document.delete()
    stored_name = document.file_path
    transaction.on_commit(lambda: default_storage.delete(stored_name), robust=True)
    events.document_deleted(owner_id=deletion.owner_id, document_id=deletion.document_id)
    return deletion


@transaction.atomic
def document_delete_all_for_user(*, user: User) -> int:
    """Delete every document of ``user`` as ``document_delete`` does, one by one
    in a single transaction; for removing an account. Returns how many."""
    ids = list(DocumentMetadata.objects.filter(user=user).values_list("pk", flat=True))
    for document_id in ids:
        document_delete(user=user, document_id=document_id)
    return len(ids)


# --- Storage housekeeping -----------------------------------------------------

DOCUMENT_FILES_ROOT = "documents"  # every upload is stored under it (``document_upload``)
_SWEEP_BATCH = 500


def document_orphan_files_sweep(*, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Delete stored files under ``documents/`` that no document references and
    that were last modified more than ``older_than`` ago; returns their names.

    An upload stores its file before its row commits, so a process killed in
    between leaves the file behind. The grace period spares uploads still in
    flight; a file a row references is never touched, whatever its age. Only
    the storage API is used (``listdir``, ``get_modified_time``, ``delete``),
    so any Django storage that lists directories works (local disk, S3). A
    file that disappears meanwhile (its document being deleted) is skipped.
    With ``dry_run`` nothing is deleted.
    """
    cutoff = timezone.now() - older_than
    removed: list[str] = []
    for names in _stored_files(DOCUMENT_FILES_ROOT):
        referenced = set(
            DocumentMetadata.objects.filter(file_path__in=names).values_list("file_path", flat=True)
        )
        for name in names:
            if name in referenced or not _modified_before(name, cutoff):
                continue
            if not dry_run:
                default_storage.delete(name)
                logger.info("deleted orphan document file %s", name)
            removed.append(name)
    return removed


def _stored_files(directory: str) -> Iterator[list[str]]:
    """The names of the files under ``directory``, recursively, in batches."""
    try:
        directories, files = default_storage.listdir(directory)
    except FileNotFoundError:  # nothing uploaded yet, or removed meanwhile
        return
    names = [f"{directory}/{name}" for name in files]
    for start in range(0, len(names), _SWEEP_BATCH):
        yield names[start : start + _SWEEP_BATCH]
    for subdirectory in directories:
        yield from _stored_files(f"{directory}/{subdirectory}")


def _modified_before(name: str, cutoff: datetime) -> bool:
    try:
        return default_storage.get_modified_time(name) < cutoff
    except FileNotFoundError:
        return False


# --- Processing protocol ------------------------------------------------------


def document_claim_next(*, worker: str) -> DocumentMetadata | None:
    """Lease the oldest pending document to ``worker``; None when there is none.

    Expired leases are released first (``document_requeue_expired``), in the
    same transaction. On PostgreSQL the candidate is locked with ``FOR UPDATE
    SKIP LOCKED``, so concurrent claimers take different documents without
    waiting for each other; on SQLite the IMMEDIATE transaction serialises
    them. Counts an attempt and publishes ``processing``.
    """
    with transaction.atomic():
        document_requeue_expired()
        document = (
            DocumentMetadata.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING)
            .order_by("uploaded_at", "id")
            .first()
        )
        if document is None:
            return None
        document.status = Status.PROCESSING
        document.attempts += 1  # the row is locked: no lost update
        document.lease_id = uuid.uuid4()
        document.lease_owner = worker[:200]
        document.lease_expires_at = _lease_end()
        document.save(update_fields=_STATE_FIELDS)
        events.document_status(document)
    return document


@transaction.atomic
def document_report_status(
    *,
    document_id: int,
    lease_id: uuid.UUID,
    status: str,
    chunk_count: int | None = None,
    page_count: int | None = None,
    error: str = "",
) -> DocumentMetadata:
    """A worker's report on the document it leased; the row is locked meanwhile.

    ``processing`` renews the lease (a heartbeat); ``processed`` (with
    ``chunk_count``) and ``failed`` (with ``error``, final until the owner
    asks to reprocess) finish the job; ``StatusReportInputSerializer`` checks
    that shape. Raises ``InvalidTransitionError`` (409) unless the document
    is processing and ``LeaseExpiredError`` (409) unless ``lease_id`` is its
    current, unexpired lease; nothing changes then. Two reports on one lease
    are serialised by the lock: the second sees the first's outcome.
    """
    document = _locked(document_id)
    _ensure_current_lease(document, lease_id=lease_id)
    if status == Status.PROCESSING:
        document.lease_expires_at = _lease_end()
        document.save(update_fields=["lease_expires_at", "updated_at"])
        return document
    if status == Status.PROCESSED:
        if chunk_count is None:
            raise ValueError("a processed report carries chunk_count")
        document.chunk_count = chunk_count
        if page_count is not None:
            document.page_count = page_count
        _set_status(document, Status.PROCESSED)
    else:
        _set_status(document, Status.FAILED, error=error)
    return document


def _ensure_current_lease(document: DocumentMetadata, *, lease_id: uuid.UUID) -> None:
    if document.status != Status.PROCESSING:
        raise InvalidTransitionError(
            f"The document is {document.status}; only a document being processed accepts reports.",
            current_status=document.status,
        )
    expires_at = document.lease_expires_at
    current = str(document.lease_id) == str(lease_id)
    if not current or expires_at is None or expires_at <= timezone.now():
        raise LeaseExpiredError(current_status=document.status)


@dataclass(frozen=True)
class RequeueResult:
    requeued: int
    failed: int


@transaction.atomic
def document_requeue_expired(*, limit: int = 500) -> RequeueResult:
    """Release expired leases: back to pending, or failed after the last attempt.

    A document fails once ``attempts`` has reached ``DOCUMENT_MAX_ATTEMPTS``.
    Rows locked by another transaction (a report in flight) are skipped; they
    are picked up by the next call. Publishes each change.
    """
    expired = list(
        DocumentMetadata.objects.select_for_update(skip_locked=True)
        .filter(status=Status.PROCESSING, lease_expires_at__lte=timezone.now())
        .order_by("lease_expires_at", "id")[:limit]
    )
    failed = 0
    for document in expired:
        worker = document.lease_owner or "unknown"
        if document.attempts >= settings.DOCUMENT_MAX_ATTEMPTS:
            failed += 1
            _set_status(
                document,
                Status.FAILED,
                # Shown to the owner: the worker's name stays in the log line below.
                error=f"Processing did not finish within the lease in {document.attempts} "
                "attempt(s).",
            )
        else:
            _set_status(document, Status.PENDING)
        logger.warning(
            "document %s: lease of %s expired (attempt %s), now %s",
            document.pk,
            worker,
            document.attempts,
            document.status,
        )
    return RequeueResult(requeued=len(expired) - failed, failed=failed)


# --- Retry and operator actions -----------------------------------------------


@transaction.atomic
def document_reprocess(*, user: User, document_id: int) -> DocumentMetadata:
    """The owner retries a failed document: pending again, attempts reset."""
    document = _locked(document_id, user=user)
    _require_status(document, {Status.FAILED}, "reprocessed")
    document.attempts = 0
    _set_status(document, Status.PENDING)
    return document


@transaction.atomic
def document_requeue(*, document_id: int) -> DocumentMetadata:
    """Operator: put a failed or stuck (processing) document back in the queue.

    Attempts are reset; the next report of a worker that held the lease is a 409.
    """
    document = _locked(document_id)
    _require_status(document, {Status.FAILED, Status.PROCESSING}, "requeued")
    document.attempts = 0
    _set_status(document, Status.PENDING)
    return document


@transaction.atomic
def document_mark_failed(*, document_id: int, error: str) -> DocumentMetadata:
    """Operator: give up on a pending or processing document."""
    if not error.strip():
        raise ValidationError({"error": "Give the reason."})
    document = _locked(document_id)
    _require_status(document, {Status.PENDING, Status.PROCESSING}, "marked failed")
    _set_status(document, Status.FAILED, error=error)
    return document


# --- Helpers ------------------------------------------------------------------


def _locked(document_id: int, *, user: User | None = None) -> DocumentMetadata:
    """The document, row-locked until the transaction ends (the user's own, if given)."""
    documents = DocumentMetadata.objects.select_for_update()
    if user is not None:
        documents = documents.filter(user=user)
    document = documents.filter(pk=document_id).first()
    if document is None:
        raise DocumentNotFoundError()
    return document


def _require_status(document: DocumentMetadata, allowed: set[str], action: str) -> None:
    if document.status not in allowed:
        raise InvalidTransitionError(
            f"A {document.status} document cannot be {action}.", current_status=document.status
        )


def _set_status(document: DocumentMetadata, status: str, *, error: str = "") -> None:
    """Leave processing (or any state) for ``status``, releasing the lease; save,
    publish, and notify the owner of a finished (processed or failed) document."""
    document.status = status
    document.processed = status == Status.PROCESSED
    document.processed_at = timezone.now() if status == Status.PROCESSED else None
    document.processing_error = error
    document.lease_id = None
    document.lease_owner = ""
    document.lease_expires_at = None
    document.save(update_fields=_STATE_FIELDS)
    events.document_status(document)
    if status in (Status.PROCESSED, Status.FAILED):
        _notify_owner(document)


def _notify_owner(document: DocumentMetadata) -> None:
    """The owner's notification of a finished document; a failure's body is its
    ``processing_error``, which the owner already sees (the REST detail,
    ``document.status``): the worker's report, the lease-expiry text above, or
    the operator's reason."""
    if document.status == Status.PROCESSED:
        kind, title = NotificationKind.DOCUMENT_PROCESSED, f"{document.filename} is ready"
    else:
        kind = NotificationKind.DOCUMENT_FAILED
        title = f"{document.filename} could not be processed"
    notification_create(
        user_id=document.user_id,
        kind=kind,
        title=title,
        body=document.processing_error,
        data={"document_id": document.pk},
    )


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.DOCUMENT_LEASE_SECONDS)
