"""What documents add to the account archive (``users.exports``).

Each document's original file, ``documents/files/<id>-<name>``, read from the
default storage in chunks, then ``documents/index.json``: every document's
metadata (the REST detail body, its SHA-256, and ``archive_path``, the file's
path in the archive, or null when the stored file was missing). Registered
with ``users.hooks.on_user_export`` by ``DocumentsConfig.ready()``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from django.core.files.storage import default_storage

from core.streaming import json_chunks
from documents import selectors
from documents.models import DocumentMetadata
from documents.serializers import DocumentDetailSerializer
from users.hooks import ArchiveContent
from users.models import User

logger = logging.getLogger(__name__)

FILES_FOLDER = "documents/files"
_UNSAFE = re.compile(r"[^\w.\- ]+")
_NAME_MAX = 120


def document_archive_files(user: User) -> Iterator[tuple[str, ArchiveContent]]:
    missing: set[int] = set()
    for document in selectors.document_iter_owned(user_id=user.pk):
        try:
            handle = default_storage.open(document.file_path, "rb")
        except FileNotFoundError:
            logger.warning("document %s has no stored file; left out of the archive", document.pk)
            missing.add(document.pk)
            continue
        yield document_archive_path(document), handle
    yield "documents/index.json", _index(user, missing=missing)


def document_archive_path(document: DocumentMetadata) -> str:
    """``documents/files/<id>-<name>``: the id keeps names unique, and the name
    keeps letters (any script), digits, ``.``, ``-``, ``_`` and spaces only."""
    name = _UNSAFE.sub("_", document.filename).strip(" .")[-_NAME_MAX:] or "file"
    return f"{FILES_FOLDER}/{document.pk}-{name}"


def _index(user: User, *, missing: set[int]) -> Iterator[bytes]:
    entries = (
        [
            {
                **DocumentDetailSerializer(document).data,
                "sha256": document.sha256,
                "archive_path": (
                    None if document.pk in missing else document_archive_path(document)
                ),
            }
        ]
        for document in selectors.document_iter_owned(user_id=user.pk)
    )
    return json_chunks('{"documents": [', entries, "]}")
