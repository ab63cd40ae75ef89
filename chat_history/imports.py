"""Writes of an import: the job, and the sessions it creates.

Kept apart from ``chat_history.services`` as search and stats are from the
selectors; the entry points are named like services (``chat_import_*``).

``chat_import_start`` takes an upload. A file up to
``CHAT_IMPORT_INLINE_MAX_SIZE`` is read, checked (``chat_history.importers``:
a wrong file is a 400 and nothing is written, no job either) and imported
within the request. A larger one is stored in the default storage and left
to a pending ``ImportJob``: a thread started once the job's row commits
imports it, and ``manage.py process_imports`` (from cron) takes up any job
whose process died (its lease expired), so a job survives without a broker.

Whoever runs a job holds a lease on it (``lease_expires_at``, renewed at each
checkpoint) and fences its writes with the attempt number it claimed: once
another worker has taken the job over, the first one's next checkpoint
fails and rolls back. Each conversation is written in one transaction,
together with the job's progress every few conversations, so a job taken over
resumes after the last checkpoint; a conversation it wrote past that point is
found by its ``import_key`` and reported as already imported. The stored file
is deleted once the job has finished.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from chat_history import events, services
from chat_history.errors import ImportFileTooLargeError
from chat_history.importers import Conversation, Message, read_conversations
from chat_history.models import (
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    ChatSessionMember,
    ImportJob,
    ImportStatus,
    Role,
)
from chat_history.serializers import feedback_data
from config.exceptions import SERVER_ERROR, error_answer
from users import selectors as user_selectors
from users.models import User

logger = logging.getLogger(__name__)

IMPORT_FILES_ROOT = "chat-imports"
# The report lists this many skipped items at most; the counts cover them all.
REPORT_MAX_SKIPPED = 1000
# A checkpoint (progress, report, lease) after this many conversations or seconds.
CHECKPOINT_CONVERSATIONS = 25
CHECKPOINT_SECONDS = 2.0
_WRITE_BATCH = 1000


class LeaseLostError(Exception):
    """Another worker took the job over; this one stops without writing more."""


# --- Starting an import -------------------------------------------------------------


def chat_import_start(*, user: User, file: UploadedFile, format: str | None = None) -> ImportJob:
    """Import an uploaded file of conversations for ``user``; the job says how it went.

    413 ``file_too_large`` past ``CHAT_IMPORT_MAX_UPLOAD_SIZE``. Up to
    ``CHAT_IMPORT_INLINE_MAX_SIZE`` the import runs now: a file that is not
    a valid export raises ``ValidationError`` (400) before anything is
    written, and the job returned has finished. A larger file is stored and
    the job returned is pending; its thread starts once this commits.
    """
    size = file.size or 0
    if size > settings.CHAT_IMPORT_MAX_UPLOAD_SIZE:
        raise ImportFileTooLargeError(max_size=settings.CHAT_IMPORT_MAX_UPLOAD_SIZE)
    if not size:
        raise ValidationError({"file": ["The file is empty."]})
    filename = os.path.basename(file.name or "")[:255]
    if size <= settings.CHAT_IMPORT_INLINE_MAX_SIZE:
        result = read_conversations(file.read(), format=format)
        job = ImportJob.objects.create(
            user=user,
            format=result.format,
            filename=filename,
            file_size=size,
            status=ImportStatus.RUNNING,
            attempts=1,
            started_at=timezone.now(),
            lease_expires_at=_lease_end(),
        )
        _job_import(job, result.conversations)
        return job
    return _job_queue(user=user, file=file, filename=filename, size=size, format=format)


def _job_queue(
    *, user: User, file: UploadedFile, filename: str, size: int, format: str | None
) -> ImportJob:
    stored_name = default_storage.save(
        f"{IMPORT_FILES_ROOT}/{user.pk}/{uuid.uuid4().hex}.json", file
    )
    try:
        with transaction.atomic():
            job = ImportJob.objects.create(
                user=user,
                format=format or "",
                filename=filename,
                file_size=size,
                file_path=stored_name,
            )
            if settings.CHAT_IMPORT_THREAD:
                job_pk = job.pk
                transaction.on_commit(lambda: _thread_start(job_pk))
    except Exception:
        default_storage.delete(stored_name)
        raise
    return job


def _thread_start(job_pk: int) -> None:
    threading.Thread(
        target=_thread_main, args=(job_pk,), name=f"chat-import-{job_pk}", daemon=True
    ).start()


def _thread_main(job_pk: int) -> None:
    try:
        chat_import_process(job_pk=job_pk, worker=f"thread:{os.getpid()}")
    except Exception:  # the thread's last word; process_imports will retry the job
        logger.exception("import job %s failed in its thread", job_pk)
    finally:
        connections.close_all()  # this thread's connections only


# --- Running a job ---------------------------------------------------------------------


def chat_import_claim_next(*, worker: str) -> ImportJob | None:
    """Lease the oldest job that is pending or whose lease expired; None if none is.

    On PostgreSQL the candidate is locked with ``FOR UPDATE SKIP LOCKED``, so
    concurrent claimers take different jobs without waiting; on SQLite the
    IMMEDIATE transaction serialises them. A job that has used up
    ``CHAT_IMPORT_MAX_ATTEMPTS`` fails instead.
    """
    while True:
        with transaction.atomic():
            job = (
                ImportJob.objects.select_for_update(skip_locked=True)
                .filter(_claimable())
                .order_by("created_at", "id")
                .first()
            )
            if job is None:
                return None
            if _claim(job, worker=worker):
                return job


def chat_import_process(*, job_pk: int, worker: str) -> ImportJob | None:
    """Claim the job ``job_pk`` if it is still to do, and run it; None if
    someone else has it (or it has finished)."""
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(_claimable(), pk=job_pk)
            .first()
        )
        if job is None or not _claim(job, worker=worker):
            return None
    return chat_import_run(job=job)


def _claimable() -> Q:
    return Q(status=ImportStatus.PENDING) | Q(
        status=ImportStatus.RUNNING, lease_expires_at__lt=timezone.now()
    )


def _claim(job: ImportJob, *, worker: str) -> bool:
    """Lease the locked ``job`` (True), or fail it if it cannot be run again."""
    if job.attempts >= settings.CHAT_IMPORT_MAX_ATTEMPTS or not job.file_path:
        detail = (
            f"The import was interrupted {job.attempts} times and was given up."
            if job.file_path
            else "The import was interrupted; upload the file again "
            "(the conversations already imported are skipped)."
        )
        _job_fail(job, {"detail": detail, "code": "import_interrupted"})
        return False
    job.status = ImportStatus.RUNNING
    job.attempts += 1
    job.lease_expires_at = _lease_end()
    job.started_at = job.started_at or timezone.now()
    job.save(update_fields=["status", "attempts", "lease_expires_at", "started_at", "updated_at"])
    logger.info("import job %s claimed by %s (attempt %s)", job.job_id, worker, job.attempts)
    return True


def chat_import_run(*, job: ImportJob) -> ImportJob:
    """Read, check and import the stored file of a job this worker has claimed.

    A file that is not a valid export fails the job with the 400 the request
    would have answered (``job.error``), and nothing is written. Any other
    error leaves the job to be taken up again once the lease is released (at
    once here); the attempts are limited.
    """
    try:
        with default_storage.open(job.file_path, "rb") as stored:
            result = read_conversations(stored.read(), format=job.format or None)
    except ValidationError as exc:
        answer = error_answer(exc)
        with transaction.atomic():
            _job_fail(job, answer.body if answer else SERVER_ERROR.body)
        return job
    except FileNotFoundError:
        with transaction.atomic():
            _job_fail(job, {"detail": "The uploaded file is gone.", "code": "import_file_missing"})
        return job
    if not job.format:
        job.format = result.format
        job.save(update_fields=["format", "updated_at"])
    try:
        _job_import(job, result.conversations)
    except LeaseLostError:
        logger.warning("import job %s was taken over by another worker", job.job_id)
    except Exception:
        logger.exception("import job %s failed; it will be retried", job.job_id)
        ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
            lease_expires_at=timezone.now()
        )
        raise
    return job


def _job_fail(job: ImportJob, error: dict[str, Any]) -> None:
    job.status = ImportStatus.FAILED
    job.error = error
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    _file_forget(job)
    job.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "lease_expires_at",
            "file_path",
            "updated_at",
        ]
    )


def _file_forget(job: ImportJob) -> None:
    """Delete the job's stored file once the transaction commits."""
    if job.file_path:
        name = job.file_path
        transaction.on_commit(lambda: default_storage.delete(name), robust=True)
        job.file_path = ""


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.CHAT_IMPORT_LEASE_SECONDS)


# --- Importing the conversations ---------------------------------------------------------


@dataclass
class _Progress:
    """What a job has done, saved at each checkpoint."""

    job: ImportJob
    imported: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    since_checkpoint: int = 0
    checkpoint_at: float = field(default_factory=time.monotonic)

    def skip(self, items: list[dict[str, Any]]) -> None:
        self.job.items_skipped += len(items)
        room = REPORT_MAX_SKIPPED - len(self.skipped)
        self.skipped.extend(items[: max(room, 0)])

    def due(self) -> bool:
        return (
            self.since_checkpoint >= CHECKPOINT_CONVERSATIONS
            or time.monotonic() - self.checkpoint_at >= CHECKPOINT_SECONDS
        )


def _job_import(job: ImportJob, conversations: list[Conversation]) -> None:
    """Write each conversation not imported yet, resuming after the job's
    last checkpoint; then mark the job succeeded."""
    progress = _Progress(
        job,
        imported=list(job.report.get("imported", [])),
        skipped=list(job.report.get("skipped", [])),
    )
    job.conversations_total = len(conversations)
    seen = {c.import_key for c in conversations[: job.conversations_done]}
    for conversation in conversations[job.conversations_done :]:
        with transaction.atomic():
            _conversation_import(progress, conversation, duplicate=conversation.import_key in seen)
            seen.add(conversation.import_key)
            job.conversations_done += 1
            progress.since_checkpoint += 1
            if progress.due():
                _checkpoint(progress)
    with transaction.atomic():
        job.status = ImportStatus.SUCCEEDED
        job.finished_at = timezone.now()
        job.lease_expires_at = None
        _file_forget(job)
        _checkpoint(progress)


def _conversation_import(progress: _Progress, conversation: Conversation, *, duplicate: bool):
    job = progress.job
    label = {"source_id": conversation.source_id, "title": conversation.title, "item": None}
    if duplicate:
        reason = "It appears earlier in the same file."
    elif not conversation.importable:
        reason = None  # its own entry in ``skipped`` says why
    else:
        existing = (
            ChatSession.objects.filter(user_id=job.user_id, import_key=conversation.import_key)
            .values_list("session_id", flat=True)
            .first()
        )
        reason = f"Already imported (session {existing})." if existing else None
        if existing is None:
            session = _conversation_write(user_id=job.user_id, conversation=conversation)
            if session is None:  # a concurrent import of the same conversation won
                reason = "Already imported (by another import running at the same time)."
            else:
                job.sessions_imported += 1
                job.messages_imported += len(conversation.messages)
                progress.imported.append(
                    {
                        "session_id": str(session.session_id),
                        "source_id": conversation.source_id,
                        "title": session.title,
                        "message_count": len(conversation.messages),
                    }
                )
                progress.skip([item.data() for item in conversation.skipped])
                return
    job.conversations_skipped += 1
    if reason is not None:
        progress.skip([{**label, "reason": reason}])
    else:
        progress.skip([item.data() for item in conversation.skipped])


_PROGRESS_FIELDS = [
    "status",
    "conversations_total",
    "conversations_done",
    "sessions_imported",
    "conversations_skipped",
    "messages_imported",
    "items_skipped",
    "report",
    "finished_at",
    "lease_expires_at",
    "file_path",
]


def _checkpoint(progress: _Progress) -> None:
    """Save the job's progress in the current transaction, if this worker
    still holds the job (else ``LeaseLostError``, rolling the transaction back)."""
    job = progress.job
    job.report = {"imported": progress.imported, "skipped": progress.skipped}
    if job.status == ImportStatus.RUNNING:
        job.lease_expires_at = _lease_end()
    values = {name: getattr(job, name) for name in _PROGRESS_FIELDS}
    job.updated_at = timezone.now()
    if not ImportJob.objects.filter(pk=job.pk, attempts=job.attempts).update(
        **values, updated_at=job.updated_at
    ):
        raise LeaseLostError()
    progress.since_checkpoint = 0
    progress.checkpoint_at = time.monotonic()


# --- Writing one conversation --------------------------------------------------------------


def _conversation_write(*, user_id: int, conversation: Conversation) -> ChatSession | None:
    """The conversation as a new session of ``user_id``, in the current
    transaction; None if the user already has it (``import_key``).

    Messages are inserted parents first, so ids grow along every path, then
    given their parents and original times (``bulk_create`` would stamp
    ``created_at`` with now). The derived columns are set as the services keep
    them: ``on_active_path`` along the path to the active leaf, the sibling
    positions among live replies, ``version``, the feedback copy; the
    session's counters by ``chat_session_counters_refresh``. Publishes
    ``session.created`` to the owner's group.
    """
    try:
        with transaction.atomic():
            session = services.chat_session_insert(
                user_id=user_id,
                activity=False,  # not this month's activity: see chat_session_insert
                import_key=conversation.import_key,
                title=conversation.title,
                instructions=conversation.instructions,
                archived=conversation.archived,
                pinned=conversation.pinned,
            )
    except IntegrityError:
        if ChatSession.objects.filter(user_id=user_id, import_key=conversation.import_key).exists():
            return None
        raise
    rows = _messages_write(session, conversation, author=_author(user_id))
    _revisions_write(session, conversation, rows)
    _feedback_write(session, conversation, rows)
    services.chat_session_counters_refresh(sessions=ChatSession.objects.filter(pk=session.pk))
    leaf = rows[conversation.active_leaf_key].pk if conversation.active_leaf_key else None
    ChatSession.objects.filter(pk=session.pk).update(
        created_at=conversation.created_at, updated_at=conversation.updated_at, active_leaf_id=leaf
    )
    session.refresh_from_db()
    # An imported conversation arrives read.
    ChatSessionMember.objects.filter(session_id=session.pk).update(
        last_read_message_id=session.last_message_id
    )
    session.my_last_read_message_id = session.last_message_id
    events.session_created(session)
    return session


def _author(user_id: int) -> tuple[int, str]:
    """The importing user, the author of every imported user message."""
    return user_id, user_selectors.user_usernames(user_ids=[user_id])[user_id]


def _messages_write(
    session: ChatSession, conversation: Conversation, *, author: tuple[int, str]
) -> dict[str, ChatMessage]:
    messages = conversation.messages
    on_path = _active_path(conversation)
    positions = _sibling_positions(messages)
    rows = ChatMessage.objects.bulk_create(
        [
            ChatMessage(
                session=session,
                role=message.role,
                author_id=author[0] if message.role == Role.USER else None,
                author_name=author[1] if message.role == Role.USER else "",
                content=message.content,
                metadata=message.metadata,
                client_message_id=message.client_message_id,
                deleted_at=message.deleted_at,
                on_active_path=message.key in on_path,
                sibling_index=positions[message.key][0],
                sibling_count=positions[message.key][1],
                version=len(message.versions) + 1,
                feedback=message.feedback and feedback_data(message.feedback),
            )
            for message in messages
        ],
        batch_size=_WRITE_BATCH,
    )
    by_key = {message.key: row for message, row in zip(messages, rows, strict=True)}
    for message, row in zip(messages, rows, strict=True):
        if message.parent_key is not None:
            row.parent_id = by_key[message.parent_key].pk
            if row.parent_id >= row.pk:  # the database gave ids out of order: never store it
                raise RuntimeError("imported messages did not get increasing ids")
        row.created_at, row.updated_at = message.created_at, message.updated_at
    ChatMessage.objects.bulk_update(
        rows, ["parent", "created_at", "updated_at"], batch_size=_WRITE_BATCH
    )
    return by_key


def _active_path(conversation: Conversation) -> set[str]:
    parents = {message.key: message.parent_key for message in conversation.messages}
    path = set()
    key = conversation.active_leaf_key
    while key is not None:
        path.add(key)
        key = parents[key]
    return path


def _sibling_positions(messages: list[Message]) -> dict[str, tuple[int, int]]:
    """(index, count) of each message among the live replies to its parent,
    in insertion (id) order. A trashed message counts itself in: the place it
    would take if restored."""
    live: dict[str | None, list[str]] = {}
    for message in messages:
        if message.deleted_at is None:
            live.setdefault(message.parent_key, []).append(message.key)
    order = {message.key: n for n, message in enumerate(messages)}
    positions = {}
    for message in messages:
        siblings = live.get(message.parent_key, [])
        if message.deleted_at is None:
            positions[message.key] = (siblings.index(message.key) + 1, len(siblings))
        else:
            before = sum(1 for key in siblings if order[key] < order[message.key])
            positions[message.key] = (before + 1, len(siblings) + 1)
    return positions


def _revisions_write(
    session: ChatSession, conversation: Conversation, rows: dict[str, ChatMessage]
) -> None:
    revisions = ChatMessageRevision.objects.bulk_create(
        [
            ChatMessageRevision(
                session=session,
                message=rows[message.key],
                number=number,
                content=version.content,
                written_at=version.written_at,
                edited_by_user_id=session.user_id if version.edited_by_owner else None,
                edited_by_label=version.edited_by,
            )
            for message in conversation.messages
            for number, version in enumerate(message.versions, start=1)
        ],
        batch_size=_WRITE_BATCH,
    )
    versions = [v for m in conversation.messages for v in m.versions]
    for revision, version in zip(revisions, versions, strict=True):
        revision.edited_at = version.edited_at  # auto_now_add stamped it with now
    ChatMessageRevision.objects.bulk_update(revisions, ["edited_at"], batch_size=_WRITE_BATCH)


def _feedback_write(
    session: ChatSession, conversation: Conversation, rows: dict[str, ChatMessage]
) -> None:
    rated = [message for message in conversation.messages if message.feedback is not None]
    created = ChatMessageFeedback.objects.bulk_create(
        [
            ChatMessageFeedback(
                session=session,
                message=rows[message.key],
                user_id=session.user_id,
                rating=message.feedback.rating,
                comment=message.feedback.comment,
                reasons=message.feedback.reasons,
            )
            for message in rated
            if message.feedback is not None
        ],
        batch_size=_WRITE_BATCH,
    )
    for row, message in zip(created, rated, strict=True):
        assert message.feedback is not None  # noqa: S101 - for the type checker
        row.created_at, row.updated_at = message.feedback.created_at, message.feedback.updated_at
    ChatMessageFeedback.objects.bulk_update(
        created, ["created_at", "updated_at"], batch_size=_WRITE_BATCH
    )
