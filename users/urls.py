from django.urls import path

from users.views import AuthViewSet, ProfileViewSet, ServiceApiKeyViewSet

app_name = "users"

urlpatterns = [
    path("register/", AuthViewSet.as_view({"post": "register"}), name="register"),
    path("login/", AuthViewSet.as_view({"post": "login"}), name="login"),
    path("token/refresh/", AuthViewSet.as_view({"post": "refresh"}), name="token-refresh"),
    path("logout/", AuthViewSet.as_view({"post": "logout"}), name="logout"),
    path(
        "profile/",
        ProfileViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="profile",
    ),
    path(
        "profile/set-api-key/",
        ProfileViewSet.as_view({"post": "set_api_key"}),
        name="profile-set-api-key",
    ),
    path(
        "profile/api-key/",
        ProfileViewSet.as_view({"delete": "delete_api_key"}),
        name="profile-api-key",
    ),
    path(
        "password/change/",
        ProfileViewSet.as_view({"post": "change_password"}),
        name="password-change",
    ),
    path(
        "<int:user_id>/api-key/",
        ServiceApiKeyViewSet.as_view({"get": "retrieve"}),
        name="service-api-key",
    ),
]
