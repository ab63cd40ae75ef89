"""Receiving an uploaded file without holding it in memory, and checking it.

``DocumentUploadParser`` (the upload route's only parser) streams the single
``file`` part of a multipart body through ``DocumentUploadHandler`` into a
temporary file, hashing it on the way and stopping with a 413 as soon as the
body or the file passes ``DOCUMENT_MAX_UPLOAD_SIZE``. Nothing reaches the
storage until ``inspect_upload`` has accepted the content.

Accepted types are decided by content and extension together:

========  ===================  =============================================
type      extension            content
========  ===================  =============================================
PDF       .pdf                 starts with ``%PDF-`` and pypdf reads its pages
DOCX      .docx                a zip holding [Content_Types].xml and
                               word/document.xml
TXT       .txt                 valid UTF-8 without NUL bytes
MD        .md, .markdown       valid UTF-8 without NUL bytes
========  ===================  =============================================

Anything else, or an extension that does not match the content, is a 415. A
file whose content is of its claimed type but cannot be read (a truncated
PDF, a broken zip) is a 400 ``corrupt_file``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from pypdf import PdfReader
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from documents.errors import (
    CorruptFileError,
    EncryptedPdfError,
    FileTooLargeError,
    UnsupportedFileTypeError,
)
from documents.models import FileType

UPLOAD_FIELD = "file"
CHUNK_SIZE = 64 * 1024
# Room for the multipart framing around the file (boundaries, part headers).
MULTIPART_ALLOWANCE = 64 * 1024

EXTENSIONS: dict[str, str] = {
    ".pdf": FileType.PDF,
    ".txt": FileType.TXT,
    ".md": FileType.MD,
    ".markdown": FileType.MD,
    ".docx": FileType.DOCX,
}
EXTENSION_OF_TYPE: dict[str, str] = {
    FileType.PDF: ".pdf",
    FileType.TXT: ".txt",
    FileType.MD: ".md",
    FileType.DOCX: ".docx",
}
CONTENT_TYPES: dict[str, str] = {
    FileType.PDF: "application/pdf",
    FileType.TXT: "text/plain; charset=utf-8",
    FileType.MD: "text/markdown; charset=utf-8",
    FileType.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_KIND_OF_TYPE = {
    FileType.PDF: "PDF",
    FileType.DOCX: "ZIP",
    FileType.TXT: "TEXT",
    FileType.MD: "TEXT",
}
_KIND_LABELS = {
    "PDF": "a PDF",
    "ZIP": "a zip archive",
    "TEXT": "UTF-8 text",
    "BINARY": "binary data",
}
DOCX_PARTS = frozenset({"[Content_Types].xml", "word/document.xml"})
# Word files hold tens of parts; a zip of countless tiny entries would make
# zipfile build a huge directory in memory, so it is refused before that.
MAX_DOCX_PARTS = 5_000
_ZIP_END_RECORD = b"PK\x05\x06"
_SEPARATORS = re.compile(r"[/\\]")


def max_upload_size() -> int:
    return settings.DOCUMENT_MAX_UPLOAD_SIZE


def too_large(limit: int) -> FileTooLargeError:
    return FileTooLargeError(f"The file is larger than the {limit}-byte limit.", max_size=limit)


# --- Receiving ----------------------------------------------------------------


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary upload that knows the SHA-256 of its content."""

    sha256: str = ""


class DocumentUploadHandler(FileUploadHandler):
    """Streams the first ``file`` part to disk, hashing it; drops every other part.

    Raises ``FileTooLargeError`` (413) before reading the body when Content-Length
    already says it is too large, and otherwise at the first chunk past the
    limit, after deleting what it had written.
    """

    chunk_size = CHUNK_SIZE

    def __init__(self, request=None, *, max_size: int) -> None:
        super().__init__(request)
        self.max_size = max_size
        self.upload: HashedUploadedFile | None = None
        self._hasher = hashlib.sha256()
        self._receiving = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # noqa: N803
        if content_length > self.max_size + MULTIPART_ALLOWANCE:
            raise too_large(self.max_size)
        return None  # the multipart parser goes on, feeding us the parts

    def new_file(self, field_name, file_name, content_type, *args, **kwargs):
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self._receiving = field_name == UPLOAD_FIELD and self.upload is None
        if self._receiving:
            self.upload = HashedUploadedFile(file_name, content_type, 0, self.charset)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if not self._receiving:
            return None  # another part: read and dropped
        if start + len(raw_data) > self.max_size:
            self._discard()
            raise too_large(self.max_size)
        self._hasher.update(raw_data)
        self.upload.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile | None:
        if not self._receiving:
            return None
        self._receiving = False
        self.upload.seek(0)
        self.upload.size = file_size
        self.upload.sha256 = self._hasher.hexdigest()
        return self.upload

    def upload_interrupted(self) -> None:
        self._discard()

    def _discard(self) -> None:
        if self.upload is not None:
            self.upload.close()  # a NamedTemporaryFile: closing deletes it
        self._receiving = False


class DocumentUploadParser(parsers.MultiPartParser):
    """multipart/form-data through ``DocumentUploadHandler`` only."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handler = DocumentUploadHandler(request, max_size=max_upload_size())
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            data, files = DjangoMultiPartParser(meta, stream, [handler], encoding).parse()
        except (MultiPartParserError, SuspiciousOperation) as exc:
            raise ParseError(f"Multipart form parse error: {exc}") from None
        return parsers.DataAndFiles(data, files)


# --- Checking -----------------------------------------------------------------


def clean_filename(raw: str) -> str:
    """A display name: no directories, control or format characters, <= 255 chars."""
    name = _SEPARATORS.split(unicodedata.normalize("NFC", raw or ""))[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(name.split()).strip(" .")
    if len(name) > 255:
        stem, ext = os.path.splitext(name)
        name = stem[: 255 - len(ext)] + ext
    return name


def file_type_for_name(filename: str) -> str | None:
    return EXTENSIONS.get(os.path.splitext(filename)[1].lower())


@dataclass(frozen=True)
class Inspection:
    file_type: str
    page_count: int


def inspect_upload(file: File, *, filename: str) -> Inspection:
    """The accepted type of ``file`` (and PDF page count), or a 415/400 error.

    Reads the file in chunks; memory use does not grow with its size.
    """
    file_type = file_type_for_name(filename)
    if file_type is None:
        raise UnsupportedFileTypeError(
            "Only .pdf, .txt, .md and .docx files are accepted; "
            f"{filename or 'this file'!r} has none of these extensions."
        )
    kind = sniff(file)
    if kind != _KIND_OF_TYPE[file_type]:
        raise UnsupportedFileTypeError(
            f"The name says {file_type} but the content is {_KIND_LABELS[kind]}."
        )
    page_count = 0
    if file_type == FileType.PDF:
        page_count = pdf_page_count(file)
    elif file_type == FileType.DOCX:
        check_docx(file)
    file.seek(0)
    return Inspection(file_type=file_type, page_count=page_count)


def sniff(file: File) -> str:
    """``PDF``, ``ZIP``, ``TEXT`` or ``BINARY``, from the content alone."""
    file.seek(0)
    head = file.read(8)
    file.seek(0)
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP"
    return "TEXT" if is_utf8_text(file) else "BINARY"


def is_utf8_text(file: File) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in file.chunks(CHUNK_SIZE):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def pdf_page_count(file: File) -> int:
    file.seek(0)
    try:
        reader = PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedPdfError()
        return len(reader.pages)
    except EncryptedPdfError:
        raise
    except Exception:  # pypdf fails on broken files in many ways (KeyError, ValueError, ...)
        raise CorruptFileError("The PDF is damaged and its pages cannot be read.") from None


def check_docx(file: File) -> None:
    entries = zip_entry_count(file)
    if entries is None:
        raise CorruptFileError("The DOCX file is damaged (not a readable zip archive).")
    if entries > MAX_DOCX_PARTS:
        raise UnsupportedFileTypeError("The zip archive has too many parts for a Word document.")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CorruptFileError("The DOCX file is damaged (not a readable zip archive).") from None
    if not names >= DOCX_PARTS:
        raise UnsupportedFileTypeError("The zip archive is not a Word (DOCX) document.")


def zip_entry_count(file: File) -> int | None:
    """Entries announced by the zip's end record (read from the last 64 KiB), or None."""
    file.seek(0, os.SEEK_END)
    size = file.tell()
    tail_length = min(size, 0xFFFF + 22)
    file.seek(size - tail_length)
    tail = file.read(tail_length)
    file.seek(0)
    at = tail.rfind(_ZIP_END_RECORD)
    if at < 0 or len(tail) - at < 22:
        return None
    return int.from_bytes(tail[at + 10 : at + 12], "little")
