"""The account archive, written as a stream (``users.exports``)."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from users import exports, services
from users.hooks import _user_export_contributors, on_user_export

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-" + "Hh45" * 12


def test_nothing_is_read_before_the_first_chunk(user, django_assert_num_queries):
    with django_assert_num_queries(0):
        exports.account_archive(user)


def test_profile_json_names_the_hint_never_the_key(user):
    services.api_key_set(user=user, api_key=OPENAI_KEY)
    user.refresh_from_db()

    data = json.loads(
        zipfile.ZipFile(io.BytesIO(b"".join(exports.account_archive(user)))).read("profile.json")
    )

    assert data["has_api_key"] is True
    assert data["api_key_hint"].endswith(OPENAI_KEY[-4:])
    assert OPENAI_KEY not in json.dumps(data)
    assert {"id", "username", "email", "date_joined", "preferred_language"} <= data.keys()
    assert not any("encrypted" in key or key == "api_key" for key in data)


@pytest.fixture
def contributor(monkeypatch):
    """Register a contributor for one test only."""
    monkeypatch.setattr("users.hooks._user_export_contributors", list(_user_export_contributors))

    def _register(function):
        on_user_export(function)
        return function

    return _register


def test_memory_stays_at_one_piece_of_one_member(user, contributor):
    size = 3 * 1024 * 1024
    big = os.urandom(size)  # incompressible: the deflated size is the size

    @contributor
    def big_file(user):
        yield "test/big.bin", io.BytesIO(big)

    chunks = list(exports.account_archive(user))

    assert max(map(len, chunks)) <= 2 * exports.CHUNK_SIZE
    assert len(chunks) > size // (2 * exports.CHUNK_SIZE)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("test/big.bin") == big


def test_a_contributor_may_yield_chunks_and_files_are_closed(user, contributor):
    handle = io.BytesIO(b"file content")

    @contributor
    def two_files(user):
        yield "test/chunks.txt", iter([b"one ", b"two"])
        yield "test/file.bin", handle

    archive = zipfile.ZipFile(io.BytesIO(b"".join(exports.account_archive(user))))

    assert archive.read("test/chunks.txt") == b"one two"
    assert archive.read("test/file.bin") == b"file content"
    assert handle.closed
    assert archive.namelist()[0] == "profile.json"
