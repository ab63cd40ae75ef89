from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from notifications.models import Notification
from notifications.tests.factories import NotificationFactory, created_days_ago
from users.models import Scope

pytestmark = pytest.mark.django_db

LIST = reverse("notifications:notification-list")
READ_ALL = reverse("notifications:notification-read-all")
UNREAD_COUNT = reverse("notifications:notification-unread-count")


def detail_url(notification_id: int) -> str:
    return reverse("notifications:notification-detail", args=[notification_id])


def read_url(notification_id: int) -> str:
    return reverse("notifications:notification-read", args=[notification_id])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    return body


def _throttle_rates(settings, **rates: str) -> None:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {**current, **rates}
    }


def test_the_routes():
    assert LIST == "/api/notifications/"
    assert READ_ALL == "/api/notifications/read-all/"
    assert UNREAD_COUNT == "/api/notifications/unread-count/"
    assert detail_url(7) == "/api/notifications/7/"
    assert read_url(7) == "/api/notifications/7/read/"


# --- List -----------------------------------------------------------------------


def test_the_list_is_unread_first_then_newest_and_only_mine(auth_client, user, other_user):
    read_new = created_days_ago(NotificationFactory(user=user, read=True), 1)
    unread_old = created_days_ago(NotificationFactory(user=user), 3)
    unread_new = created_days_ago(NotificationFactory(user=user, body="Details."), 2)
    NotificationFactory(user=other_user)

    body = auth_client.get(LIST).json()

    assert body["count"] == 3
    assert [item["id"] for item in body["results"]] == [unread_new.pk, unread_old.pk, read_new.pk]
    first = body["results"][0]
    assert first == {
        "id": unread_new.pk,
        "kind": "document.processed",
        "title": unread_new.title,
        "body": "Details.",
        "data": unread_new.data,
        "read_at": None,
        "created_at": unread_new.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert body["results"][2]["read_at"] is not None


@pytest.mark.parametrize(("unread", "expected"), [("true", "unread"), ("false", "read")])
def test_the_list_filters_by_read_state(auth_client, user, unread, expected):
    mine = {
        "unread": NotificationFactory(user=user),
        "read": NotificationFactory(user=user, read=True),
    }

    results = auth_client.get(LIST, {"unread": unread}).json()["results"]

    assert [item["id"] for item in results] == [mine[expected].pk]


def test_an_unread_filter_that_is_not_a_boolean_is_a_400(auth_client):
    body = assert_error(auth_client.get(LIST, {"unread": "maybe"}), 400, "invalid")

    assert "unread" in body["errors"]


def test_the_list_is_paginated_in_a_fixed_number_of_queries(
    auth_client, user, django_assert_num_queries
):
    NotificationFactory.create_batch(3, user=user)
    with django_assert_num_queries(2):  # the count, the page
        assert auth_client.get(LIST).json()["count"] == 3

    NotificationFactory.create_batch(30, user=user, read=True)
    with django_assert_num_queries(2):
        body = auth_client.get(LIST, {"page_size": 25}).json()
    assert (body["count"], len(body["results"])) == (33, 25)
    assert body["next"] is not None
    with django_assert_num_queries(2):
        assert len(auth_client.get(LIST, {"unread": "false"}).json()["results"]) == 20


# --- Read, read all, count --------------------------------------------------------


def test_read_marks_it_and_answers_with_it(auth_client, user):
    notification = NotificationFactory(user=user)

    response = auth_client.post(read_url(notification.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == notification.pk
    assert body["read_at"] is not None
    notification.refresh_from_db()
    assert notification.read_at is not None
    again = auth_client.post(read_url(notification.pk)).json()
    assert again["read_at"] == body["read_at"]


def test_read_all_marks_every_unread_one(auth_client, user, other_user):
    NotificationFactory.create_batch(2, user=user)
    NotificationFactory(user=user, read=True)
    theirs = NotificationFactory(user=other_user)

    response = auth_client.post(READ_ALL)

    assert response.status_code == 200
    assert response.json() == {"marked": 2, "unread_count": 0}
    assert auth_client.post(READ_ALL).json() == {"marked": 0, "unread_count": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_unread_count(auth_client, user, other_user, django_assert_num_queries):
    NotificationFactory.create_batch(2, user=user)
    NotificationFactory(user=user, read=True)
    NotificationFactory(user=other_user)

    with django_assert_num_queries(1):
        response = auth_client.get(UNREAD_COUNT)

    assert response.json() == {"unread_count": 2}


# --- Delete ---------------------------------------------------------------------


def test_delete(auth_client, user):
    notification = NotificationFactory(user=user)

    assert auth_client.delete(detail_url(notification.pk)).status_code == 204

    assert not Notification.objects.filter(pk=notification.pk).exists()
    assert_error(auth_client.delete(detail_url(notification.pk)), 404, "notification_not_found")


# --- Who may ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), [("post", read_url), ("delete", detail_url)])
def test_someone_elses_notification_is_a_404_and_stays_as_it_was(
    auth_client, other_user, method, url
):
    theirs = NotificationFactory(user=other_user)

    assert_error(getattr(auth_client, method)(url(theirs.pk)), 404, "notification_not_found")
    assert_error(getattr(auth_client, method)(url(theirs.pk + 1000)), 404, "notification_not_found")

    theirs.refresh_from_db()
    assert theirs.read_at is None


def _every_route(notification_id: int) -> list[tuple[str, str]]:
    return [
        ("get", LIST),
        ("get", UNREAD_COUNT),
        ("post", READ_ALL),
        ("post", read_url(notification_id)),
        ("delete", detail_url(notification_id)),
    ]


def test_service_tokens_are_refused_on_every_route(make_service_client, user):
    notification = NotificationFactory(user=user)
    service = make_service_client(*Scope.values)

    for method, url in _every_route(notification.pk):
        assert_error(getattr(service, method)(url), 403, "end_user_only")

    notification.refresh_from_db()
    assert notification.read_at is None


def test_anonymous_callers_are_refused_on_every_route(user):
    notification = NotificationFactory(user=user)

    for method, url in _every_route(notification.pk):
        assert getattr(APIClient(), method)(url).status_code == 401


def test_the_writes_are_throttled_per_user(settings, make_auth_client, user, other_user):
    _throttle_rates(settings, notifications="3/min")
    notification = NotificationFactory(user=user)
    client = make_auth_client(user)
    assert client.post(read_url(notification.pk)).status_code == 200
    assert client.post(READ_ALL).status_code == 200
    assert client.delete(detail_url(notification.pk)).status_code == 204

    response = client.post(READ_ALL)

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert client.get(LIST).status_code == 200  # reads are not counted
    assert client.get(UNREAD_COUNT).status_code == 200
    assert make_auth_client(other_user).post(READ_ALL).status_code == 200
