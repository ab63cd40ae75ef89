"""Document factories, and real files of each accepted type for upload tests."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from datetime import timedelta

import factory
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from factory.django import DjangoModelFactory
from pypdf import PdfWriter

from documents.models import DocumentDeletion, DocumentMetadata, DocumentStatus, FileType
from users.tests.factories import UserFactory


class DocumentFactory(DjangoModelFactory):
    """A document row (no stored file); traits for every status."""

    class Meta:
        model = DocumentMetadata

    class Params:
        processing = factory.Trait(
            status=DocumentStatus.PROCESSING,
            attempts=1,
            lease_id=factory.LazyFunction(uuid.uuid4),
            lease_owner="worker",
            lease_expires_at=factory.LazyFunction(
                lambda: timezone.now() + timedelta(seconds=settings.DOCUMENT_LEASE_SECONDS)
            ),
        )
        processed_ok = factory.Trait(
            status=DocumentStatus.PROCESSED,
            processed=True,
            attempts=1,
            chunk_count=12,
            processed_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(
            status=DocumentStatus.FAILED, attempts=1, processing_error="Embedding failed."
        )

    user = factory.SubFactory(UserFactory)
    filename = factory.Sequence(lambda n: f"document-{n}.pdf")
    file_path = factory.LazyAttribute(lambda o: f"documents/{o.user.pk}/{uuid.uuid4().hex}.pdf")
    file_size = 1024
    file_type = FileType.PDF
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"content-{n}".encode()).hexdigest())
    page_count = 1
    qdrant_collection = "documents"
    status = DocumentStatus.PENDING


class DocumentDeletionFactory(DjangoModelFactory):
    class Meta:
        model = DocumentDeletion

    document_id = factory.Sequence(lambda n: 10_000 + n)
    owner_id = factory.Sequence(lambda n: 20_000 + n)
    filename = factory.Sequence(lambda n: f"deleted-{n}.pdf")
    qdrant_collection = "documents"


# --- Real files ---------------------------------------------------------------


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def docx_bytes(text: str = "Hello, RAG.", *, parts: tuple[str, ...] | None = None) -> bytes:
    """A minimal Word document; ``parts`` replaces the file list (for broken ones)."""
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    contents = {"[Content_Types].xml": DOCX_CONTENT_TYPES, "word/document.xml": document}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in parts if parts is not None else contents:
            archive.writestr(name, contents.get(name, "x"))
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)
