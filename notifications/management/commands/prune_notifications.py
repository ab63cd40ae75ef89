from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications import services


class Command(BaseCommand):
    help = (
        "Delete read notifications created more than NOTIFICATIONS_KEEP_DAYS (or --days) "
        "ago; unread ones stay. Works in batches, each its own transaction, so it is safe "
        "to run from cron beside live traffic."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Keep read notifications this many days (default NOTIFICATIONS_KEEP_DAYS, "
            f"now {settings.NOTIFICATIONS_KEEP_DAYS}).",
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, **options):
        days = settings.NOTIFICATIONS_KEEP_DAYS if options["days"] is None else options["days"]
        if days < 0 or options["batch_size"] < 1:
            raise CommandError("--days must be at least 0 and --batch-size at least 1.")
        deleted = services.notification_prune(
            older_than=timedelta(days=days), batch_size=options["batch_size"]
        )
        self.stdout.write(
            f"Deleted {deleted} read notification(s) created more than {days} day(s) ago."
        )
