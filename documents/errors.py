"""Domain errors of the documents app, rendered as ``{detail, code, ...}``.

Upload errors
    413 ``file_too_large``, 415 ``unsupported_media_type``, 400 ``corrupt_file``
    (content of the claimed type that cannot be read), 400 ``encrypted_pdf``,
    409 ``duplicate_document`` (with ``existing_document_id``).
Processing errors
    409 ``invalid_transition`` (with ``current_status``), 409 ``lease_expired``.
"""

from __future__ import annotations

from rest_framework import status

from config.errors import ConflictError, DomainError, NotFoundError


class DocumentNotFoundError(NotFoundError):
    default_detail = "No such document."


class DocumentFileMissingError(NotFoundError):
    code = "file_missing"
    default_detail = "The stored file of this document is missing."


class FileTooLargeError(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "file_too_large"
    default_detail = "The file is larger than the upload limit."


class UnsupportedFileTypeError(DomainError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"
    default_detail = "Only PDF, TXT, Markdown (.md) and DOCX files are accepted."


class CorruptFileError(DomainError):
    code = "corrupt_file"
    default_detail = "The file is damaged and cannot be read."


class EncryptedPdfError(DomainError):
    code = "encrypted_pdf"
    default_detail = "This PDF is password-protected; upload a copy without a password."


class DuplicateDocumentError(ConflictError):
    code = "duplicate_document"
    default_detail = "You have already uploaded a document with identical content."


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"
    default_detail = "The document is not in a state that allows this."


class LeaseExpiredError(ConflictError):
    code = "lease_expired"
    default_detail = (
        "This lease is no longer valid (it expired or the document was handed to another "
        "worker); drop the work and claim again."
    )
