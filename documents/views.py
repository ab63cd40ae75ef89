"""Documents API: the owner's routes, and the processing protocol for the AI service."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.pagination import page_of
from core.parsers import JSONParser
from core.permissions import EndUserOnly, EndUserOrScopedService, ScopedServiceOnly
from core.schema import VALIDATION_ERROR, error_response
from core.throttles import WriteThrottle
from core.validation import validated, validated_query
from documents import selectors, services
from documents.errors import DocumentFileMissingError
from documents.inspection import CONTENT_TYPES
from documents.serializers import (
    ClaimInputSerializer,
    ClaimOutputSerializer,
    DeletionQuerySerializer,
    DeletionSerializer,
    DocumentDetailSerializer,
    DocumentListItemSerializer,
    DocumentListQuerySerializer,
    DocumentStatusField,
    DocumentUploadInputSerializer,
    DocumentUploadOutputSerializer,
    StatusReportInputSerializer,
)
from documents.uploads import DocumentUploadParser
from users.models import Scope

_CURRENT_STATUS = DocumentStatusField(help_text="The status the document is in.")
_NOT_PROCESSING = error_response(
    "`invalid_transition`: the document is not in a state that allows this "
    "(`current_status` says which it is in).",
    component="DocumentStateError",
    current_status=_CURRENT_STATUS,
)


@extend_schema(tags=["documents"])
class DocumentViewSet(viewsets.GenericViewSet):
    """The signed-in user's own documents. Another user's document is a 404."""

    permission_classes = [EndUserOnly]
    # Only multipart uploads are parsed here; the other routes read no body.
    parser_classes = [DocumentUploadParser]
    service_scopes = {"file": Scope.DOCUMENTS_PROCESS}
    throttle_classes = [WriteThrottle]
    write_throttles = {"create": "uploads"}
    lookup_url_kwarg = "document_id"
    lookup_value_converter = "int"

    def get_permissions(self):
        if self.action == "file":
            return [EndUserOrScopedService()]
        return super().get_permissions()

    def perform_content_negotiation(self, request, force=False):
        # A download answers whatever Accept says (errors stay JSON).
        return super().perform_content_negotiation(request, force=force or self.action == "file")

    @extend_schema(
        summary="List your documents",
        description="Newest first, paginated; filter by `status`, `file_type` and `search`.",
        parameters=[DocumentListQuerySerializer],
        responses={200: DocumentListItemSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def list(self, request):
        filters = validated_query(DocumentListQuerySerializer, request.query_params)
        page = page_of(self, selectors.document_list(user=request.user, **filters))
        return self.get_paginated_response(DocumentListItemSerializer(page, many=True).data)

    @extend_schema(
        summary="Upload a document",
        description="multipart/form-data with one `file` part. The document is queued for "
        "processing (`status: pending`). Empty files and unreadable content are 400; nothing "
        "is stored when the upload is refused.",
        request={"multipart/form-data": DocumentUploadInputSerializer},
        responses={
            201: DocumentUploadOutputSerializer,
            409: error_response(
                "`duplicate_document`: you already uploaded identical content "
                "(`existing_document_id` names it).",
                component="DuplicateDocumentError",
                existing_document_id=serializers.IntegerField(),
            ),
            413: error_response(
                "`file_too_large`: over DOCUMENT_MAX_UPLOAD_SIZE (`max_size`, in bytes), "
                "or `payload_too_large`: a body larger than any route accepts.",
                component="FileTooLargeError",
                max_size=serializers.IntegerField(required=False),
            ),
            415: error_response(
                "`unsupported_media_type`: not a PDF, TXT, Markdown or DOCX file, or the "
                "extension does not match the content."
            ),
        },
    )
    def create(self, request):
        data = validated(DocumentUploadInputSerializer, request.data)
        document = services.document_upload(user=request.user, file=data["file"])
        return Response(
            DocumentUploadOutputSerializer(document).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(summary="A document's metadata", responses=DocumentDetailSerializer)
    def retrieve(self, request, document_id: int):
        document = selectors.document_get(user=request.user, document_id=document_id)
        return Response(DocumentDetailSerializer(document).data)

    @extend_schema(
        summary="Delete a document",
        description="Removes the stored file and records the deletion in the deletions feed, "
        "so the AI service drops its vectors.",
        responses={204: OpenApiResponse(description="Deleted.")},
    )
    def destroy(self, request, document_id: int):
        services.document_delete(user=request.user, document_id=document_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Download the original file",
        operation_id="documents_file",
        description="For the owner, or a service token with `documents:process` (any document).",
        responses={
            (200, content_type.split(";")[0]): OpenApiResponse(
                OpenApiTypes.BINARY, description="The original bytes, as an attachment."
            )
            for content_type in CONTENT_TYPES.values()
        },
    )
    @action(detail=True, methods=["get"])
    def file(self, request, document_id: int):
        document = selectors.document_get_for_file(actor=request.user, document_id=document_id)
        try:
            handle = default_storage.open(document.file_path, "rb")
        except FileNotFoundError:
            raise DocumentFileMissingError() from None
        return FileResponse(
            handle,
            as_attachment=True,
            filename=document.filename,
            content_type=CONTENT_TYPES[document.file_type],
        )

    @extend_schema(
        summary="Retry a failed document",
        operation_id="documents_reprocess",
        description="Back to `pending` with its attempts reset; 409 unless it failed.",
        request=None,
        responses={200: DocumentDetailSerializer, 409: _NOT_PROCESSING},
    )
    @action(detail=True, methods=["post"])
    def reprocess(self, request, document_id: int):
        document = services.document_reprocess(user=request.user, document_id=document_id)
        return Response(DocumentDetailSerializer(document).data)


@extend_schema(tags=["document processing"])
class DocumentJobViewSet(viewsets.GenericViewSet):
    """The processing protocol, for the AI service (service token, `documents:process`)."""

    permission_classes = [ScopedServiceOnly]
    parser_classes = [JSONParser]
    service_scopes = {
        "claim": Scope.DOCUMENTS_PROCESS,
        "report_status": Scope.DOCUMENTS_PROCESS,
        "deletions": Scope.DOCUMENTS_PROCESS,
    }
    lookup_url_kwarg = "document_id"
    lookup_value_converter = "int"

    @extend_schema(
        summary="Claim the oldest pending document",
        operation_id="documents_jobs_claim",
        description="Leases the document to the caller for DOCUMENT_LEASE_SECONDS and counts an "
        "attempt. Download it from `download_url`, then report with `lease_id`. 204 when the "
        "queue is empty. Expired leases are released before each claim.",
        request=ClaimInputSerializer,
        responses={
            200: ClaimOutputSerializer,
            204: OpenApiResponse(description="Nothing to process."),
        },
    )
    @action(detail=False, methods=["post"], url_path="jobs/claim")
    def claim(self, request):
        data = validated(ClaimInputSerializer, request.data)
        worker = "/".join(filter(None, [request.auth.name, data.get("worker")]))
        document = services.document_claim_next(worker=worker)
        if document is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ClaimOutputSerializer(document, context={"request": request}).data)

    @extend_schema(
        summary="Report on a leased document",
        operation_id="documents_report_status",
        description="`processing` renews the lease; `processed` (with `chunk_count`) and "
        "`failed` (with `error`) finish the job. Nothing changes on a 409.",
        request=StatusReportInputSerializer,
        responses={
            200: DocumentDetailSerializer,
            409: error_response(
                "`invalid_transition`: the document is not being processed; `lease_expired`: "
                "the lease is not current (expired, or handed to another worker).",
                component="DocumentStateError",
                current_status=_CURRENT_STATUS,
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="status", url_name="status")
    def report_status(self, request, document_id: int):
        data = validated(StatusReportInputSerializer, request.data)
        document = services.document_report_status(document_id=document_id, **data)
        return Response(DocumentDetailSerializer(document).data)

    @extend_schema(
        summary="Deleted documents, for vector clean-up",
        description="Oldest first. Poll with `since` set a little before the newest "
        "`deleted_at` already handled; dropping vectors twice is harmless.",
        operation_id="documents_deletions",
        parameters=[DeletionQuerySerializer],
        responses={200: DeletionSerializer(many=True), 400: VALIDATION_ERROR},
    )
    @action(detail=False, methods=["get"])
    def deletions(self, request):
        since = validated_query(DeletionQuerySerializer, request.query_params).get("since")
        page = page_of(self, selectors.document_deletion_list(since=since))
        return self.get_paginated_response(DeletionSerializer(page, many=True).data)
