"""The admin shows usage per user, key and model, read-only."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from usage.models import UsageDaily, UsageMonthly, UsageRecord
from usage.tests.factories import record_usage
from users.tests.factories import ProviderKeyFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = [UsageRecord, UsageDaily, UsageMonthly]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:usage_{model._meta.model_name}_{view}", args=args)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("model", MODELS)
def test_each_list_shows_user_key_and_model_in_fixed_queries(staff_client, user, model):
    key = ProviderKeyFactory(user=user)
    record_usage(user, key_id=key.pk, model="gpt-4o-mini")
    url = _url(model, "changelist")

    html = staff_client.get(url).content.decode()
    few = _queries(staff_client, url)
    for _ in range(5):
        record_usage(UserFactory(), model="gpt-4o")
    many = _queries(staff_client, url)

    assert user.email in html
    key_column = "key_or_total" if model is UsageMonthly else "key_id"
    assert f'class="field-{key_column}">{key.pk}<' in html
    assert few == many
    if model is not UsageMonthly:
        assert 'class="field-model">gpt-4o-mini<' in html


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added_changed_or_deleted(staff_client, user, model):
    record_usage(user)
    row = model.objects.first()

    assert staff_client.get(_url(model, "add")).status_code == 403
    change = staff_client.post(_url(model, "change", row.pk), {})
    assert change.status_code == 403
    assert staff_client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


def test_the_ledger_filters_and_searches(staff_client, user, other_user):
    record_usage(user, model="gpt-4o")
    record_usage(other_user, model="claude-sonnet-4", provider="anthropic")
    url = _url(UsageRecord, "changelist")

    by_email = staff_client.get(url, {"q": user.email}).content.decode()
    by_provider = staff_client.get(url, {"provider__exact": "anthropic"}).content.decode()

    assert user.email in by_email
    assert other_user.email not in by_email
    assert other_user.email in by_provider
    assert user.email not in by_provider
