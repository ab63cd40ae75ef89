"""What an upload may be: its size, its name, and its content.

``upload_size_check`` is the size rule (not empty, at most
``DOCUMENT_MAX_UPLOAD_SIZE``): the upload handler applies it while the body
streams in, to stop early, and ``inspect_upload`` to the whole file. Nothing
reaches the storage until ``inspect_upload`` has accepted the file.

Accepted types are decided by content and extension together:

========  ===================  =============================================
type      extension            content
========  ===================  =============================================
PDF       .pdf                 starts with ``%PDF-`` and pypdf reads its pages
DOCX      .docx                a zip holding [Content_Types].xml and
                               word/document.xml, that unpacks to at most
                               ``DOCUMENT_MAX_UNZIPPED_SIZE`` with no part
                               compressed beyond 100:1 (no zip bomb)
TXT       .txt                 valid UTF-8 without NUL bytes
MD        .md, .markdown       valid UTF-8 without NUL bytes
========  ===================  =============================================

Anything else, or an extension that does not match the content, is a 415, and
so is a zip bomb. A file whose content is of its claimed type but cannot be
read (a truncated PDF, a broken zip) is a 400 ``corrupt_file``.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from pypdf import PdfReader

from documents.errors import (
    CorruptFileError,
    EncryptedPdfError,
    FileTooLargeError,
    UnsupportedFileTypeError,
)
from documents.models import FileType

CHUNK_SIZE = 64 * 1024

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
_KIND_OF_TYPE: dict[str, str] = {
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
# Word's XML deflates about 5-20:1; a part packed 100 times tighter is a zip
# bomb (Apache POI refuses the same ratio). Parts up to 1 MiB are exempt: a
# little repeated markup can compress that well, and the total is capped anyway.
MAX_DOCX_COMPRESSION_RATIO = 100
DOCX_RATIO_EXEMPT_SIZE = 1024 * 1024
_ZIP_END_RECORD = b"PK\x05\x06"
_SEPARATORS = re.compile(r"[/\\]")


def upload_size_check(size: int) -> None:
    """413 ``file_too_large`` past ``DOCUMENT_MAX_UPLOAD_SIZE`` (read at call time)."""
    limit = settings.DOCUMENT_MAX_UPLOAD_SIZE
    if size > limit:
        raise FileTooLargeError(f"The file is larger than the {limit}-byte limit.", max_size=limit)


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
    size: int


def inspect_upload(file: File, *, filename: str) -> Inspection:
    """The accepted type of ``file`` (and PDF page count), or a 400/413/415 error.

    Reads the file in chunks; memory use does not grow with its size.
    """
    size = file.size
    if not size:
        raise ValidationError({"file": "The submitted file is empty."})
    upload_size_check(size)
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
    return Inspection(file_type=file_type, page_count=page_count, size=size)


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
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CorruptFileError("The DOCX file is damaged (not a readable zip archive).") from None
    if not {part.filename for part in parts} >= DOCX_PARTS:
        raise UnsupportedFileTypeError("The zip archive is not a Word (DOCX) document.")
    docx_expansion_check(parts)


def docx_expansion_check(parts: list[zipfile.ZipInfo]) -> None:
    """415 for a zip bomb: parts that unpack past ``DOCUMENT_MAX_UNZIPPED_SIZE``
    in total, or a part compressed beyond ``MAX_DOCX_COMPRESSION_RATIO``.

    Uses the sizes of the central directory and never decompresses anything.
    A zip reader (Python's ``zipfile`` included) stops a part at its declared
    size, so a directory that understates a part does not get it past the worker.
    """
    limit = settings.DOCUMENT_MAX_UNZIPPED_SIZE
    unpacked = sum(part.file_size for part in parts)
    if unpacked > limit:
        raise UnsupportedFileTypeError(
            f"The DOCX unpacks to {unpacked} bytes, more than the {limit}-byte limit."
        )
    for part in parts:
        if (
            part.file_size > DOCX_RATIO_EXEMPT_SIZE
            and part.file_size > MAX_DOCX_COMPRESSION_RATIO * part.compress_size
        ):
            ratio = part.file_size // max(part.compress_size, 1)
            raise UnsupportedFileTypeError(
                f"A part of the DOCX is compressed {ratio}:1; a Word document's parts "
                f"stay under {MAX_DOCX_COMPRESSION_RATIO}:1 (this looks like a zip bomb)."
            )


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
