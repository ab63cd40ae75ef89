from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import Notification
from notifications.tests.factories import NotificationFactory
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_notification_changelist"


def _listed(response) -> list[int]:
    return [notification.pk for notification in response.context["cl"].result_list]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_shows_user_kind_title_and_read_state(staff_client, user):
    NotificationFactory(user=user, title="report.pdf is ready")
    NotificationFactory(user=user, title="scan.pdf could not be processed", read=True)

    html = staff_client.get(reverse(CHANGELIST)).content.decode()

    for text in (user.email, "report.pdf is ready", "scan.pdf could not be processed"):
        assert text in html
    assert "Document processed" in html
    assert 'alt="True"' in html  # the read one's icon
    assert 'alt="False"' in html


@pytest.mark.parametrize(("value", "read"), [("yes", True), ("no", False)])
def test_the_read_state_filter(staff_client, user, value, read):
    notifications = {
        False: NotificationFactory(user=user),
        True: NotificationFactory(user=user, read=True),
    }

    response = staff_client.get(reverse(CHANGELIST), {"read": value})

    assert _listed(response) == [notifications[read].pk]


def test_the_kind_filter(staff_client, user):
    NotificationFactory(user=user)
    budget = NotificationFactory(user=user, kind="budget.threshold", title="80% of your budget")

    response = staff_client.get(reverse(CHANGELIST), {"kind__exact": "budget.threshold"})

    assert _listed(response) == [budget.pk]


def test_search_by_user_email_and_title(staff_client, user):
    mine = NotificationFactory(user=user, title="report.pdf is ready")
    other = NotificationFactory(
        user=UserFactory(email="someone@example.org"), title="x.md is ready"
    )

    assert _listed(staff_client.get(reverse(CHANGELIST), {"q": "someone@example"})) == [other.pk]
    assert _listed(staff_client.get(reverse(CHANGELIST), {"q": "report.pdf"})) == [mine.pk]


def test_the_list_costs_the_same_for_many_notifications(staff_client, user):
    NotificationFactory(user=user)
    few = _queries(staff_client, reverse(CHANGELIST))
    NotificationFactory.create_batch(10)

    assert _queries(staff_client, reverse(CHANGELIST)) == few


def test_operators_can_look_but_not_add_change_or_delete(staff_client, user):
    notification = NotificationFactory(user=user)

    page = staff_client.get(
        reverse("admin:notifications_notification_change", args=[notification.pk])
    )

    assert page.status_code == 200
    assert notification.title in page.content.decode()
    assert staff_client.get(reverse("admin:notifications_notification_add")).status_code == 403
    delete = reverse("admin:notifications_notification_delete", args=[notification.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert Notification.objects.filter(pk=notification.pk).exists()
