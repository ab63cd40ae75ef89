from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """Domain events written with their change, delivered to the broker afterwards."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from config.health import register_check
        from outbox.selectors import outbox_health

        # Informational: a lagging relay is the relay's problem; taking the web
        # servers out of rotation would not fix it (see ``outbox_health``).
        register_check("outbox", outbox_health, critical=False)
