"""The usage routes, included at ``/api/`` by ``config.urls`` before the users
app's (so ``users/keys/<id>/stats/`` and ``users/<id>/budget/`` are never taken
for its routes)."""

from django.urls import path

from usage.views import BudgetViewSet, KeyStaticsAliasViewSet, KeyUsageViewSet, UsageViewSet

app_name = "usage"

urlpatterns = [
    path("usage/", UsageViewSet.as_view({"get": "summary", "post": "create"}), name="usage"),
    path(
        "users/keys/<int:key_id>/stats/",
        KeyUsageViewSet.as_view({"get": "stats"}),
        name="key-stats",
    ),
    # Seed 004's spelling: an alias, left out of the schema.
    path(
        "users/keys/<int:key_id>/statics/",
        KeyStaticsAliasViewSet.as_view({"get": "stats"}),
        name="key-statics",
    ),
    path("users/<int:user_id>/budget/", BudgetViewSet.as_view({"get": "retrieve"}), name="budget"),
]
