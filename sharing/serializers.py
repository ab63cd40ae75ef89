"""Input checks and output shapes of share links; no business logic (see services).

The bodies are built by plain functions (``share_link_data``,
``shared_conversation_data``), as in ``chat_history.serializers``; the output
serializers declare the same fields for OpenAPI, and every response of the
test suite is checked against the published schema.

What a shared message shows of its metadata (``public_metadata``): the
metadata with every key that starts with ``_``, and every key named
``private``, ``feedback``, ``client_message_id`` or ``stream_id`` (in any
case), removed with everything under it, at any depth (inside nested objects,
and objects in arrays). Put anything a reader of a shared link must not see
under ``private`` or a ``_`` key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chat_history.models import ChatMessage, Role
from chat_history.serializers import MAX_MESSAGE_ID, iso_datetime
from sharing.models import ShareLink, ShareMode, ShareStatus

if TYPE_CHECKING:
    from chat_history.selectors import HistoryPage

SHARE_MAX_DAYS = 3650

# Metadata keys no reader of a shared link sees (compared case-insensitively),
# besides every key starting with "_".
PRIVATE_METADATA_KEYS = frozenset({"private", "feedback", "client_message_id", "stream_id"})


def public_metadata(value: Any) -> Any:
    """``value`` (a message's metadata, or a part of it) without its private
    keys, at any depth (see the module docstring)."""
    if isinstance(value, dict):
        return {
            key: public_metadata(item)
            for key, item in value.items()
            if not (key.startswith("_") or key.casefold() in PRIVATE_METADATA_KEYS)
        }
    if isinstance(value, list):
        return [public_metadata(item) for item in value]
    return value


# --- The one JSON shape of each object ----------------------------------------


def share_link_data(link: ShareLink) -> dict[str, Any]:
    """A link as its owner sees it; never its token (shown once, at creation)."""
    return {
        "id": link.pk,
        "mode": link.mode,
        "up_to_message_id": link.up_to_message_id,
        "status": link.status,
        "token_prefix": link.token_prefix,
        "created_by_id": link.created_by_id,
        "created_at": iso_datetime(link.created_at),
        "expires_at": iso_datetime(link.expires_at),
        "revoked_at": iso_datetime(link.revoked_at),
        "view_count": link.view_count,
        "last_viewed_at": iso_datetime(link.last_viewed_at),
    }


def share_link_created_data(link: ShareLink, *, token: str, url: str) -> dict[str, Any]:
    return {**share_link_data(link), "token": token, "url": url}


def shared_message_data(message: ChatMessage) -> dict[str, Any]:
    """A message as a shared link shows it: no ids of people, no private metadata."""
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "author_name": (message.author_name or None) if message.author_id is not None else None,
        "created_at": iso_datetime(message.created_at),
        "metadata": public_metadata(message.metadata),
    }


def shared_conversation_data(link: ShareLink, page: HistoryPage) -> dict[str, Any]:
    session, messages = link.session, page.messages
    return {
        "session": {
            "title": session.title,
            "created_at": iso_datetime(session.created_at),
            "mode": link.mode,
            "shared_at": iso_datetime(link.created_at),
        },
        "messages": [shared_message_data(message) for message in messages],
        "has_more_before": page.has_more_before,
        "next_before": messages[0].pk if page.has_more_before and messages else None,
    }


# Named components: a field called "status" or "mode" elsewhere must not
# share drf-spectacular's generated enum name.
@extend_schema_field({"type": "string", "enum": ShareMode.values}, component_name="ShareMode")
class ShareModeField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ShareMode.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": ShareStatus.values}, component_name="ShareStatus")
class ShareStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ShareStatus.choices, **kwargs)


# --- Inputs -------------------------------------------------------------------


class ShareLinkCreateInputSerializer(serializers.Serializer):
    mode = ShareModeField(
        help_text="`snapshot`: the conversation up to a message, frozen; `live`: the "
        "active path as it is whenever the link is read."
    )
    up_to_message_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="A snapshot's last message (a live message of the session); default the "
        "tip of the active path. Not with `live`.",
    )
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=SHARE_MAX_DAYS,
        help_text="The link stops working this many days from now. Not with `expires_at`.",
    )
    expires_at = serializers.DateTimeField(
        required=False, help_text="When the link stops working; in the future."
    )

    def validate(self, attrs):
        if "expires_in_days" in attrs and "expires_at" in attrs:
            raise serializers.ValidationError(
                {"expires_at": "Send either expires_in_days or expires_at, not both."}
            )
        if attrs["mode"] == ShareMode.LIVE and "up_to_message_id" in attrs:
            raise serializers.ValidationError(
                {"up_to_message_id": "Only a snapshot stops at a message."}
            )
        if "expires_in_days" in attrs:
            days = attrs.pop("expires_in_days")
            attrs["expires_at"] = timezone.now() + timedelta(days=days)
        return attrs


class SharedQuerySerializer(serializers.Serializer):
    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Older messages than this id: the `next_before` of the previous page.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=f"Messages per page (default {settings.CHAT_HISTORY_DEFAULT_LIMIT}); "
        "capped at the server's maximum.",
    )


# --- Output (schema declarations; the bodies come from the functions above) ------


class ShareLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mode = ShareModeField()
    up_to_message_id = serializers.IntegerField(
        allow_null=True, help_text="A snapshot's last message; null for a live link."
    )
    status = ShareStatusField(help_text="`active`, `expired` or `revoked`.")
    token_prefix = serializers.CharField(
        help_text="The token's first characters, to tell links apart (the token itself "
        "is shown only once, when the link is created)."
    )
    created_by_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    view_count = serializers.IntegerField(help_text="First pages read through the link.")
    last_viewed_at = serializers.DateTimeField(allow_null=True)


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    token = serializers.CharField(help_text="The link's secret: shown this once, never again.")
    url = serializers.URLField(help_text="The public address of the shared conversation.")


class SharedSessionSerializer(serializers.Serializer):
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    mode = ShareModeField()
    shared_at = serializers.DateTimeField(help_text="When the link was created.")


class SharedMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices)
    content = serializers.CharField()
    author_name = serializers.CharField(
        allow_null=True, help_text="Who wrote a user message; null for assistant messages."
    )
    created_at = serializers.DateTimeField()
    metadata = serializers.DictField(
        help_text="The message's metadata without private keys: any key starting with `_`, "
        "and `private`, `feedback`, `client_message_id`, `stream_id`, at any depth."
    )


class SharedConversationSerializer(serializers.Serializer):
    session = SharedSessionSerializer()
    messages = SharedMessageSerializer(many=True, help_text="Oldest first.")
    has_more_before = serializers.BooleanField()
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Ask again with ?before=<next_before> for older messages."
    )
