"""The signed-in user's dashboard (seed 001): what each app maintains, put together."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from chat_history.selectors import session_list
from documents.selectors import document_status_counts
from usage.selectors import usage_dashboard_figures

if TYPE_CHECKING:
    from users.models import User

RECENT_SESSIONS = 5


def dashboard_get(*, user: User, today: date | None = None) -> dict[str, Any]:
    """Recent sessions, activity and usage totals this month and overall, usage
    per day for the last 30 days, documents by status.

    Four queries, whatever the size of the history: the usage figures come
    from the monthly and daily aggregates (``usage.selectors``), never from
    the ledger or the messages.
    """
    today = today or timezone.now().date()
    recent = session_list(actor=user).order_by("-updated_at", "-id")[:RECENT_SESSIONS]
    return {
        "recent_sessions": list(recent),
        **usage_dashboard_figures(user_id=user.pk, today=today),
        "documents": document_status_counts(user=user),
    }
