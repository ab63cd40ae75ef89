"""Input checks and output shapes; no business logic (see services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from documents.models import REPORTABLE_STATUSES, DocumentStatus, FileType


def _string_enum(values) -> dict:
    return {"type": "string", "enum": list(values)}


# Named components of their own: drf-spectacular would otherwise name every
# choice set of a field called "status" (health, other apps) "StatusEnum" and
# warn about the collision.
@extend_schema_field(_string_enum(DocumentStatus.values), component_name="DocumentStatus")
class DocumentStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=DocumentStatus.choices, **kwargs)


@extend_schema_field(_string_enum(REPORTABLE_STATUSES), component_name="ReportedDocumentStatus")
class ReportedStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            choices=[(value, DocumentStatus(value).label) for value in REPORTABLE_STATUSES],
            **kwargs,
        )


# --- Inputs -------------------------------------------------------------------


class DocumentUploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A PDF, TXT, Markdown (.md) or DOCX file whose content matches its "
        "extension; at most DOCUMENT_MAX_UPLOAD_SIZE bytes (20 MiB by default)."
    )


class _UpperCaseChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        return super().to_internal_value(str(data).upper())


class DocumentListQuerySerializer(serializers.Serializer):
    status = DocumentStatusField(required=False)
    file_type = _UpperCaseChoiceField(
        choices=FileType.choices, required=False, help_text="Case-insensitive."
    )
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Part of the filename (case-insensitive); empty lists every document.",
    )


class ClaimInputSerializer(serializers.Serializer):
    worker = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Optional worker id (host, pid) recorded with the lease for diagnosis.",
    )


class StatusReportInputSerializer(serializers.Serializer):
    status = ReportedStatusField(
        help_text="`processing` renews the lease (heartbeat); `processed` and `failed` finish.",
    )
    lease_id = serializers.UUIDField(help_text="The lease_id the claim returned.")
    chunk_count = serializers.IntegerField(
        required=False, min_value=0, help_text="Required with `processed`."
    )
    page_count = serializers.IntegerField(
        required=False, min_value=0, help_text="Optional with `processed`; replaces the count."
    )
    error = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10_000,
        default="",
        help_text="Required with `failed`; shown to the owner.",
    )

    def validate(self, attrs):
        if attrs["status"] == DocumentStatus.PROCESSED and attrs.get("chunk_count") is None:
            raise serializers.ValidationError(
                {"chunk_count": "Required when the status is processed."}
            )
        if attrs["status"] == DocumentStatus.FAILED and not attrs["error"].strip():
            raise serializers.ValidationError({"error": "Required when the status is failed."})
        return attrs


class DeletionQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, help_text="ISO 8601; only deletions strictly after this instant."
    )


# --- Outputs ------------------------------------------------------------------


class DocumentListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    file_type = serializers.ChoiceField(choices=FileType.choices)
    file_size = serializers.IntegerField(help_text="Bytes.")
    page_count = serializers.IntegerField()
    chunk_count = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    processed = serializers.BooleanField()
    status = DocumentStatusField()


class DocumentDetailSerializer(DocumentListItemSerializer):
    qdrant_collection = serializers.CharField()
    processing_error = serializers.CharField()
    processed_at = serializers.DateTimeField(allow_null=True)


class DocumentUploadOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    file_type = serializers.ChoiceField(choices=FileType.choices)
    file_size = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    processed = serializers.BooleanField()
    status = DocumentStatusField()
    message = serializers.SerializerMethodField()

    def get_message(self, document) -> str:
        return "The document was uploaded and is queued for processing."


class ClaimOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    owner_id = serializers.IntegerField(source="user_id")
    filename = serializers.CharField()
    file_type = serializers.ChoiceField(choices=FileType.choices)
    file_size = serializers.IntegerField()
    download_url = serializers.HyperlinkedIdentityField(
        view_name="documents:document-file",
        lookup_url_kwarg="document_id",
        help_text="GET it with the same service token.",
    )
    qdrant_collection = serializers.CharField()
    lease_id = serializers.UUIDField(help_text="Send it with every status report.")
    lease_expires_at = serializers.DateTimeField(
        help_text="Report (a `processing` heartbeat renews it) before this instant."
    )
    attempt = serializers.IntegerField(source="attempts", help_text="1 on the first claim.")


class DeletionSerializer(serializers.Serializer):
    document_id = serializers.IntegerField()
    owner_id = serializers.IntegerField()
    filename = serializers.CharField()
    qdrant_collection = serializers.CharField()
    deleted_at = serializers.DateTimeField()
