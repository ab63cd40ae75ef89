"""Work that other apps register to run when something happens to an account.

``users`` stands below every feature app and imports none of them. A feature
app whose data needs more than a database cascade when its owner goes (files
to remove, a feed to write) registers a step here from its
``AppConfig.ready()``; ``users.services.user_delete`` runs the steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

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
