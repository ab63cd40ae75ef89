"""Receiving an uploaded file without holding it in memory.

``DocumentUploadParser`` (the upload route's only parser) streams the single
``file`` part of a multipart body through ``DocumentUploadHandler`` into a
temporary file, hashing it on the way and stopping with a 413 as soon as the
file passes the size limit (``documents.inspection.upload_size_check``). What
the content may be is ``documents.inspection``'s to decide.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from documents.errors import FileTooLargeError
from documents.inspection import CHUNK_SIZE, upload_size_check

UPLOAD_FIELD = "file"
# Room for the multipart framing around the file (boundaries, part headers).
MULTIPART_ALLOWANCE = 64 * 1024


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary upload that knows the SHA-256 of its content."""

    sha256: str = ""


class DocumentUploadHandler(FileUploadHandler):
    """Streams the first ``file`` part to disk, hashing it; drops every other part.

    Applies ``upload_size_check``: before reading the body when Content-Length
    already says the file is too large, and otherwise at the first chunk past
    the limit, after deleting what it had written.
    """

    chunk_size = CHUNK_SIZE

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.upload: HashedUploadedFile | None = None
        self._hasher = hashlib.sha256()
        self._receiving = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # noqa: N803
        upload_size_check(content_length - MULTIPART_ALLOWANCE)
        return None  # the multipart parser goes on, feeding us the parts

    def new_file(self, field_name, file_name, content_type, *args, **kwargs):
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self._receiving = field_name == UPLOAD_FIELD and self.upload is None
        if self._receiving:
            self.upload = HashedUploadedFile(file_name, content_type, 0, self.charset)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if not self._receiving:
            return None  # another part: read and dropped
        try:
            upload_size_check(start + len(raw_data))
        except FileTooLargeError:
            self._discard()
            raise
        self._hasher.update(raw_data)
        self._file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile | None:
        if not self._receiving:
            return None
        self._receiving = False
        upload = self._file
        upload.seek(0)
        upload.size = file_size
        upload.sha256 = self._hasher.hexdigest()
        return upload

    @property
    def _file(self) -> HashedUploadedFile:
        """The file being received (``new_file`` made it for the ``file`` part)."""
        if self.upload is None:
            raise RuntimeError("no file part is being received")
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
        handler = DocumentUploadHandler(request)
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            data, files = DjangoMultiPartParser(meta, stream, [handler], encoding).parse()
        except (MultiPartParserError, SuspiciousOperation) as exc:
            raise ParseError(f"Multipart form parse error: {exc}") from None
        return parsers.DataAndFiles(data, files)
