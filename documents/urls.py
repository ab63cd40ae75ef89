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
        "<int:pk>/",
        DocumentViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="document-detail",
    ),
    path("<int:pk>/file/", DocumentViewSet.as_view({"get": "file"}), name="document-file"),
    path(
        "<int:pk>/reprocess/",
        DocumentViewSet.as_view({"post": "reprocess"}),
        name="document-reprocess",
    ),
    path(
        "<int:pk>/status/",
        DocumentJobViewSet.as_view({"post": "report_status"}),
        name="document-status",
    ),
    path("jobs/claim/", DocumentJobViewSet.as_view({"post": "claim"}), name="job-claim"),
    path("deletions/", DocumentJobViewSet.as_view({"get": "deletions"}), name="deletion-list"),
]
