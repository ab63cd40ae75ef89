from __future__ import annotations

import pytest
from django.db import connection

from notifications import selectors
from notifications.errors import NotificationNotFoundError
from notifications.models import Notification
from notifications.tests.factories import NotificationFactory, created_days_ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed(user):
    """The user's notifications, named by state and age (days)."""
    return {
        "read_new": created_days_ago(NotificationFactory(user=user, read=True), 1),
        "unread_old": created_days_ago(NotificationFactory(user=user), 5),
        "read_old": created_days_ago(NotificationFactory(user=user, read=True), 6),
        "unread_new": created_days_ago(NotificationFactory(user=user), 2),
    }


def _names(notifications, mixed) -> list[str]:
    by_id = {notification.pk: name for name, notification in mixed.items()}
    return [by_id[notification.pk] for notification in notifications]


def test_the_list_shows_unread_first_then_newest_first(user, other_user, mixed):
    NotificationFactory(user=other_user)

    listed = selectors.notification_list(user=user)

    assert _names(listed, mixed) == ["unread_new", "unread_old", "read_new", "read_old"]


def test_the_list_breaks_ties_by_id(user):
    first, second = NotificationFactory.create_batch(2, user=user)
    Notification.objects.update(created_at=first.created_at)

    assert list(selectors.notification_list(user=user)) == [second, first]


@pytest.mark.parametrize(
    ("unread", "expected"),
    [(True, ["unread_new", "unread_old"]), (False, ["read_new", "read_old"])],
)
def test_the_list_filters_by_read_state(user, other_user, mixed, unread, expected):
    NotificationFactory(user=other_user)
    NotificationFactory(user=other_user, read=True)

    assert _names(selectors.notification_list(user=user, unread=unread), mixed) == expected


def test_get_is_scoped_to_the_user(user, other_user):
    mine = NotificationFactory(user=user)
    theirs = NotificationFactory(user=other_user)

    assert selectors.notification_get(user=user, notification_id=mine.pk) == mine
    with pytest.raises(NotificationNotFoundError):
        selectors.notification_get(user=user, notification_id=theirs.pk)


def test_unread_count_counts_only_the_users_unread_ones(user, other_user, mixed):
    NotificationFactory.create_batch(3, user=other_user)

    assert selectors.notification_unread_count(user=user) == 2
    assert selectors.notification_unread_count(user=other_user) == 3
    assert selectors.notification_unread_count_by_user_id(user_id=user.pk) == 2


# --- The indexes, on PostgreSQL's planner -----------------------------------------


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("unread", "index"),
    [
        (None, "notifications_user_list"),
        (True, "notifications_user_unread"),
        (False, "notifications_user_list"),
    ],
)
def test_a_page_of_the_list_is_read_in_index_order(user, mixed, unread, index):
    page = selectors.notification_list(user=user, unread=unread)[:20]

    plan = _plan(page)

    assert index in plan
    assert "Sort" not in plan, plan


@pytest.mark.postgres
def test_the_unread_count_uses_the_partial_index(user, mixed):
    plan = _plan(Notification.objects.filter(user=user, read_at__isnull=True).values("pk"))

    assert "notifications_user_unread" in plan
