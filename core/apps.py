from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app builds on: base model, API plumbing, shared commands."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401 - registers the system checks
