from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from documents import services


class Command(BaseCommand):
    help = (
        "Delete stored files under documents/ that no document references (left behind by "
        "an upload whose process died between storing the file and recording it). Files "
        "younger than --older-than are kept, so uploads in flight are safe. Run it from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=3600,
            metavar="SECONDS",
            help="Only files last modified at least this long ago (default 3600).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be deleted; delete nothing."
        )

    def handle(self, *args, **options):
        if options["older_than"] < 60:
            raise CommandError("--older-than must be at least 60 seconds (uploads in flight).")
        removed = services.document_orphan_files_sweep(
            older_than=timedelta(seconds=options["older_than"]), dry_run=options["dry_run"]
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        for name in removed:
            self.stdout.write(f"{verb} {name}")
        self.stdout.write(f"{verb} {len(removed)} orphan file(s).")
