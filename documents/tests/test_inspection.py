"""The checks of what an upload may be, below the service."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.base import ContentFile

from documents import inspection
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
    assert inspection.clean_filename(raw) == clean


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
    assert inspection.sniff(ContentFile(content)) == kind


def test_text_check_reads_multibyte_characters_split_across_chunks():
    # A 3-byte character straddling the chunk boundary is still valid UTF-8.
    content = b"a" * (inspection.CHUNK_SIZE - 1) + "한".encode() + b"b"

    assert inspection.is_utf8_text(ContentFile(content))


def test_truncated_pdf_is_corrupt():
    content = pdf_bytes(2)
    with pytest.raises(CorruptFileError):
        inspection.pdf_page_count(ContentFile(content[:40]))


def test_docx_with_too_many_parts_is_refused_before_zipfile_reads_it(settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(inspection.MAX_DOCX_PARTS + 1):
            archive.writestr(f"p{index}", b"")
    content = ContentFile(buffer.getvalue())

    assert inspection.zip_entry_count(content) == inspection.MAX_DOCX_PARTS + 1
    with pytest.raises(UnsupportedFileTypeError, match="too many parts"):
        inspection.check_docx(content)
    assert inspection.zip_entry_count(ContentFile(docx_bytes())) == 2
    assert inspection.zip_entry_count(ContentFile(b"PK\x03\x04 no end record")) is None


def test_size_rule_reads_the_limit_at_call_time(settings):
    settings.DOCUMENT_MAX_UPLOAD_SIZE = 10

    inspection.upload_size_check(10)
    with pytest.raises(FileTooLargeError) as excinfo:
        inspection.upload_size_check(11)
    assert excinfo.value.extra == {"max_size": 10}
