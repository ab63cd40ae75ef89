from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from documents import services
from documents.errors import (
    CorruptFileError,
    DocumentNotFoundError,
    DuplicateDocumentError,
    EncryptedPdfError,
    FileTooLargeError,
    InvalidTransitionError,
    LeaseExpiredError,
    UnsupportedFileTypeError,
)
from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus, FileType
from documents.serializers import DocumentDetailSerializer
from documents.tests.factories import DocumentFactory, docx_bytes, pdf_bytes, upload
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXT = "# 제목\n\nRAG는 검색 증강 생성입니다. Ünïcödé is fine.\n".encode()


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _state(document: DocumentMetadata) -> dict:
    document.refresh_from_db()
    return {
        field: getattr(document, field)
        for field in ["status", "processed", "attempts", "lease_id", "lease_expires_at",
                      "chunk_count", "processing_error", "updated_at"]
    }  # fmt: skip


def _expire_lease(document: DocumentMetadata) -> None:
    DocumentMetadata.objects.filter(pk=document.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


# --- Upload: accepted types ---------------------------------------------------


def test_upload_pdf_stores_file_under_generated_name_and_counts_pages(user, settings):
    content = pdf_bytes(pages=3)

    document = services.document_upload(user=user, file=upload("Report 2024.pdf", content))

    assert document.status == DocumentStatus.PENDING
    assert document.processed is False
    assert (document.file_type, document.page_count) == (FileType.PDF, 3)
    assert document.filename == "Report 2024.pdf"
    assert document.file_size == len(content)
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    assert document.qdrant_collection == settings.DOCUMENT_QDRANT_COLLECTION
    assert document.file_path.startswith(f"documents/{user.pk}/")
    assert document.file_path.endswith(".pdf")
    assert "Report" not in document.file_path
    with default_storage.open(document.file_path, "rb") as stored:
        assert stored.read() == content


@pytest.mark.parametrize(
    ("name", "file_type"),
    [("notes.txt", FileType.TXT), ("README.md", FileType.MD), ("guide.Markdown", FileType.MD)],
)
def test_upload_accepts_utf8_text_and_markdown(user, name, file_type):
    document = services.document_upload(user=user, file=upload(name, TEXT))

    assert document.file_type == file_type
    assert document.page_count == 0
    with default_storage.open(document.file_path, "rb") as stored:
        assert stored.read() == TEXT


def test_upload_accepts_docx(user):
    document = services.document_upload(user=user, file=upload("letter.DOCX", docx_bytes()))

    assert document.file_type == FileType.DOCX
    assert document.file_path.endswith(".docx")


def test_upload_cleans_the_display_name(user):
    raw = "C:\\Users\\kim\\re\u202eport\x07\t  final.txt"

    document = services.document_upload(user=user, file=upload(raw, TEXT))

    assert document.filename == "report final.txt"


# --- Upload: rejections (nothing stored) --------------------------------------


def _rejection_cases():
    encrypted = pdf_bytes()
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(encrypted)))
    writer.encrypt("secret")
    buffer = BytesIO()
    writer.write(buffer)
    return [
        pytest.param("empty.txt", b"", ValidationError, id="empty"),
        pytest.param("app.exe", b"MZ\x90\x00binary", UnsupportedFileTypeError, id="extension"),
        pytest.param("noextension", TEXT, UnsupportedFileTypeError, id="no-extension"),
        pytest.param("fake.txt", pdf_bytes(), UnsupportedFileTypeError, id="pdf-named-txt"),
        pytest.param("fake.pdf", TEXT, UnsupportedFileTypeError, id="text-named-pdf"),
        pytest.param("fake.docx", TEXT, UnsupportedFileTypeError, id="text-named-docx"),
        pytest.param("nul.txt", b"abc\x00def", UnsupportedFileTypeError, id="nul-bytes"),
        pytest.param("latin1.md", "caf\xe9".encode("latin-1"), UnsupportedFileTypeError, id="utf8"),
        pytest.param(
            "sheet.docx", docx_bytes(parts=("xl/workbook.xml",)), UnsupportedFileTypeError,
            id="zip-not-docx",
        ),
        pytest.param("broken.docx", b"PK\x03\x04" + b"\x00" * 64, CorruptFileError, id="bad-zip"),
        pytest.param("broken.pdf", b"%PDF-1.7\n" + b"garbage " * 50, CorruptFileError, id="pdf"),
        pytest.param("locked.pdf", buffer.getvalue(), EncryptedPdfError, id="encrypted-pdf"),
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "error"), _rejection_cases())
def test_upload_rejections_store_nothing(user, settings, name, content, error):
    with pytest.raises(error):
        services.document_upload(user=user, file=upload(name, content))

    assert not DocumentMetadata.objects.exists()
    assert stored_files(settings) == []


def test_upload_over_the_limit_is_refused(user, settings):
    settings.DOCUMENT_MAX_UPLOAD_SIZE = 100

    with pytest.raises(FileTooLargeError) as excinfo:
        services.document_upload(user=user, file=upload("big.txt", b"a" * 101))

    assert excinfo.value.status_code == 413
    assert excinfo.value.extra == {"max_size": 100}
    assert stored_files(settings) == []
    # Exactly at the limit is fine.
    services.document_upload(user=user, file=upload("edge.txt", b"a" * 100))


def test_duplicate_content_names_the_existing_document(user, other_user, settings):
    first = services.document_upload(user=user, file=upload("a.txt", TEXT))

    with pytest.raises(DuplicateDocumentError) as excinfo:
        services.document_upload(user=user, file=upload("renamed.md", TEXT))

    assert excinfo.value.status_code == 409
    assert excinfo.value.extra == {"existing_document_id": first.pk}
    assert len(stored_files(settings)) == 1
    # Another user may upload the same content.
    services.document_upload(user=other_user, file=upload("a.txt", TEXT))
    assert len(stored_files(settings)) == 2


def test_stored_file_is_removed_when_the_row_cannot_be_written(settings):
    unsaved_owner = UserFactory.build()

    with pytest.raises(ValueError, match="unsaved related object"):
        services.document_upload(user=unsaved_owner, file=upload("a.txt", TEXT))

    assert stored_files(settings) == []


@pytest.mark.postgres
def test_stored_file_is_removed_when_the_database_refuses_the_row(user, settings):
    from django.db import DataError

    settings.DOCUMENT_QDRANT_COLLECTION = "c" * 101  # longer than the column

    with pytest.raises(DataError):
        services.document_upload(user=user, file=upload("a.txt", TEXT))

    assert stored_files(settings) == []


# --- Delete -------------------------------------------------------------------


def test_delete_records_the_deletion_and_removes_the_file_after_commit(
    user, settings, django_capture_on_commit_callbacks
):
    document = services.document_upload(user=user, file=upload("gone.pdf", pdf_bytes()))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deletion = services.document_delete(user=user, document_id=document.pk)
        assert default_storage.exists(document.file_path)  # not before the commit
    for callback in callbacks:
        callback()

    assert not DocumentMetadata.objects.filter(pk=document.pk).exists()
    assert not default_storage.exists(document.file_path)
    assert stored_files(settings) == []
    assert (deletion.document_id, deletion.owner_id, deletion.filename) == (
        document.pk,
        user.pk,
        "gone.pdf",
    )
    assert deletion.qdrant_collection == document.qdrant_collection
    assert DocumentDeletion.objects.count() == 1


def test_delete_rolled_back_keeps_file_and_row(user, django_capture_on_commit_callbacks):
    document = services.document_upload(user=user, file=upload("kept.txt", TEXT))

    def delete_then_fail():
        with transaction.atomic():
            services.document_delete(user=user, document_id=document.pk)
            raise RuntimeError("a later step failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        delete_then_fail()

    assert callbacks == []
    assert DocumentMetadata.objects.filter(pk=document.pk).exists()
    assert default_storage.exists(document.file_path)
    assert not DocumentDeletion.objects.exists()


def test_delete_of_another_users_document_is_not_found(user, other_user):
    document = DocumentFactory(user=other_user)

    with pytest.raises(DocumentNotFoundError):
        services.document_delete(user=user, document_id=document.pk)

    assert DocumentMetadata.objects.filter(pk=document.pk).exists()


# --- Claim ----------------------------------------------------------------------


def test_claim_leases_the_oldest_pending_document(settings):
    now = timezone.now()
    newer = DocumentFactory(uploaded_at=now - timedelta(minutes=1))
    oldest = DocumentFactory(uploaded_at=now - timedelta(minutes=5))
    DocumentFactory(uploaded_at=now - timedelta(hours=1), processed_ok=True)
    DocumentFactory(uploaded_at=now - timedelta(hours=1), failed=True)

    claimed = services.document_claim_next(worker="svc/host-1")

    assert claimed.pk == oldest.pk
    oldest.refresh_from_db()
    assert oldest.status == DocumentStatus.PROCESSING
    assert oldest.attempts == 1
    assert oldest.lease_id is not None
    assert oldest.lease_owner == "svc/host-1"
    expected_end = timezone.now() + timedelta(seconds=settings.DOCUMENT_LEASE_SECONDS)
    assert abs((oldest.lease_expires_at - expected_end).total_seconds()) < 5
    assert services.document_claim_next(worker="w").pk == newer.pk
    assert services.document_claim_next(worker="w") is None


def test_claim_returns_none_when_nothing_is_pending():
    DocumentFactory(processing=True)
    DocumentFactory(processed_ok=True)

    assert services.document_claim_next(worker="w") is None


# --- Status reports -------------------------------------------------------------


def test_full_path_claim_heartbeat_processed():
    DocumentFactory(page_count=0)
    document = services.document_claim_next(worker="w")
    first_expiry = document.lease_expires_at

    renewed = services.document_report_status(
        document_id=document.pk, lease_id=document.lease_id, status="processing"
    )
    assert renewed.status == DocumentStatus.PROCESSING
    assert renewed.lease_expires_at >= first_expiry

    done = services.document_report_status(
        document_id=document.pk,
        lease_id=document.lease_id,
        status="processed",
        chunk_count=45,
        page_count=10,
    )

    done.refresh_from_db()
    assert done.status == DocumentStatus.PROCESSED
    assert done.processed is True
    assert (done.chunk_count, done.page_count) == (45, 10)
    assert done.processed_at is not None
    assert (done.lease_id, done.lease_expires_at, done.lease_owner) == (None, None, "")


def test_failure_then_owner_retry_then_success():
    document = DocumentFactory()
    lease = services.document_claim_next(worker="w").lease_id

    failed = services.document_report_status(
        document_id=document.pk, lease_id=lease, status="failed", error="Qdrant refused"
    )
    assert (failed.status, failed.processing_error) == (DocumentStatus.FAILED, "Qdrant refused")
    assert services.document_claim_next(worker="w") is None  # failed is not retried by itself

    retried = services.document_reprocess(user=document.user, document_id=document.pk)
    assert (retried.status, retried.attempts, retried.processing_error) == ("pending", 0, "")

    again = services.document_claim_next(worker="w")
    assert (again.pk, again.attempts) == (document.pk, 1)
    assert again.lease_id != lease
    services.document_report_status(
        document_id=document.pk, lease_id=again.lease_id, status="processed", chunk_count=3
    )
    document.refresh_from_db()
    assert document.processed is True


@pytest.mark.parametrize("trait", ["pending", "processed_ok", "failed"])
@pytest.mark.parametrize("reported", ["processing", "processed", "failed"])
def test_report_on_a_document_not_being_processed_is_an_invalid_transition(trait, reported):
    document = DocumentFactory(**({trait: True} if trait != "pending" else {}))
    before = _state(document)

    with pytest.raises(InvalidTransitionError) as excinfo:
        services.document_report_status(
            document_id=document.pk,
            lease_id=uuid.uuid4(),
            status=reported,
            chunk_count=1,
            error="x",
        )

    assert excinfo.value.extra == {"current_status": document.status}
    assert _state(document) == before


def test_report_with_another_lease_is_refused_and_changes_nothing():
    document = DocumentFactory(processing=True)
    before = _state(document)

    with pytest.raises(LeaseExpiredError):
        services.document_report_status(
            document_id=document.pk, lease_id=uuid.uuid4(), status="processed", chunk_count=1
        )

    assert _state(document) == before


def test_report_after_the_lease_expired_is_refused_even_before_requeue():
    document = DocumentFactory(processing=True)
    _expire_lease(document)
    before = _state(document)

    with pytest.raises(LeaseExpiredError):
        services.document_report_status(
            document_id=document.pk, lease_id=document.lease_id, status="processing"
        )

    assert _state(document) == before


def test_second_report_on_a_finished_lease_is_refused():
    document = DocumentFactory(processing=True)
    services.document_report_status(
        document_id=document.pk, lease_id=document.lease_id, status="processed", chunk_count=4
    )

    with pytest.raises(InvalidTransitionError):
        services.document_report_status(
            document_id=document.pk, lease_id=document.lease_id, status="failed", error="late"
        )

    document.refresh_from_db()
    assert (document.status, document.chunk_count) == (DocumentStatus.PROCESSED, 4)


def test_report_on_unknown_document_is_not_found():
    with pytest.raises(DocumentNotFoundError):
        services.document_report_status(
            document_id=999_999, lease_id=uuid.uuid4(), status="processing"
        )


# --- Lease expiry ---------------------------------------------------------------


def test_expired_lease_is_claimed_again_and_the_old_lease_is_dead():
    document = DocumentFactory()
    first = services.document_claim_next(worker="crashed")
    _expire_lease(document)

    second = services.document_claim_next(worker="healthy")

    assert second.pk == document.pk
    assert second.attempts == 2
    assert second.lease_id != first.lease_id
    assert second.lease_owner == "healthy"
    with pytest.raises(LeaseExpiredError):
        services.document_report_status(
            document_id=document.pk, lease_id=first.lease_id, status="processed", chunk_count=1
        )


def test_requeue_expired_fails_documents_out_of_attempts(settings):
    settings.DOCUMENT_MAX_ATTEMPTS = 2
    retry = DocumentFactory(processing=True, attempts=1, lease_owner="svc/a")
    exhausted = DocumentFactory(processing=True, attempts=2, lease_owner="svc/b")
    live = DocumentFactory(processing=True, attempts=2)
    _expire_lease(retry)
    _expire_lease(exhausted)

    result = services.document_requeue_expired()

    assert (result.requeued, result.failed) == (1, 1)
    retry.refresh_from_db()
    exhausted.refresh_from_db()
    live.refresh_from_db()
    assert (retry.status, retry.lease_id, retry.attempts) == ("pending", None, 1)
    assert exhausted.status == DocumentStatus.FAILED
    assert "2 attempt(s)" in exhausted.processing_error
    assert "svc/b" not in exhausted.processing_error  # the owner sees it; the log names the worker
    assert exhausted.lease_id is None
    assert live.status == DocumentStatus.PROCESSING


def test_claim_releases_expired_leases_first(settings):
    settings.DOCUMENT_MAX_ATTEMPTS = 1
    document = DocumentFactory(processing=True, attempts=1)
    _expire_lease(document)

    assert services.document_claim_next(worker="w") is None

    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED


# --- Owner retry and operator actions ------------------------------------------


@pytest.mark.parametrize("trait", ["pending", "processing", "processed_ok"])
def test_reprocess_only_retries_failed_documents(trait):
    document = DocumentFactory(**({trait: True} if trait != "pending" else {}))
    before = _state(document)

    with pytest.raises(InvalidTransitionError):
        services.document_reprocess(user=document.user, document_id=document.pk)

    assert _state(document) == before


def test_reprocess_of_another_users_document_is_not_found(user):
    document = DocumentFactory(failed=True)

    with pytest.raises(DocumentNotFoundError):
        services.document_reprocess(user=user, document_id=document.pk)


def test_operator_requeue_releases_a_stuck_lease():
    document = DocumentFactory(processing=True, attempts=3)
    lease = document.lease_id

    services.document_requeue(document_id=document.pk)

    document.refresh_from_db()
    assert (document.status, document.attempts, document.lease_id) == ("pending", 0, None)
    with pytest.raises(InvalidTransitionError):
        services.document_report_status(
            document_id=document.pk, lease_id=lease, status="processing"
        )
    with pytest.raises(InvalidTransitionError):
        services.document_requeue(document_id=document.pk)


def test_operator_mark_failed():
    pending = DocumentFactory()
    done = DocumentFactory(processed_ok=True)

    services.document_mark_failed(document_id=pending.pk, error="Bad scan")

    pending.refresh_from_db()
    assert (pending.status, pending.processing_error) == ("failed", "Bad scan")
    with pytest.raises(InvalidTransitionError):
        services.document_mark_failed(document_id=done.pk, error="x")
    with pytest.raises(ValidationError):
        services.document_mark_failed(document_id=pending.pk, error="")


# --- Published events -----------------------------------------------------------


def test_every_status_change_is_published_to_the_owner(
    user, user_events, django_capture_on_commit_callbacks, settings
):
    settings.DOCUMENT_MAX_ATTEMPTS = 2
    events = user_events(user)

    def statuses():  # the owner's notifications share the stream (notifications.tests)
        drained = [e for e in events.drain() if e["type"].startswith("document.")]
        return [(e["type"], e["document"]["status"]) for e in drained]

    with django_capture_on_commit_callbacks(execute=True):
        document = services.document_upload(user=user, file=upload("a.pdf", pdf_bytes(2)))
    assert statuses() == [("document.status", "pending")]

    with django_capture_on_commit_callbacks(execute=True):
        lease = services.document_claim_next(worker="w").lease_id
        services.document_report_status(
            document_id=document.pk, lease_id=lease, status="processing"
        )
    assert statuses() == [("document.status", "processing")]  # a heartbeat is no change

    _expire_lease(document)
    with django_capture_on_commit_callbacks(execute=True):
        lease = services.document_claim_next(worker="w").lease_id
    assert statuses() == [("document.status", "pending"), ("document.status", "processing")]

    with django_capture_on_commit_callbacks(execute=True):
        services.document_report_status(
            document_id=document.pk, lease_id=lease, status="failed", error="boom"
        )
        services.document_reprocess(user=user, document_id=document.pk)
        lease = services.document_claim_next(worker="w").lease_id
        services.document_report_status(
            document_id=document.pk, lease_id=lease, status="processed", chunk_count=7
        )
    assert statuses() == [
        ("document.status", "failed"),
        ("document.status", "pending"),
        ("document.status", "processing"),
        ("document.status", "processed"),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        services.document_delete(user=user, document_id=document.pk)
    assert events.drain() == [{"type": "document.deleted", "document_id": document.pk}]


def test_status_event_payload(user, user_events, django_capture_on_commit_callbacks):
    document = DocumentFactory(user=user, processing=True, page_count=2)
    events = user_events(user)

    with django_capture_on_commit_callbacks(execute=True):
        services.document_report_status(
            document_id=document.pk, lease_id=document.lease_id, status="processed", chunk_count=9
        )

    document.refresh_from_db()
    [event, notification] = events.drain()
    assert notification["type"] == "notification.created"
    # The same JSON as the REST detail of the document.
    assert event == {"type": "document.status", "document": DocumentDetailSerializer(document).data}
    assert event["document"]["status"] == "processed"
    assert event["document"]["chunk_count"] == 9
    assert event["document"]["processed_at"] == document.processed_at.isoformat().replace(
        "+00:00", "Z"
    )


def test_refused_reports_publish_nothing(user, user_events, django_capture_on_commit_callbacks):
    document = DocumentFactory(user=user, processing=True)
    events = user_events(user)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(LeaseExpiredError):
        services.document_report_status(
            document_id=document.pk, lease_id=uuid.uuid4(), status="failed", error="x"
        )

    assert events.drain() == []


def test_events_go_only_to_the_owner(
    user, other_user, user_events, django_capture_on_commit_callbacks
):
    stranger = user_events(other_user)

    with django_capture_on_commit_callbacks(execute=True):
        services.document_upload(user=user, file=upload("mine.txt", TEXT))

    assert stranger.drain() == []


# --- Concurrency (PostgreSQL: real row locks between connections) -------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_receive_different_documents(run_concurrently):
    documents = DocumentFactory.create_batch(12)

    def drain(index: int) -> list[int]:
        claimed = []
        while (document := services.document_claim_next(worker=f"w{index}")) is not None:
            claimed.append(document.pk)
        return claimed

    results = run_concurrently(4, drain)

    claimed = [pk for result in results for pk in result]
    assert sorted(claimed) == sorted(d.pk for d in documents)  # each exactly once
    assert DocumentMetadata.objects.filter(status="processing", attempts=1).count() == 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claim_skips_a_document_locked_by_a_claim_in_flight():
    import threading

    from django.db import connection

    now = timezone.now()
    first = DocumentFactory(uploaded_at=now - timedelta(minutes=2))
    second = DocumentFactory(uploaded_at=now - timedelta(minutes=1))
    locked, release = threading.Event(), threading.Event()
    held = {}

    def slow_claimer():
        try:
            with transaction.atomic():  # the claim's lock lasts until this commits
                held["pk"] = services.document_claim_next(worker="slow").pk
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_claimer)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        with transaction.atomic():
            with connection.cursor() as cursor:  # fail instead of hanging if we block
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            fast = services.document_claim_next(worker="fast")
    finally:
        release.set()
        thread.join(timeout=10)

    assert held["pk"] == first.pk
    assert fast.pk == second.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_on_one_lease_cannot_both_win(run_concurrently):
    document = DocumentFactory(processing=True)
    reports = [
        {"status": "processed", "chunk_count": 5},
        {"status": "failed", "error": "worker crashed"},
    ]

    results = run_concurrently(
        2,
        lambda i: services.document_report_status(
            document_id=document.pk, lease_id=document.lease_id, **reports[i]
        ),
    )

    winners = [r for r in results if isinstance(r, DocumentMetadata)]
    losers = [r for r in results if isinstance(r, InvalidTransitionError)]
    assert (len(winners), len(losers)) == (1, 1)
    document.refresh_from_db()
    assert document.status == winners[0].status


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_uploads_keep_one_document_and_one_file(settings, run_concurrently):
    user = UserFactory()
    content = pdf_bytes(2)

    results = run_concurrently(
        3, lambda i: services.document_upload(user=user, file=upload(f"copy{i}.pdf", content))
    )

    created = [r for r in results if isinstance(r, DocumentMetadata)]
    refused = [r for r in results if isinstance(r, DuplicateDocumentError)]
    assert (len(created), len(refused)) == (1, 2)
    assert {r.extra["existing_document_id"] for r in refused} == {created[0].pk}
    assert stored_files(settings) == [created[0].file_path]
