from django.apps import AppConfig


class ChatHistoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat_history"
    verbose_name = "Chat history"

    def ready(self) -> None:
        from chat_history.archive import chat_archive_files
        from users.hooks import on_user_export

        # A session per file in the account archive (users.exports).
        on_user_export(chat_archive_files)
