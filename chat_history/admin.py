"""Operator views of chat sessions and messages.

Edits and deletes go through ``chat_history.services`` so the session counters
stay right and subscribers hear of them. A delete here is for good (an
operator removes what must go); what users trashed is listed with the
"in trash" filter and can be restored with an action. Nothing here renders a whole
conversation: the inline shows the newest messages only and links to the
filtered message list for the rest.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from chat_history import services
from chat_history.models import ChatMessage, ChatSession, ChatSessionMember
from core.admin import ServiceErrorsAdmin
from users.principals import OperatorPrincipal

INLINE_MESSAGES = 20


class RecentMessagesInline(admin.TabularInline):
    model = ChatMessage
    verbose_name_plural = f"newest {INLINE_MESSAGES} messages"
    fields = ("id", "role", "short_content", "created_at")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="content")
    def short_content(self, message: ChatMessage) -> str:
        return services.one_line(message.content, 120)


@admin.register(ChatSession)
class ChatSessionAdmin(ServiceErrorsAdmin):
    list_display = (
        "title_or_id",
        "user",
        "message_count",
        "member_count",
        "pinned",
        "archived",
        "updated_at",
    )
    list_filter = (
        "archived",
        "pinned",
        ("deleted_at", admin.EmptyFieldListFilter),
        ("updated_at", admin.DateFieldListFilter),
    )
    actions = ["restore_selected"]
    list_select_related = ("user",)
    search_fields = ("title", "=session_id", "user__email")
    raw_id_fields = ("user",)
    ordering = ("-updated_at",)
    show_full_result_count = False
    fields = (
        "session_id",
        "user",
        "title",
        "instructions",
        "archived",
        "pinned",
        "message_count",
        "members",
        "all_messages",
        "last_message_at",
        "active_leaf_id",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "session_id",
        "user",
        "message_count",
        "members",
        "all_messages",
        "last_message_at",
        "active_leaf_id",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    inlines = [RecentMessagesInline]

    @admin.display(description="session", ordering="title")
    def title_or_id(self, session: ChatSession) -> str:
        return str(session)

    @admin.display(description="members")
    def members(self, session: ChatSession) -> str:
        """Who shares it, with their role and unread count (read-only: members
        change through the API, whose services keep the count, limit and events)."""
        rows = ChatSessionMember.objects.filter(session=session).select_related("user")
        return format_html_join(
            mark_safe("<br>"),
            "{} ({}, {} unread)",
            (
                (member.user.email, member.role, member.unread_count)
                for member in rows.order_by("created_at", "id")
            ),
        )

    @admin.display(description="messages")
    def all_messages(self, session: ChatSession) -> str:
        url = reverse("admin:chat_history_chatmessage_changelist")
        return format_html(
            '<a href="{}?session__id__exact={}">All {} messages</a>',
            url,
            session.pk,
            session.message_count,
        )

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, RecentMessagesInline) and obj is not None:
            newest = ChatMessage.objects.filter(session=obj).order_by("-id")[:INLINE_MESSAGES]
            kwargs["queryset"] = ChatMessage.objects.filter(
                pk__in=list(newest.values_list("pk", flat=True))
            ).order_by("-id")
        return kwargs

    def has_add_permission(self, request) -> bool:
        return False  # sessions are created by their users or the AI service

    def save_model(self, request, obj, form, change):
        # The form already copied its values onto ``obj``; the service compares
        # them with the stored row to know what changed.
        services.chat_session_update(
            actor=OperatorPrincipal(request),
            session=ChatSession.objects.get(pk=obj.pk),
            **{
                name: form.cleaned_data[name]
                for name in ("title", "instructions", "archived", "pinned")
            },
        )

    def delete_model(self, request, obj):
        services.chat_session_delete(actor=OperatorPrincipal(request), session=obj, permanent=True)

    def delete_queryset(self, request, queryset):
        for session in queryset:
            services.chat_session_delete(
                actor=OperatorPrincipal(request), session=session, permanent=True
            )

    @admin.action(description="Restore selected sessions from the trash")
    def restore_selected(self, request, queryset):
        for session in queryset.filter(deleted_at__isnull=False):
            services.chat_session_restore(actor=OperatorPrincipal(request), session=session)


@admin.register(ChatMessage)
class ChatMessageAdmin(ServiceErrorsAdmin):
    list_display = ("id", "session", "role", "author_name", "short_content", "created_at")
    list_filter = (
        "role",
        ("deleted_at", admin.EmptyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("session",)
    search_fields = ("content",)
    raw_id_fields = ("session",)
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "session",
        "parent",
        "role",
        "author",
        "author_name",
        "content",
        "metadata",
        "client_message_id",
        "version",
        "feedback",
        "on_active_path",
        "deleted_at",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="content")
    def short_content(self, message: ChatMessage) -> str:
        return services.one_line(message.content, 80)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only: history is what was said

    def delete_model(self, request, obj):
        services.chat_message_delete(actor=OperatorPrincipal(request), message=obj, permanent=True)

    def delete_queryset(self, request, queryset):
        for message in queryset.select_related("session"):
            services.chat_message_delete(
                actor=OperatorPrincipal(request), message=message, permanent=True
            )
