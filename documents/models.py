"""Uploaded documents, their processing state, and the feed of deletions.

The file itself lives in the default storage under a generated name
(``file_path``); its chunks and vectors live in Qdrant, owned by the AI
service. This table is the source of truth for who owns what and where each
document is in the processing state machine::

    pending --claim--> processing --report processed--> processed
       ^                  |  |
       |   lease expired  |  +--report failed / attempts exhausted--> failed
       +------------------+                                            |
       +-------------------------- reprocess (owner) / requeue (admin) +
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import TimestampedModel


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


# What a worker may report about the document it leased (``document_report_status``).
REPORTABLE_STATUSES = (DocumentStatus.PROCESSING, DocumentStatus.PROCESSED, DocumentStatus.FAILED)


class FileType(models.TextChoices):
    PDF = "PDF", "PDF"
    TXT = "TXT", "Plain text"
    MD = "MD", "Markdown"
    DOCX = "DOCX", "Word (DOCX)"


class DocumentMetadata(TimestampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    filename = models.CharField(max_length=255, help_text="Cleaned display name.")
    file_path = models.CharField(
        max_length=500, help_text="Generated storage name, never the client's path."
    )
    file_size = models.PositiveBigIntegerField(help_text="Bytes.")
    file_type = models.CharField(max_length=10, choices=FileType.choices)
    sha256 = models.CharField(max_length=64, help_text="Hex SHA-256 of the content.")
    page_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(
        default=0, help_text="Chunks stored in the vector database."
    )
    qdrant_collection = models.CharField(max_length=100)
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)

    status = models.CharField(
        max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.PENDING
    )
    # The seed's flag, kept in step with ``status`` by a check constraint.
    processed = models.BooleanField(default=False)
    processing_error = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)

    # Processing lease: set while (and only while) the status is processing.
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times a worker has claimed the document."
    )
    lease_id = models.UUIDField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "document_metadata"
        ordering = ["-uploaded_at", "-id"]
        verbose_name = "document"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DocumentStatus.values), name="document_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(file_type__in=FileType.values), name="document_file_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(processed=True, status=DocumentStatus.PROCESSED)
                | (Q(processed=False) & ~Q(status=DocumentStatus.PROCESSED)),
                name="document_processed_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(
                    status=DocumentStatus.PROCESSING,
                    lease_id__isnull=False,
                    lease_expires_at__isnull=False,
                )
                | (
                    ~Q(status=DocumentStatus.PROCESSING)
                    & Q(lease_id__isnull=True, lease_expires_at__isnull=True)
                ),
                name="document_lease_only_while_processing",
            ),
            # A duplicate upload is refused by the database, even when two
            # arrive at once; the service turns the violation into a 409.
            models.UniqueConstraint(fields=["user", "sha256"], name="document_user_sha256_unique"),
        ]
        indexes = [
            # A user's documents, newest first (list endpoint).
            models.Index(fields=["user", "-uploaded_at", "-id"], name="document_user_recent"),
            # The work queue: oldest pending first (claim).
            models.Index(
                fields=["uploaded_at", "id"],
                condition=Q(status=DocumentStatus.PENDING),
                name="document_pending_queue",
            ),
            # Leases to expire (requeue before claim, cron command).
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status=DocumentStatus.PROCESSING),
                name="document_active_leases",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"


class DocumentDeletion(TimestampedModel):
    """A deleted document, kept so the AI service can drop its vectors.

    Plain ids, not foreign keys: the record must outlive the document and the
    owner.
    """

    document_id = models.BigIntegerField()
    owner_id = models.BigIntegerField()
    filename = models.CharField(max_length=255)
    qdrant_collection = models.CharField(max_length=100)
    deleted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "document_deletions"
        ordering = ["deleted_at", "id"]
        indexes = [models.Index(fields=["deleted_at", "id"], name="document_deletion_feed")]

    def __str__(self) -> str:
        return f"document {self.document_id} deleted {self.deleted_at:%Y-%m-%d %H:%M}"
