"""The sweep of stored files that no document references (an upload killed midway)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from documents import services
from documents.models import DocumentMetadata
from documents.tests.factories import DocumentFactory, upload
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture(params=["disk", "memory"])
def store(request, settings, monkeypatch):
    """``store(name, age=...)``: a file in the default storage, last modified ``age`` ago.

    On local disk and in Django's in-memory storage, which has no paths: the
    sweep must use nothing but the storage API.
    """
    if request.param == "memory":
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        }

    def _store(name: str, *, age: timedelta) -> str:
        when = timezone.now() - age
        with monkeypatch.context() as patch:
            patch.setattr("django.core.files.storage.memory.now", lambda: when)
            stored = default_storage.save(name, ContentFile(b"content"))
        if request.param == "disk":
            os.utime(default_storage.path(stored), (when.timestamp(), when.timestamp()))
        return stored

    return _store


def test_old_orphans_are_deleted_recent_and_referenced_files_kept(store):
    old_orphan = store("documents/1/old-orphan.pdf", age=2 * HOUR)
    deep_orphan = store("documents/1/nested/old-orphan.txt", age=2 * HOUR)
    recent_orphan = store("documents/1/in-flight.pdf", age=timedelta(minutes=5))
    referenced = store("documents/2/kept.pdf", age=timedelta(days=30))
    DocumentFactory(file_path=referenced)
    elsewhere = store("avatars/old.png", age=timedelta(days=30))

    removed = services.document_orphan_files_sweep(older_than=HOUR)

    assert sorted(removed) == sorted([old_orphan, deep_orphan])
    assert not default_storage.exists(old_orphan)
    assert not default_storage.exists(deep_orphan)
    for kept in (recent_orphan, referenced, elsewhere):
        assert default_storage.exists(kept)
    assert services.document_orphan_files_sweep(older_than=HOUR) == []


def test_dry_run_deletes_nothing(store):
    orphan = store("documents/1/orphan.pdf", age=2 * HOUR)

    assert services.document_orphan_files_sweep(older_than=HOUR, dry_run=True) == [orphan]
    assert default_storage.exists(orphan)


def test_sweep_of_an_empty_storage_finds_nothing():
    assert services.document_orphan_files_sweep(older_than=HOUR) == []


class Killed(BaseException):
    """What kill -9 looks like to the code after it: nothing runs, no except clause."""


def test_the_file_of_an_upload_killed_before_its_row_is_swept_after_the_grace(
    settings, monkeypatch
):
    def killed(**fields):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(DocumentMetadata.objects, "create", killed)
        with pytest.raises(Killed):
            services.document_upload(user=UserFactory(), file=upload("notes.txt", b"notes"))
    [left] = [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]
    assert not DocumentMetadata.objects.exists()

    assert services.document_orphan_files_sweep(older_than=HOUR) == []  # may be in flight
    an_hour_ago = (timezone.now() - HOUR - timedelta(seconds=1)).timestamp()
    os.utime(left, (an_hour_ago, an_hour_ago))
    assert services.document_orphan_files_sweep(older_than=HOUR) == [
        str(left.relative_to(settings.MEDIA_ROOT))
    ]
    assert not left.exists()


def test_command_reports_what_it_deleted(store, capsys):
    orphan = store("documents/3/orphan.md", age=3 * HOUR)
    recent = store("documents/3/recent.md", age=timedelta(minutes=30))

    call_command("sweep_orphan_files", "--dry-run")
    assert capsys.readouterr().out.splitlines() == [
        f"Would delete {orphan}",
        "Would delete 1 orphan file(s).",
    ]
    assert default_storage.exists(orphan)

    call_command("sweep_orphan_files", "--older-than", "7200")
    assert capsys.readouterr().out.splitlines() == [
        f"Deleted {orphan}",
        "Deleted 1 orphan file(s).",
    ]
    assert not default_storage.exists(orphan)
    assert default_storage.exists(recent)


def test_command_refuses_a_grace_too_short_for_uploads_in_flight():
    with pytest.raises(CommandError, match="at least 60 seconds"):
        call_command("sweep_orphan_files", "--older-than", "5")
