"""What an operator needs: find a session's links, see which work, revoke them.

No token is ever shown (none is stored); ``token_prefix`` tells links apart.
Links are created only through the API, by the session's owner, and revoked
through the service, so the owner hears of it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from core.admin import ServiceErrorsAdmin
from sharing import services
from sharing.models import ShareLink, ShareStatus
from users.principals import OperatorPrincipal


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return ShareStatus.choices

    def queryset(self, request, queryset):
        now = timezone.now()
        expired = Q(expires_at__isnull=False, expires_at__lte=now)
        if self.value() == ShareStatus.REVOKED:
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == ShareStatus.EXPIRED:
            return queryset.filter(expired, revoked_at__isnull=True)
        if self.value() == ShareStatus.ACTIVE:
            return queryset.filter(revoked_at__isnull=True).exclude(expired)
        return queryset


@admin.register(ShareLink)
class ShareLinkAdmin(ServiceErrorsAdmin):
    list_display = (
        "token_prefix",
        "session",
        "created_by",
        "mode",
        "status",
        "created_at",
        "expires_at",
        "view_count",
        "last_viewed_at",
    )
    list_filter = ("mode", StatusFilter)
    list_select_related = ("session", "created_by")
    search_fields = ("=token_prefix", "=session__session_id", "created_by__email")
    ordering = ("-created_at", "-id")
    # The hash is not the token, but nobody needs to see it either.
    fields = (
        "session",
        "created_by",
        "token_prefix",
        "mode",
        "up_to_message_id",
        "status",
        "created_at",
        "expires_at",
        "revoked_at",
        "view_count",
        "last_viewed_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="status")
    def status(self, link: ShareLink) -> str:
        return ShareStatus(link.status).label

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row is the owner's record of the link

    @admin.action(description="Revoke selected share links")
    def revoke(self, request, queryset):
        operator = OperatorPrincipal(request)
        revoked = 0
        for link in queryset.filter(revoked_at__isnull=True).select_related("session"):
            services.share_link_revoke(actor=operator, session=link.session, link=link)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} share link(s).", messages.SUCCESS)
