"""The upload handler and content checks, below the service."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from django.core.files.base import ContentFile

from documents import uploads
from documents.errors import CorruptFileError, FileTooLargeError, UnsupportedFileTypeError
from documents.tests.factories import docx_bytes, pdf_bytes


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\kim\\notes.md", "notes.md"),
        ("evil\u202etxt.pdf", "eviltxt.pdf"),  # right-to-left override
        ("line\nbreak\x00.txt", "linebreak.txt"),
        ("  spaced   out  .txt ", "spaced out .txt"),
        ("...hidden.txt", "hidden.txt"),
        ("한국어 문서.pdf", "한국어 문서.pdf"),
        ("\x01\x02", ""),
        ("a" * 300 + ".docx", "a" * 250 + ".docx"),
    ],
)
def test_clean_filename(raw, clean):
    assert uploads.clean_filename(raw) == clean


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (pdf_bytes(), "PDF"),
        (docx_bytes(), "ZIP"),
        ("plain ✓ text".encode(), "TEXT"),
        (b"\xff\xfe\x00t\x00e", "BINARY"),
        (b"ok" + b"\x00", "BINARY"),
    ],
)
def test_sniff_decides_by_content(content, kind):
    assert uploads.sniff(ContentFile(content)) == kind


def test_text_check_reads_multibyte_characters_split_across_chunks():
    # A 3-byte character straddling the chunk boundary is still valid UTF-8.
    content = b"a" * (uploads.CHUNK_SIZE - 1) + "한".encode() + b"b"

    assert uploads.is_utf8_text(ContentFile(content))


def test_truncated_pdf_is_corrupt():
    content = pdf_bytes(2)
    with pytest.raises(CorruptFileError):
        uploads.pdf_page_count(ContentFile(content[:40]))


def test_docx_with_too_many_parts_is_refused_before_zipfile_reads_it(settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(uploads.MAX_DOCX_PARTS + 1):
            archive.writestr(f"p{index}", b"")
    content = ContentFile(buffer.getvalue())

    assert uploads.zip_entry_count(content) == uploads.MAX_DOCX_PARTS + 1
    with pytest.raises(UnsupportedFileTypeError, match="too many parts"):
        uploads.check_docx(content)
    assert uploads.zip_entry_count(ContentFile(docx_bytes())) == 2
    assert uploads.zip_entry_count(ContentFile(b"PK\x03\x04 no end record")) is None


def _feed(handler, parts: list[tuple[str, bytes]]):
    files = []
    for field, content in parts:
        handler.new_file(field, f"{field}.txt", "text/plain", len(content))
        handler.receive_data_chunk(content, 0)
        files.append(handler.file_complete(len(content)))
    return files


def test_handler_keeps_the_first_file_part_with_its_hash():
    handler = uploads.DocumentUploadHandler(max_size=100)

    kept, extra, second = _feed(handler, [("file", b"hello"), ("other", b"x"), ("file", b"y")])

    assert kept.read() == b"hello"
    assert kept.size == 5
    assert kept.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert (extra, second) == (None, None)


def test_handler_stops_at_the_limit_and_deletes_what_it_wrote():
    handler = uploads.DocumentUploadHandler(max_size=10)
    handler.new_file("file", "big.txt", "text/plain", None)
    handler.receive_data_chunk(b"x" * 8, 0)
    path = handler.upload.temporary_file_path()

    with pytest.raises(FileTooLargeError):
        handler.receive_data_chunk(b"x" * 8, 8)

    assert not os.path.exists(path)


def test_handler_refuses_a_body_declared_too_large_before_reading_it():
    handler = uploads.DocumentUploadHandler(max_size=10)
    body = io.BytesIO(b"never read")

    with pytest.raises(FileTooLargeError):
        handler.handle_raw_input(body, {}, 10 + uploads.MULTIPART_ALLOWANCE + 1, b"b")

    assert body.tell() == 0
    assert handler.handle_raw_input(body, {}, 10 + uploads.MULTIPART_ALLOWANCE, b"b") is None
