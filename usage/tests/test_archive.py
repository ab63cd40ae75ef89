"""The ledger in the account archive."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from usage import archive
from usage.tests.factories import record_usage
from users import exports

pytestmark = pytest.mark.django_db


def test_the_archive_holds_my_records_one_per_line(user, other_user, monkeypatch):
    monkeypatch.setattr(archive, "BATCH_SIZE", 2)
    mine = [record_usage(user, prompt_tokens=n) for n in range(1, 6)]
    record_usage(other_user)

    zipped = zipfile.ZipFile(io.BytesIO(b"".join(exports.account_archive(user))))
    lines = zipped.read("usage/records.jsonl").decode().splitlines()

    assert [json.loads(line)["id"] for line in lines] == [record.pk for record in mine]
    first = json.loads(lines[0])
    assert (first["user_id"], first["prompt_tokens"], first["cost"]) == (
        user.pk,
        1,
        f"{mine[0].cost:.6f}",
    )


def test_no_usage_is_an_empty_file(user):
    zipped = zipfile.ZipFile(io.BytesIO(b"".join(exports.account_archive(user))))
    assert zipped.read("usage/records.jsonl") == b""
