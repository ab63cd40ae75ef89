import os
import socket

from django.core.management.base import BaseCommand

from chat_history import imports


class Command(BaseCommand):
    help = (
        "Run the import jobs that are pending, or whose worker died (their lease "
        "expired), one after another until none is left. Safe to run from cron beside the "
        "API and beside other copies of itself: each job is claimed by one of them only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-jobs", type=int, default=0, help="Stop after this many jobs (0: no limit)."
        )

    def handle(self, *args, max_jobs: int = 0, **options):
        worker = f"command:{socket.gethostname()}:{os.getpid()}"
        done = 0
        while not max_jobs or done < max_jobs:
            job = imports.chat_import_claim_next(worker=worker)
            if job is None:
                break
            done += 1
            try:
                imports.chat_import_run(job=job)
            except Exception as exc:  # logged; the job is retried while it has attempts left
                self.stderr.write(f"Import {job.job_id} failed: {type(exc).__name__}")
                continue
            self.stdout.write(
                f"Import {job.job_id}: {job.status}, {job.sessions_imported} sessions imported, "
                f"{job.conversations_skipped} conversations skipped."
            )
        self.stdout.write(f"Processed {done} import job(s).")
