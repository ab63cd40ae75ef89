from django.apps import AppConfig


class ChatHistoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat_history"
    verbose_name = "Chat history"
