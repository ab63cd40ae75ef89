from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat_history import services


class Command(BaseCommand):
    help = (
        "Delete for good the chat sessions and messages that have been in the trash longer "
        "than the retention (CHAT_TRASH_RETENTION_DAYS, or --days). Works in small batches, "
        "each its own transaction, so it is safe to run from cron beside live traffic."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Retention in days (default CHAT_TRASH_RETENTION_DAYS, now "
            f"{settings.CHAT_TRASH_RETENTION_DAYS}).",
        )
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, **options):
        days = settings.CHAT_TRASH_RETENTION_DAYS if options["days"] is None else options["days"]
        if days < 0 or options["batch_size"] < 1:
            raise CommandError("--days must be at least 0 and --batch-size at least 1.")
        report = services.chat_trash_purge(
            older_than=timedelta(days=days),
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {report.sessions} session(s) and {report.messages} message(s) "
            f"trashed more than {days} day(s) ago."
        )
