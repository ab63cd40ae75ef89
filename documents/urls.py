from django.urls import path

from documents.views import DocumentJobViewSet, DocumentViewSet

app_name = "documents"

urlpatterns = [
    path(
        "",
        DocumentViewSet.as_view({"get": "list", "post": "create"}),
        name="document-list",
    ),
    path(
        "<int:document_id>/",
        DocumentViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="document-detail",
    ),
    path("<int:document_id>/file/", DocumentViewSet.as_view({"get": "file"}), name="document-file"),
    path(
        "<int:document_id>/reprocess/",
        DocumentViewSet.as_view({"post": "reprocess"}),
        name="document-reprocess",
    ),
    path(
        "<int:document_id>/status/",
        DocumentJobViewSet.as_view({"post": "report_status"}),
        name="document-status",
    ),
    path("jobs/claim/", DocumentJobViewSet.as_view({"post": "claim"}), name="job-claim"),
    path("deletions/", DocumentJobViewSet.as_view({"get": "deletions"}), name="deletion-list"),
]
