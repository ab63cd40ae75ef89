from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app builds on: base model, API plumbing, shared commands."""

    name = "core"
    verbose_name = "Core"
