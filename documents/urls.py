from rest_framework.routers import SimpleRouter

from documents.views import DocumentJobViewSet, DocumentViewSet

app_name = "documents"

# The owner's: "", <id>/, <id>/file/, <id>/reprocess/.
# The AI service's: jobs/claim/, <id>/status/, deletions/.
router = SimpleRouter(use_regex_path=False)
router.register("", DocumentViewSet, basename="document")
router.register("", DocumentJobViewSet, basename="job")

urlpatterns = router.urls
