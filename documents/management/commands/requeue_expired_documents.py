from django.core.management.base import BaseCommand

from documents import services


class Command(BaseCommand):
    help = (
        "Release expired processing leases: documents go back to pending, or to failed "
        "once DOCUMENT_MAX_ATTEMPTS is reached. Safe to run from cron beside the API "
        "(claims do the same before handing out work)."
    )

    def handle(self, *args, **options):
        result = services.document_requeue_expired()
        self.stdout.write(f"Requeued {result.requeued}, failed {result.failed}.")
