"""Documents' part of the account archive (``documents.archive``)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage

from documents import services
from documents.archive import document_archive_files, document_archive_path
from documents.tests.factories import DocumentFactory, pdf_bytes, upload
from users.hooks import user_export_contributors

pytestmark = pytest.mark.django_db


def _read(content) -> bytes:
    if hasattr(content, "read"):
        with content:
            return content.read()
    return b"".join(content)


def _files(user) -> dict[str, bytes]:
    return {path: _read(content) for path, content in document_archive_files(user)}


def test_documents_register_their_contribution():
    assert document_archive_files in user_export_contributors()


def test_each_file_then_the_index_of_every_document(user, other_user):
    first = services.document_upload(user=user, file=upload("guide.pdf", pdf_bytes()))
    second = services.document_upload(user=user, file=upload("notes.md", b"# Notes\n"))
    services.document_upload(user=other_user, file=upload("theirs.pdf", pdf_bytes(2)))

    files = _files(user)

    assert list(files) == [
        f"documents/files/{first.pk}-guide.pdf",
        f"documents/files/{second.pk}-notes.md",
        "documents/index.json",
    ]
    assert files[f"documents/files/{first.pk}-guide.pdf"] == pdf_bytes()
    index = json.loads(files["documents/index.json"])["documents"]
    assert [(d["id"], d["filename"], d["sha256"]) for d in index] == [
        (first.pk, "guide.pdf", first.sha256),
        (second.pk, "notes.md", second.sha256),
    ]
    assert index[0]["archive_path"] == f"documents/files/{first.pk}-guide.pdf"
    assert {"status", "file_size", "uploaded_at", "file_type"} <= index[0].keys()


def test_a_missing_stored_file_is_left_out_and_says_so(user):
    document = services.document_upload(user=user, file=upload("gone.pdf", pdf_bytes()))
    default_storage.delete(document.file_path)

    files = _files(user)

    assert list(files) == ["documents/index.json"]
    assert json.loads(files["documents/index.json"])["documents"][0]["archive_path"] is None


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("보고서 2024.pdf", "보고서 2024.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ('a/b\\c:d*?"<>|.txt', "a_b_c_d_.txt"),
        ("...", "file"),
    ],
)
def test_archive_paths_stay_in_their_folder(filename, expected):
    document = DocumentFactory.build(pk=7, filename=filename)

    assert document_archive_path(document) == f"documents/files/7-{expected}"
