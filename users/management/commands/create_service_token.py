from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from users import services
from users.models import Scope


class Command(BaseCommand):
    help = (
        "Create a scoped service token for the AI service. The secret is printed "
        "once; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="A unique name, e.g. langgraph-prod.")
        parser.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            required=True,
            choices=Scope.values,
            help="Repeat for several scopes.",
        )

    def handle(self, *args, name: str, scopes: list[str], **options):
        try:
            token, raw = services.service_token_create(name=name, scopes=scopes)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(
            f"Created service token {token.name!r} with scopes {', '.join(token.scopes)}.\n"
            "Store the secret now; it will not be shown again:"
        )
        self.stdout.write(raw)
