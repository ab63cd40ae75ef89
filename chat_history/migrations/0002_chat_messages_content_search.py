"""Full-text search index on message content, on PostgreSQL only.

SQLite cannot build a GIN index (search falls back to a scan there), so the
index is created through the schema editor only when the database is
PostgreSQL. It is built from the very expression ``chat_history.selectors``
queries with (``SearchVector("content", config="simple")``), so the planner can
use it; 'simple' because messages mix Korean and English and no stemmer fits
both.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX = GinIndex(SearchVector("content", config="simple"), name="chat_messages_content_fts")


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("chat_history", "ChatMessage"), INDEX)


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("chat_history", "ChatMessage"), INDEX)


class Migration(migrations.Migration):
    dependencies = [("chat_history", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop, elidable=False)]
