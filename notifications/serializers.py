"""Input checks and output shapes of notifications; no business logic (see services).

``NotificationSerializer`` is the one shape of a notification: the list, the
read route and the ``notification.created`` event all use it.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import NotificationKind


# A component of its own: a field called "kind" elsewhere must not share
# drf-spectacular's generated "KindEnum".
@extend_schema_field(
    {"type": "string", "enum": NotificationKind.values}, component_name="NotificationKind"
)
class NotificationKindField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=NotificationKind.choices, **kwargs)


# --- Inputs -------------------------------------------------------------------


class NotificationListQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False,
        help_text="`true`: only unread ones; `false`: only read ones; absent: all, unread first.",
    )


# --- Outputs ------------------------------------------------------------------


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = NotificationKindField(help_text="What happened; the frontend picks icon and link by it.")
    title = serializers.CharField(help_text='Short human text, e.g. "report.pdf is ready".')
    body = serializers.CharField(help_text="Longer text; may be empty.")
    # A declared field (the metaclass takes it), not Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text='Ids the frontend links to, by kind: `{"document_id": 12}` for the '
        "document kinds."
    )
    read_at = serializers.DateTimeField(allow_null=True, help_text="Null while unread.")
    created_at = serializers.DateTimeField()


class UnreadCountSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField(help_text="The user's unread notifications.")


class ReadAllSerializer(UnreadCountSerializer):
    marked = serializers.IntegerField(help_text="Notifications this call marked read.")
