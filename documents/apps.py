from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        from documents import services
        from documents.archive import document_archive_files
        from users.hooks import on_user_delete, on_user_export

        # An account's documents go through their service: files removed, and
        # each deletion fed to the AI service so it drops the vectors.
        on_user_delete(services.document_delete_all_for_user)
        # Their files and metadata in the account archive (users.exports).
        on_user_export(document_archive_files)
