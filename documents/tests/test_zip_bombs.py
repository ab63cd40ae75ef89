"""A DOCX that unpacks to far more than it weighs is refused from its zip directory."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from documents import inspection
from documents.errors import UnsupportedFileTypeError
from documents.models import DocumentMetadata
from documents.tests.factories import DOCX_CONTENT_TYPES, docx_bytes, upload

MIB = 1024 * 1024


def docx_with_part(body: bytes | None = None, *, zeros: int = 0) -> bytes:
    """A real DOCX whose word/document.xml is ``body``, or ``zeros`` NUL bytes
    streamed into the archive (a highly compressible part: a zip bomb)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", DOCX_CONTENT_TYPES)
        with archive.open("word/document.xml", "w") as part:
            if body is not None:
                part.write(body)
            block = bytes(MIB)
            for _ in range(zeros // MIB):
                part.write(block)
    return buffer.getvalue()


def _parts(content: bytes) -> dict[str, tuple[int, int]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {part.filename: (part.file_size, part.compress_size) for part in archive.infolist()}


def test_a_highly_compressed_part_is_refused_without_unpacking_it(monkeypatch):
    bomb = docx_with_part(zeros=64 * MIB)
    size, packed = _parts(bomb)["word/document.xml"]
    assert size == 64 * MIB
    assert size > 500 * packed  # 64 MiB in about 64 KiB
    assert size < 200 * MIB  # within the default total: the ratio alone refuses it

    def no_unpacking(*args, **kwargs):
        raise AssertionError("the check must not decompress")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    monkeypatch.setattr(zipfile.ZipFile, "read", no_unpacking)
    with pytest.raises(UnsupportedFileTypeError, match=r"compressed \d+:1"):
        inspection.check_docx(ContentFile(bomb))


def test_parts_that_unpack_past_the_limit_are_refused(settings):
    settings.DOCUMENT_MAX_UNZIPPED_SIZE = 2 * MIB
    # Incompressible: the ratio is about 1:1, only the total is too large.
    content = docx_with_part(os.urandom(2 * MIB))

    with pytest.raises(UnsupportedFileTypeError, match="more than the 2097152-byte limit"):
        inspection.check_docx(ContentFile(content))

    settings.DOCUMENT_MAX_UNZIPPED_SIZE = 3 * MIB
    inspection.check_docx(ContentFile(content))


def test_ordinary_documents_pass():
    # Repetitive Word XML compresses well, but nowhere near 100:1 over a large part.
    paragraphs = b"".join(
        b"<w:p><w:r><w:t>Paragraph %d of the RAG pipeline review.</w:t></w:r></w:p>" % n
        for n in range(60_000)
    )
    large = docx_with_part(paragraphs)
    size, packed = _parts(large)["word/document.xml"]
    assert size > inspection.DOCX_RATIO_EXEMPT_SIZE
    assert size < inspection.MAX_DOCX_COMPRESSION_RATIO * packed

    inspection.check_docx(ContentFile(large))
    inspection.check_docx(ContentFile(docx_bytes()))
    # A small part may compress past 100:1 (a page of repeated markup).
    inspection.check_docx(ContentFile(docx_with_part(zeros=MIB)))


@pytest.mark.django_db
def test_uploading_a_zip_bomb_is_a_415_and_stores_nothing(auth_client, settings):
    response = auth_client.post(
        reverse("documents:document-list"),
        {"file": upload("report.docx", docx_with_part(zeros=64 * MIB))},
        format="multipart",
    )

    assert response.status_code == 415, response.content
    body = response.json()
    assert body["code"] == "unsupported_media_type"
    assert "zip bomb" in body["detail"]
    assert not DocumentMetadata.objects.exists()
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]
