from django.apps import AppConfig


class ChatHistoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat_history"
    verbose_name = "Chat history"

    def ready(self) -> None:
        from chat_history.archive import chat_archive_files
        from chat_history.selectors import contact_ids
        from chat_history.services import chat_memberships_leave_all
        from realtime.presence import set_audience
        from users.hooks import on_user_delete, on_user_export

        # A session per file in the account archive (users.exports).
        on_user_export(chat_archive_files)
        # A deleted account leaves the sessions it shared (its own go with it).
        on_user_delete(chat_memberships_leave_all)
        # Who hears that a user came online or went offline (ws/online/): their contacts.
        set_audience(contact_ids)
