from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from notifications.models import Notification
from notifications.tests.factories import NotificationFactory, created_days_ago

pytestmark = pytest.mark.django_db


def test_prune_notifications_keeps_read_ones_for_the_configured_days(user, settings, capsys):
    settings.NOTIFICATIONS_KEEP_DAYS = 90
    old = created_days_ago(NotificationFactory(user=user, read=True), 91)
    kept = created_days_ago(NotificationFactory(user=user, read=True), 89)
    unread = created_days_ago(NotificationFactory(user=user), 365)

    call_command("prune_notifications")

    assert capsys.readouterr().out.strip() == (
        "Deleted 1 read notification(s) created more than 90 day(s) ago."
    )
    assert set(Notification.objects.values_list("pk", flat=True)) == {kept.pk, unread.pk}
    assert not Notification.objects.filter(pk=old.pk).exists()


def test_prune_notifications_with_days_and_a_batch_size(user, capsys):
    for _ in range(3):
        created_days_ago(NotificationFactory(user=user, read=True), 8)
    recent = created_days_ago(NotificationFactory(user=user, read=True), 6)

    call_command("prune_notifications", "--days", "7", "--batch-size", "2")

    assert capsys.readouterr().out.strip().startswith("Deleted 3 ")
    assert list(Notification.objects.values_list("pk", flat=True)) == [recent.pk]


@pytest.mark.parametrize("arguments", [["--days", "-1"], ["--batch-size", "0"]])
def test_prune_notifications_refuses_nonsense(user, arguments):
    NotificationFactory(user=user, read=True)

    with pytest.raises(CommandError):
        call_command("prune_notifications", *arguments)

    assert Notification.objects.count() == 1
