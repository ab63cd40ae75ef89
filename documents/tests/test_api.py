from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from documents import services
from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus, FileType
from documents.tests.factories import (
    DocumentDeletionFactory,
    DocumentFactory,
    docx_bytes,
    pdf_bytes,
    upload,
)
from users.models import Scope

pytestmark = pytest.mark.django_db

LIST = reverse("documents:document-list")
CLAIM = reverse("documents:job-claim")
DELETIONS = reverse("documents:job-deletions")
TEXT = "회의록\n- RAG 파이프라인 점검\n".encode()
BOUNDARY = "docs-test-boundary"


def detail_url(document_id: int) -> str:
    return reverse("documents:document-detail", args=[document_id])


def file_url(document_id: int) -> str:
    return reverse("documents:document-file", args=[document_id])


def status_url(document_id: int) -> str:
    return reverse("documents:job-status", args=[document_id])


def reprocess_url(document_id: int) -> str:
    return reverse("documents:document-reprocess", args=[document_id])


def post_file(client, name: str, content: bytes):
    return client.post(LIST, {"file": upload(name, content)}, format="multipart")


def multipart(filename: str, content: bytes) -> bytes:
    """A body the test client would not build: the filename is sent exactly as given."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def post_raw(client, body: bytes):
    return client.generic(
        "POST", LIST, data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    return body


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def worker_client(make_service_client):
    return make_service_client(Scope.DOCUMENTS_PROCESS)


# --- Upload ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "file_type", "pages"),
    [
        ("rag_introduction.pdf", pdf_bytes(pages=2), "PDF", 2),
        ("notes.txt", TEXT, "TXT", 0),
        ("README.md", TEXT, "MD", 0),
        ("letter.docx", docx_bytes(), "DOCX", 0),
    ],
)
def test_upload_each_accepted_type(auth_client, user, name, content, file_type, pages):
    response = post_file(auth_client, name, content)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id", "filename", "file_type", "file_size", "uploaded_at", "processed", "status", "message"
    }  # fmt: skip
    assert body["filename"] == name
    assert (body["file_type"], body["file_size"]) == (file_type, len(content))
    assert (body["processed"], body["status"]) == (False, "pending")
    document = DocumentMetadata.objects.get(pk=body["id"], user=user)
    assert document.page_count == pages
    with default_storage.open(document.file_path, "rb") as stored:
        assert stored.read() == content


def test_upload_with_a_real_jwt(api_client, user):
    from users.services import tokens_issue

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_issue(user=user)['access']}")

    response = post_file(api_client, "a.txt", TEXT)

    assert response.status_code == 201
    assert DocumentMetadata.objects.get().user == user


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("empty.txt", b"", 400, "invalid"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, 415, "unsupported_media_type"),
        ("fake.txt", pdf_bytes(), 415, "unsupported_media_type"),
        ("fake.pdf", TEXT, 415, "unsupported_media_type"),
        ("binary.md", b"\x00\x01\x02", 415, "unsupported_media_type"),
        ("broken.pdf", b"%PDF-1.4\n" + b"\x00junk" * 40, 400, "corrupt_file"),
        ("broken.docx", b"PK\x03\x04not really a zip", 400, "corrupt_file"),
    ],
)
def test_upload_rejections_store_nothing(auth_client, settings, name, content, status, code):
    body = assert_error(post_file(auth_client, name, content), status, code)

    if status == 400 and code == "invalid":
        assert "file" in body["errors"]
    assert not DocumentMetadata.objects.exists()
    assert stored_files(settings) == []


def test_upload_over_the_limit_is_a_json_413(auth_client, settings):
    settings.DOCUMENT_MAX_UPLOAD_SIZE = 1000

    # Within the multipart allowance: stopped by the upload handler mid-stream.
    body = assert_error(post_file(auth_client, "big.txt", b"a" * 1001), 413, "file_too_large")
    assert body["max_size"] == 1000
    # Content-Length alone already says it is too large.
    assert_error(post_file(auth_client, "huge.txt", b"a" * 200_000), 413, "file_too_large")

    assert not DocumentMetadata.objects.exists()
    assert stored_files(settings) == []
    assert post_file(auth_client, "fits.txt", b"a" * 1000).status_code == 201


def test_upload_needs_a_multipart_file(auth_client):
    assert_error(
        auth_client.post(LIST, {"file": "text"}, format="json"), 415, "unsupported_media_type"
    )
    body = assert_error(auth_client.post(LIST, {}, format="multipart"), 400, "invalid")
    assert "file" in body["errors"]


def test_upload_filename_from_the_client_is_sanitised(auth_client, user):
    response = post_raw(auth_client, multipart("..\\..\\secrets\\pass\twords.md", TEXT))

    assert response.status_code == 201, response.content
    document = DocumentMetadata.objects.get()
    assert document.filename == "passwords.md"
    assert document.file_path.startswith(f"documents/{user.pk}/")
    assert "pass" not in document.file_path


def test_duplicate_upload_is_409_naming_the_first(auth_client, settings):
    first = post_file(auth_client, "a.pdf", pdf_bytes()).json()

    body = assert_error(post_file(auth_client, "copy.pdf", pdf_bytes()), 409, "duplicate_document")

    assert body["existing_document_id"] == first["id"]
    assert DocumentMetadata.objects.count() == 1
    assert len(stored_files(settings)) == 1


def test_service_tokens_cannot_use_owner_routes(worker_client):
    document = DocumentFactory()

    assert_error(post_file(worker_client, "a.txt", TEXT), 403, "end_user_only")
    assert_error(worker_client.get(LIST), 403, "end_user_only")
    assert_error(worker_client.get(detail_url(document.pk)), 403, "end_user_only")
    assert_error(worker_client.delete(detail_url(document.pk)), 403, "end_user_only")
    assert DocumentMetadata.objects.filter(pk=document.pk).exists()


def test_anonymous_is_401(api_client):
    assert_error(api_client.get(LIST), 401, "not_authenticated")


# --- Memory -------------------------------------------------------------------------


def _write_text(out, size: int) -> None:
    line = b"The retrieval step feeds the generator with chunks. 0123456789\n"
    block = line * (64 * 1024 // len(line))
    written = 0
    while written + len(block) <= size:
        out.write(block)
        written += len(block)
    out.write(b"x" * (size - written))


def _write_pdf(out, size: int) -> None:
    """A one-page PDF whose content stream makes it ``size`` bytes, written in blocks."""
    start = out.tell()
    offsets = []

    def obj(body: bytes) -> None:
        offsets.append(out.tell() - start)
        out.write(body)

    out.write(b"%PDF-1.4\n")
    obj(b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n")
    obj(b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n")
    obj(b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
        b" endobj\n")  # fmt: skip
    trailer_room = 400
    length = size - (out.tell() - start) - trailer_room
    offsets.append(out.tell() - start)
    out.write(b"4 0 obj << /Length %d >> stream\n" % length)
    _write_text(out, length)
    out.write(b"\nendstream endobj\n")
    xref = out.tell() - start
    out.write(b"xref\n0 5\n0000000000 65535 f \n")
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer << /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)


@pytest.mark.parametrize(("name", "writer"), [("big.txt", _write_text), ("big.pdf", _write_pdf)])
def test_upload_memory_stays_flat_for_a_file_near_the_limit(user, settings, tmp_path, name, writer):
    """The whole stack (WSGI request, multipart parsing, checks, storage) in bounded memory."""
    import tracemalloc

    from django.test.client import ClientHandler

    from users.services import tokens_issue

    size = settings.DOCUMENT_MAX_UPLOAD_SIZE - 64 * 1024
    body_path = tmp_path / "body"
    with body_path.open("wb") as body:
        head, tail = multipart(name, b"|").split(b"|")
        body.write(head)
        writer(body, size)
        size = body.tell() - len(head)  # the PDF writer lands within a few bytes
        body.write(tail)
    access = tokens_issue(user=user)["access"]

    with body_path.open("rb") as stream:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": LIST,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "HTTP_HOST": "testserver",
            "wsgi.url_scheme": "http",
            "wsgi.input": stream,
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
            "CONTENT_LENGTH": str(body_path.stat().st_size),
            "HTTP_AUTHORIZATION": f"Bearer {access}",
        }
        tracemalloc.start()
        try:
            response = ClientHandler()(environ)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert response.status_code == 201, response.content
    document = DocumentMetadata.objects.get()
    assert document.file_size == size
    assert default_storage.size(document.file_path) == size
    # A small fraction of the file: nothing held the whole upload in memory.
    assert peak < size / 8, f"peak {peak} bytes for a {size}-byte upload"


# --- List, detail ---------------------------------------------------------------


def test_list_is_paginated_own_documents_newest_first(auth_client, user, other_user):
    now = timezone.now()
    older = DocumentFactory(user=user, uploaded_at=now - timedelta(hours=1))
    newer = DocumentFactory(user=user, uploaded_at=now)
    DocumentFactory(user=other_user)

    body = auth_client.get(LIST).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    assert set(body["results"][0]) == {
        "id", "filename", "file_type", "file_size", "page_count", "chunk_count", "uploaded_at",
        "processed", "status",
    }  # fmt: skip


def test_list_filters(auth_client, user):
    pdf = DocumentFactory(user=user, filename="Quarterly Report.pdf", processed_ok=True)
    notes = DocumentFactory(user=user, filename="notes.md", file_type=FileType.MD)
    DocumentFactory(user=user, filename="draft.txt", file_type=FileType.TXT, failed=True)

    def ids(query: str) -> list[int]:
        return [item["id"] for item in auth_client.get(f"{LIST}?{query}").json()["results"]]

    assert ids("status=processed") == [pdf.pk]
    assert ids("file_type=md") == [notes.pk]
    assert ids("search=report") == [pdf.pk]
    assert ids("search=report&status=pending") == []
    body = assert_error(auth_client.get(f"{LIST}?status=done"), 400, "invalid")
    assert "status" in body["errors"]


def test_list_page_size_is_capped(auth_client, user):
    DocumentFactory.create_batch(3, user=user)

    body = auth_client.get(f"{LIST}?page_size=2").json()

    assert (body["count"], len(body["results"])) == (3, 2)
    assert body["next"]


@pytest.mark.parametrize("documents", [3, 30])
def test_list_query_count_does_not_grow(auth_client, user, documents, django_assert_num_queries):
    DocumentFactory.create_batch(documents, user=user)

    with django_assert_num_queries(2):  # count, page
        response = auth_client.get(LIST)

    assert len(response.json()["results"]) == min(documents, 20)


def test_detail_has_all_metadata_fields(auth_client, user):
    document = DocumentFactory(user=user, processed_ok=True, page_count=10, chunk_count=45)

    body = auth_client.get(detail_url(document.pk)).json()

    assert body == {
        "id": document.pk,
        "filename": document.filename,
        "file_type": "PDF",
        "file_size": document.file_size,
        "page_count": 10,
        "chunk_count": 45,
        "qdrant_collection": "documents",
        "uploaded_at": body["uploaded_at"],
        "processed": True,
        "processing_error": "",
        "status": "processed",
        "processed_at": body["processed_at"],
    }
    assert body["uploaded_at"]
    assert body["processed_at"]


def test_another_users_document_is_404_everywhere(auth_client, other_user):
    document = DocumentFactory(user=other_user, failed=True)

    assert_error(auth_client.get(detail_url(document.pk)), 404, "not_found")
    assert_error(auth_client.get(file_url(document.pk)), 404, "not_found")
    assert_error(auth_client.delete(detail_url(document.pk)), 404, "not_found")
    assert_error(auth_client.post(reprocess_url(document.pk)), 404, "not_found")
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED


# --- Download ---------------------------------------------------------------------


def _uploaded(user, name="guide.pdf", content=None):
    return services.document_upload(user=user, file=upload(name, content or pdf_bytes(3)))


def test_owner_downloads_the_original(auth_client, user):
    content = pdf_bytes(3)
    document = _uploaded(user, "가이드 guide.pdf", content)

    response = auth_client.get(file_url(document.pk), HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Disposition"].startswith("attachment;")
    assert "guide.pdf" in response["Content-Disposition"]


def test_text_download_says_utf8(auth_client, user):
    document = _uploaded(user, "notes.md", TEXT)

    response = auth_client.get(file_url(document.pk))

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert b"".join(response.streaming_content) == TEXT


def test_download_by_service_needs_the_processing_scope(make_service_client, user):
    document = _uploaded(user)

    allowed = make_service_client(Scope.DOCUMENTS_PROCESS).get(file_url(document.pk))
    refused = make_service_client(Scope.CHAT_READ).get(file_url(document.pk))

    assert allowed.status_code == 200
    assert_error(refused, 403, "missing_scope")


def test_download_of_a_missing_stored_file_is_404(auth_client, user):
    document = _uploaded(user)
    default_storage.delete(document.file_path)

    assert_error(auth_client.get(file_url(document.pk)), 404, "file_missing")


# --- Delete -----------------------------------------------------------------------


def test_delete_removes_file_and_shows_in_the_deletions_feed(
    auth_client, user, worker_client, settings, django_capture_on_commit_callbacks
):
    document = _uploaded(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.delete(detail_url(document.pk))

    assert response.status_code == 204
    assert not DocumentMetadata.objects.filter(pk=document.pk).exists()
    assert stored_files(settings) == []
    feed = worker_client.get(DELETIONS).json()
    assert feed["count"] == 1
    assert feed["results"][0] == {
        "document_id": document.pk,
        "owner_id": user.pk,
        "filename": "guide.pdf",
        "qdrant_collection": "documents",
        "deleted_at": feed["results"][0]["deleted_at"],
    }
    assert_error(auth_client.get(detail_url(document.pk)), 404, "not_found")


# --- Reprocess --------------------------------------------------------------------


def test_owner_reprocesses_a_failed_document(auth_client, user):
    document = DocumentFactory(user=user, failed=True, attempts=3)

    response = auth_client.post(reprocess_url(document.pk))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["processing_error"]) == ("pending", "")
    document.refresh_from_db()
    assert document.attempts == 0


def test_reprocess_of_a_document_that_did_not_fail_is_409(auth_client, user):
    document = DocumentFactory(user=user, processed_ok=True)

    body = assert_error(auth_client.post(reprocess_url(document.pk)), 409, "invalid_transition")

    assert body["current_status"] == "processed"


# --- Processing protocol ----------------------------------------------------------


def test_protocol_end_to_end_with_a_real_service_token(auth_client, worker_client, user):
    content = pdf_bytes(4)
    uploaded = post_file(auth_client, "paper.pdf", content).json()

    claim = worker_client.post(CLAIM, {"worker": "host-1"})

    assert claim.status_code == 200
    job = claim.json()
    assert set(job) == {
        "id", "owner_id", "filename", "file_type", "file_size", "download_url",
        "qdrant_collection", "lease_id", "lease_expires_at", "attempt",
    }  # fmt: skip
    assert (job["id"], job["owner_id"], job["attempt"]) == (uploaded["id"], user.pk, 1)
    assert (job["file_type"], job["file_size"]) == ("PDF", len(content))
    assert job["download_url"] == f"http://testserver{file_url(job['id'])}"
    downloaded = worker_client.get(job["download_url"])
    assert b"".join(downloaded.streaming_content) == content
    assert auth_client.get(detail_url(job["id"])).json()["status"] == "processing"
    assert DocumentMetadata.objects.get().lease_owner.endswith("/host-1")

    heartbeat = worker_client.post(
        status_url(job["id"]), {"status": "processing", "lease_id": job["lease_id"]}
    )
    assert heartbeat.status_code == 200
    done = worker_client.post(
        status_url(job["id"]),
        {"status": "processed", "lease_id": job["lease_id"], "chunk_count": 45},
    )

    assert done.status_code == 200, done.content
    detail = auth_client.get(detail_url(job["id"])).json()
    assert (detail["status"], detail["processed"], detail["chunk_count"]) == ("processed", True, 45)
    assert detail["page_count"] == 4
    assert worker_client.post(CLAIM).status_code == 204


def test_claim_when_the_queue_is_empty_is_204(worker_client):
    DocumentFactory(processed_ok=True)

    response = worker_client.post(CLAIM)

    assert response.status_code == 204
    assert response.content == b""


def test_processing_routes_are_for_scoped_services_only(auth_client, make_service_client):
    document = DocumentFactory(processing=True)
    report = {"status": "processed", "lease_id": str(document.lease_id), "chunk_count": 1}
    unscoped = make_service_client(Scope.CHAT_READ, Scope.KEYS_READ)

    for client, code in [(auth_client, "service_only"), (unscoped, "missing_scope")]:
        assert_error(client.post(CLAIM), 403, code)
        assert_error(client.post(status_url(document.pk), report), 403, code)
        assert_error(client.get(DELETIONS), 403, code)
    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING


def test_failed_report_then_retry(worker_client, auth_client, user):
    document = DocumentFactory(user=user)
    job = worker_client.post(CLAIM).json()

    response = worker_client.post(
        status_url(document.pk),
        {"status": "failed", "lease_id": job["lease_id"], "error": "Embedding API timed out"},
    )

    assert response.status_code == 200
    detail = auth_client.get(detail_url(document.pk)).json()
    assert (detail["status"], detail["processing_error"]) == ("failed", "Embedding API timed out")
    assert worker_client.post(CLAIM).status_code == 204
    auth_client.post(reprocess_url(document.pk))
    assert worker_client.post(CLAIM).json()["id"] == document.pk


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({"status": "processed"}, "chunk_count"),
        ({"status": "failed"}, "error"),
        ({"status": "pending"}, "status"),
        ({"status": "processed", "chunk_count": -1}, "chunk_count"),
        ({"status": "processing", "lease_id": "not-a-uuid"}, "lease_id"),
    ],
)
def test_report_validation_is_400_and_changes_nothing(worker_client, report, field):
    document = DocumentFactory(processing=True)

    response = worker_client.post(
        status_url(document.pk), {"lease_id": str(document.lease_id)} | report
    )

    body = assert_error(response, 400, "invalid")
    assert field in body["errors"]
    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING


def test_stale_and_illegal_reports_are_409(worker_client):
    document = DocumentFactory()
    first = worker_client.post(CLAIM).json()
    DocumentMetadata.objects.filter(pk=document.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    second = worker_client.post(CLAIM).json()
    assert (second["id"], second["attempt"]) == (document.pk, 2)

    stale = worker_client.post(
        status_url(document.pk),
        {"status": "processed", "lease_id": first["lease_id"], "chunk_count": 1},
    )
    assert_error(stale, 409, "lease_expired")
    worker_client.post(
        status_url(document.pk),
        {"status": "processed", "lease_id": second["lease_id"], "chunk_count": 8},
    )
    again = worker_client.post(
        status_url(document.pk), {"status": "failed", "lease_id": second["lease_id"], "error": "x"}
    )

    body = assert_error(again, 409, "invalid_transition")
    assert body["current_status"] == "processed"
    document.refresh_from_db()
    assert (document.status, document.chunk_count, document.attempts) == ("processed", 8, 2)


def test_report_on_unknown_document_is_404(worker_client):
    response = worker_client.post(
        status_url(987_654), {"status": "processing", "lease_id": str(uuid.uuid4())}
    )

    assert_error(response, 404, "not_found")


# --- Deletions feed ---------------------------------------------------------------


def test_deletions_since_oldest_first_paginated(worker_client):
    now = timezone.now()
    old = DocumentDeletionFactory(deleted_at=now - timedelta(days=1))
    newer = [DocumentDeletionFactory(deleted_at=now - timedelta(minutes=m)) for m in (30, 20, 10)]

    since = (old.deleted_at + timedelta(seconds=1)).isoformat()
    body = worker_client.get(DELETIONS, {"since": since, "page_size": 2}).json()

    assert body["count"] == 3
    assert [item["document_id"] for item in body["results"]] == [d.document_id for d in newer[:2]]
    rest = worker_client.get(body["next"]).json()
    assert [item["document_id"] for item in rest["results"]] == [newer[2].document_id]
    everything = worker_client.get(DELETIONS).json()
    assert everything["count"] == 4


def test_deletions_since_must_be_a_datetime(worker_client):
    body = assert_error(worker_client.get(DELETIONS, {"since": "yesterday"}), 400, "invalid")

    assert "since" in body["errors"]


def test_deletion_feed_is_written_by_the_delete_route(auth_client, user, worker_client):
    document = DocumentFactory(user=user)

    auth_client.delete(detail_url(document.pk))

    assert DocumentDeletion.objects.get().document_id == document.pk
    assert worker_client.get(DELETIONS).json()["results"][0]["document_id"] == document.pk


# --- OpenAPI --------------------------------------------------------------------


def test_schema_describes_the_upload_as_multipart_and_the_download_as_binary(tmp_path):
    import yaml
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]

    upload_op = paths["/api/documents/"]["post"]
    assert list(upload_op["requestBody"]["content"]) == ["multipart/form-data"]
    assert {"201", "409", "413", "415"} <= set(upload_op["responses"])
    download = paths["/api/documents/{document_id}/file/"]["get"]["responses"]["200"]["content"]
    assert download["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    claim = paths["/api/documents/jobs/claim/"]["post"]
    assert {"200", "204"} <= set(claim["responses"])
    assert claim["security"] == [{"serviceToken": []}]
    assert {"409"} <= set(paths["/api/documents/{document_id}/status/"]["post"]["responses"])
    assert "/api/documents/deletions/" in paths


def test_uploads_past_the_users_rate_are_429(auth_client, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"uploads": "1/hour"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}

    assert post_file(auth_client, "a.txt", b"first").status_code == 201
    response = post_file(auth_client, "b.txt", b"second")

    assert response.status_code == 429
    assert DocumentMetadata.objects.count() == 1
