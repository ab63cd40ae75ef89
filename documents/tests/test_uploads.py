"""The upload handler: streaming to disk, hashing, stopping at the limit."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from documents import uploads
from documents.errors import FileTooLargeError


def _feed(handler, parts: list[tuple[str, bytes]]):
    files = []
    for field, content in parts:
        handler.new_file(field, f"{field}.txt", "text/plain", len(content))
        handler.receive_data_chunk(content, 0)
        files.append(handler.file_complete(len(content)))
    return files


def test_handler_keeps_the_first_file_part_with_its_hash():
    handler = uploads.DocumentUploadHandler()

    kept, extra, second = _feed(handler, [("file", b"hello"), ("other", b"x"), ("file", b"y")])

    assert kept.read() == b"hello"
    assert kept.size == 5
    assert kept.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert (extra, second) == (None, None)


def test_handler_stops_at_the_limit_and_deletes_what_it_wrote(settings):
    settings.DOCUMENT_MAX_UPLOAD_SIZE = 10
    handler = uploads.DocumentUploadHandler()
    handler.new_file("file", "big.txt", "text/plain", None)
    handler.receive_data_chunk(b"x" * 8, 0)
    path = handler.upload.temporary_file_path()

    with pytest.raises(FileTooLargeError):
        handler.receive_data_chunk(b"x" * 8, 8)

    assert not os.path.exists(path)


def test_handler_refuses_a_body_declared_too_large_before_reading_it(settings):
    settings.DOCUMENT_MAX_UPLOAD_SIZE = 10
    handler = uploads.DocumentUploadHandler()
    body = io.BytesIO(b"never read")

    with pytest.raises(FileTooLargeError):
        handler.handle_raw_input(body, {}, 10 + uploads.MULTIPART_ALLOWANCE + 1, b"b")

    assert body.tell() == 0
    assert handler.handle_raw_input(body, {}, 10 + uploads.MULTIPART_ALLOWANCE, b"b") is None
