from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import services
from notifications.errors import NotificationNotFoundError
from notifications.models import TITLE_MAX_LENGTH, Notification, NotificationKind
from notifications.tests.factories import NotificationFactory, created_days_ago
from realtime.publish import user_group

pytestmark = pytest.mark.django_db


def _create(user, **fields) -> Notification:
    values = {
        "user_id": user.pk,
        "kind": NotificationKind.DOCUMENT_PROCESSED,
        "title": "report.pdf is ready",
        "data": {"document_id": 12},
        **fields,
    }
    return services.notification_create(**values)


# --- Create ---------------------------------------------------------------------


def test_create_stores_an_unread_notification_and_publishes_it_with_the_count(
    user, published, django_capture_on_commit_callbacks
):
    NotificationFactory(user=user)
    NotificationFactory(user=user, read=True)

    with django_capture_on_commit_callbacks(execute=True):
        notification = _create(user, body="12 chunks.")
        assert published == []  # only after commit

    notification.refresh_from_db()
    assert (notification.kind, notification.title, notification.body) == (
        "document.processed",
        "report.pdf is ready",
        "12 chunks.",
    )
    assert notification.data == {"document_id": 12}
    assert notification.read_at is None
    [(group, event)] = published
    assert group == user_group(user.pk)
    assert event["type"] == "notification.created"
    assert event["unread_count"] == 2
    assert event["notification"] == {
        "id": notification.pk,
        "kind": "document.processed",
        "title": "report.pdf is ready",
        "body": "12 chunks.",
        "data": {"document_id": 12},
        "read_at": None,
        "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
    }


def _create_in_a_change_that_fails(user) -> None:
    with transaction.atomic():
        _create(user)
        raise RuntimeError("the caller's change failed")


def test_create_joins_the_callers_transaction(user, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        _create_in_a_change_that_fails(user)

    assert not Notification.objects.exists()
    assert published == []


def test_create_defaults_to_no_body_and_empty_data(user):
    notification = services.notification_create(
        user_id=user.pk, kind=NotificationKind.BUDGET_THRESHOLD, title="80% of your budget"
    )

    assert (notification.body, notification.data) == ("", {})


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"kind": "document.lost"}, "document.lost"), ({"title": "  "}, "title")],
)
def test_create_refuses_an_unknown_kind_or_a_blank_title(user, fields, message):
    with pytest.raises(ValueError, match=message):
        _create(user, **fields)

    assert not Notification.objects.exists()


def test_create_cuts_a_title_that_is_too_long(user):
    notification = _create(user, title="x" * 400)

    assert len(notification.title) == TITLE_MAX_LENGTH
    assert notification.title.endswith("…")


@pytest.mark.parametrize(
    "fields", [{"kind": "document.lost"}, {"title": ""}], ids=["kind", "title"]
)
def test_the_database_refuses_an_unknown_kind_or_an_empty_title(user, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationFactory(user=user, **fields)


# --- Read -----------------------------------------------------------------------


def test_read_marks_it_and_tells_the_users_other_tabs(
    user, published, django_capture_on_commit_callbacks
):
    notification = NotificationFactory(user=user)
    NotificationFactory(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        read = services.notification_read(user=user, notification_id=notification.pk)

    assert read.read_at is not None
    notification.refresh_from_db()
    assert notification.read_at == read.read_at
    [(group, event)] = published
    assert group == user_group(user.pk)
    assert event == {
        "type": "notifications.read",
        "ids": [notification.pk],
        "read_at": read.read_at.isoformat().replace("+00:00", "Z"),
        "unread_count": 1,
    }


def test_reading_again_keeps_the_first_read_at_and_publishes_nothing(
    user, published, django_capture_on_commit_callbacks
):
    notification = NotificationFactory(user=user, read=True)
    first = notification.read_at

    with django_capture_on_commit_callbacks(execute=True):
        read = services.notification_read(user=user, notification_id=notification.pk)

    assert read.read_at == first
    assert published == []


def test_reading_someone_elses_notification_is_not_found(user, other_user, published):
    theirs = NotificationFactory(user=other_user)

    with pytest.raises(NotificationNotFoundError):
        services.notification_read(user=user, notification_id=theirs.pk)
    with pytest.raises(NotificationNotFoundError):
        services.notification_read(user=user, notification_id=theirs.pk + 1000)

    theirs.refresh_from_db()
    assert theirs.read_at is None


# --- Read all -------------------------------------------------------------------


def test_read_all_marks_only_the_users_unread_ones_in_one_update(
    user, other_user, published, django_capture_on_commit_callbacks, django_assert_num_queries
):
    unread = NotificationFactory.create_batch(3, user=user)
    already = NotificationFactory(user=user, read=True)
    theirs = NotificationFactory(user=other_user)

    # The update and the event's count, inside a savepoint (its two statements).
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(4):
        marked = services.notification_read_all(user=user)

    assert marked == 3
    read_ats = set(
        Notification.objects.filter(pk__in=[n.pk for n in unread]).values_list("read_at", flat=True)
    )
    assert len(read_ats) == 1  # one UPDATE, one instant
    assert None not in read_ats
    assert Notification.objects.get(pk=already.pk).read_at == already.read_at
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    [(group, event)] = published
    assert group == user_group(user.pk)
    assert event == {
        "type": "notifications.read",
        "ids": "all",
        "read_at": read_ats.pop().isoformat().replace("+00:00", "Z"),
        "unread_count": 0,
    }


def test_read_all_with_nothing_unread_marks_none_and_publishes_nothing(
    user, published, django_capture_on_commit_callbacks
):
    NotificationFactory(user=user, read=True)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.notification_read_all(user=user) == 0

    assert published == []


# --- Delete ---------------------------------------------------------------------


def test_delete_removes_it_and_publishes_the_new_count(
    user, published, django_capture_on_commit_callbacks
):
    notification = NotificationFactory(user=user)
    NotificationFactory(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        services.notification_delete(user=user, notification_id=notification.pk)

    assert not Notification.objects.filter(pk=notification.pk).exists()
    assert published == [
        (
            user_group(user.pk),
            {"type": "notification.deleted", "notification_id": notification.pk, "unread_count": 1},
        )
    ]


def test_deleting_someone_elses_notification_is_not_found(user, other_user, published):
    theirs = NotificationFactory(user=other_user)

    with pytest.raises(NotificationNotFoundError):
        services.notification_delete(user=user, notification_id=theirs.pk)

    assert Notification.objects.filter(pk=theirs.pk).exists()


def test_a_users_notifications_go_with_the_account(user):
    NotificationFactory.create_batch(2, user=user)

    user.delete()

    assert not Notification.objects.exists()


# --- Retention ------------------------------------------------------------------


def test_prune_deletes_only_read_notifications_older_than_the_retention(user, other_user):
    for owner in (user, user, user, user, other_user):
        created_days_ago(NotificationFactory(user=owner, read=True), 31)
    old_unread = created_days_ago(NotificationFactory(user=user), 400)
    recent_read = created_days_ago(NotificationFactory(user=user, read=True), 29)

    deleted = services.notification_prune(older_than=timedelta(days=30), batch_size=2)

    assert deleted == 5
    assert set(Notification.objects.values_list("pk", flat=True)) == {
        old_unread.pk,
        recent_read.pk,
    }


def test_prune_works_in_batches(user, django_assert_num_queries):
    for _ in range(5):
        created_days_ago(NotificationFactory(user=user, read=True), 10)

    # Ids then delete, three times (2 + 2 + 1: the short batch is the last).
    with django_assert_num_queries(6):
        assert services.notification_prune(older_than=timedelta(days=1), batch_size=2) == 5


def test_prune_with_nothing_to_delete(user):
    NotificationFactory(user=user, read=True)
    NotificationFactory(user=user, read_at=timezone.now() - timedelta(days=100))

    assert services.notification_prune(older_than=timedelta(days=30)) == 0
    assert Notification.objects.count() == 2


# --- Concurrency (PostgreSQL: real row locks between connections) -------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tabs_reading_at_once_mark_it_once_and_publish_once(user, published, run_concurrently):
    notification = NotificationFactory(user=user)

    results = run_concurrently(
        2, lambda _: services.notification_read(user=user, notification_id=notification.pk)
    )

    assert not [result for result in results if isinstance(result, Exception)]
    assert results[0].read_at == results[1].read_at
    notification.refresh_from_db()
    assert notification.read_at == results[0].read_at
    assert [event["type"] for _, event in published] == ["notifications.read"]
