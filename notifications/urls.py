"""Included from ``config/urls.py`` at ``api/notifications/``."""

from rest_framework.routers import SimpleRouter

from notifications.views import NotificationViewSet

app_name = "notifications"

# "", <id>/, <id>/read/, read-all/, unread-count/.
router = SimpleRouter(use_regex_path=False)
router.register("", NotificationViewSet, basename="notification")

urlpatterns = router.urls
