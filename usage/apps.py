from django.apps import AppConfig


class UsageConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
    verbose_name = "Usage and budgets"

    def ready(self) -> None:
        from usage.archive import usage_archive_files
        from users.hooks import on_user_export

        # The user's ledger in the account archive (users.exports); the rows
        # themselves go with the account (a cascade).
        on_user_export(usage_archive_files)
