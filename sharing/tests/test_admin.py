from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sharing.models import ShareLink
from sharing.tests.factories import ShareLinkFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sharing_sharelink_changelist"


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_shows_links_without_their_tokens(staff_client, session):
    link = ShareLinkFactory(session=session)
    revoked = ShareLinkFactory(session=session, revoked_at=timezone.now())

    html = staff_client.get(reverse(CHANGELIST)).content.decode()
    page = staff_client.get(reverse("admin:sharing_sharelink_change", args=[link.pk]))

    assert link.token_prefix in html
    assert revoked.token_prefix in html
    assert "Revoked" in html
    assert "Active" in html
    assert session.title in html
    for text in (html, page.content.decode()):
        assert link.token not in text
        assert link.token_hash not in text


def test_the_list_costs_the_same_for_many_links(staff_client, session):
    ShareLinkFactory(session=session)
    few = _queries(staff_client, reverse(CHANGELIST))
    ShareLinkFactory.create_batch(10)
    assert _queries(staff_client, reverse(CHANGELIST)) == few


@pytest.mark.parametrize("status", ["active", "expired", "revoked"])
def test_the_status_filter(staff_client, session, status):
    links = {
        "active": ShareLinkFactory(session=session, expires_at=timezone.now() + timedelta(days=1)),
        "expired": ShareLinkFactory(session=session, expires_at=timezone.now()),
        "revoked": ShareLinkFactory(session=session, revoked_at=timezone.now()),
    }
    response = staff_client.get(reverse(CHANGELIST) + f"?status={status}")
    assert [link.pk for link in response.context["cl"].result_list] == [links[status].pk]


def test_the_revoke_action_goes_through_the_service(staff_client, session):
    links = ShareLinkFactory.create_batch(2, session=session)

    response = staff_client.post(
        reverse(CHANGELIST),
        {"action": "revoke", "_selected_action": [link.pk for link in links]},
    )

    assert response.status_code == 302
    assert not ShareLink.objects.filter(revoked_at__isnull=True).exists()


def test_links_are_neither_added_nor_deleted_here(staff_client, session):
    link = ShareLinkFactory(session=session)
    assert staff_client.get(reverse("admin:sharing_sharelink_add")).status_code == 403
    delete = reverse("admin:sharing_sharelink_delete", args=[link.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert ShareLink.objects.filter(pk=link.pk).exists()
