import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from outbox.broker import RabbitPublisher
from outbox.relay import relay_run
from outbox.services import outbox_relay_round


class Command(BaseCommand):
    help = (
        "Deliver the outbox's pending events to RabbitMQ (BROKER_URL), in order, at "
        "least once, until SIGTERM or SIGINT (the current round finishes first). "
        "Several relays may run: one delivers at a time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="One round, then exit (prints how many)."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"Events per round (default OUTBOX_BATCH_SIZE, now {settings.OUTBOX_BATCH_SIZE}).",
        )

    def handle(self, *args, **options):
        if not settings.BROKER_URL:
            raise CommandError("BROKER_URL is not set: there is nothing to deliver to.")
        batch_size = options["batch_size"] or settings.OUTBOX_BATCH_SIZE
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        publisher = RabbitPublisher.from_settings()
        try:
            if options["once"]:
                sent = outbox_relay_round(publisher=publisher, batch_size=batch_size)
                self.stdout.write(f"Delivered {sent} event(s).")
                return
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            self.stdout.write("Relaying outbox events (stop with SIGTERM or Ctrl-C).")
            sent = relay_run(publisher=publisher, batch_size=batch_size, stop=stop)
            self.stdout.write(f"Stopped after delivering {sent} event(s).")
        finally:
            publisher.close()
