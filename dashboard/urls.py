from core.routers import SingletonRouter
from dashboard.views import DashboardViewSet

app_name = "dashboard"

# dashboard/ (under api/users/)
router = SingletonRouter(use_regex_path=False)
router.register("dashboard", DashboardViewSet, basename="dashboard")

urlpatterns = router.urls
