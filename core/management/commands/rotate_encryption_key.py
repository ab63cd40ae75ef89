from django.core.management.base import BaseCommand

from core.rotation import rotate_encrypted_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key in ENCRYPTION_KEY. "
        "Safe to run twice and to interrupt: each row is rewritten on its own, "
        "only if it is not yet on the newest key and has not changed meanwhile."
    )

    def handle(self, *args, **options):
        results = rotate_encrypted_fields()
        total = 0
        for label, (changed, scanned) in results.items():
            total += changed
            self.stdout.write(f"{label}: {changed} of {scanned} value(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} row(s) changed."))
