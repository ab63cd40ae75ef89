"""Work that other apps register to run when something happens to an account.

``users`` stands below every feature app and imports none of them. A feature
app whose data needs more than a database cascade when its owner goes (files
to remove, a feed to write) registers a step here from its
``AppConfig.ready()``; ``users.services.user_delete`` runs the steps.
Likewise a feature app adds its part of the account archive (data
portability) with ``on_user_export``; ``users.exports.account_archive`` writes
every contribution into the one zip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from users.models import User


class UserDeletionStep(Protocol):
    def __call__(self, *, user: User) -> object: ...


_user_deletion_steps: list[UserDeletionStep] = []


def on_user_delete(step: UserDeletionStep) -> UserDeletionStep:
    """Register ``step(user=user)`` to run inside ``user_delete``'s transaction, before
    the account row is deleted. Registering the same step twice keeps one."""
    if step not in _user_deletion_steps:
        _user_deletion_steps.append(step)
    return step


def user_deletion_steps() -> tuple[UserDeletionStep, ...]:
    return tuple(_user_deletion_steps)


# An archive member's content: chunks of bytes, or an open binary file (read in
# chunks, then closed by the archive writer).
ArchiveContent = Iterator[bytes] | BinaryIO


class UserExportContributor(Protocol):
    def __call__(self, user: User) -> Iterator[tuple[str, ArchiveContent]]: ...


_user_export_contributors: list[UserExportContributor] = []


def on_user_export(contributor: UserExportContributor) -> UserExportContributor:
    """Register ``contributor(user)``, which yields ``(archive path, content)`` for
    each file it adds to the user's account archive, lazily: the archive is
    streamed, so open a file or read a batch only when asked for the next one.
    Paths are relative and prefixed by the app's own folder (``chats/...``).
    Registering the same contributor twice keeps one."""
    if contributor not in _user_export_contributors:
        _user_export_contributors.append(contributor)
    return contributor


def user_export_contributors() -> tuple[UserExportContributor, ...]:
    return tuple(_user_export_contributors)
