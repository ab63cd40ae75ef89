from rest_framework.routers import SimpleRouter

from core.routers import SingletonRouter
from users.views import (
    AccountViewSet,
    AuthViewSet,
    PasswordViewSet,
    ProfileViewSet,
    ProviderKeyViewSet,
    ServiceApiKeyViewSet,
    WsTicketViewSet,
)

app_name = "users"

# register/, login/, token/refresh/, logout/, password/change/, <user_id>/api-key/,
# ws-ticket/, keys/, keys/<key_id>/, keys/<key_id>/verify/
router = SimpleRouter(use_regex_path=False)
router.register("", AuthViewSet, basename="auth")
router.register("", WsTicketViewSet, basename="ws")
router.register("password", PasswordViewSet, basename="password")
router.register("", ServiceApiKeyViewSet, basename="service")
router.register("keys", ProviderKeyViewSet, basename="keys")

# profile/, profile/set-api-key/, profile/api-key/
profile = SingletonRouter(use_regex_path=False)
profile.register("profile", ProfileViewSet, basename="profile")
# me/ (DELETE: erase the account), me/export/
profile.register("me", AccountViewSet, basename="me")

urlpatterns = [*router.urls, *profile.urls]
