from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.admin import ServiceErrorsAdmin
from users import selectors, services
from users.models import (
    ApiKeyAccessLog,
    Profile,
    ProviderKey,
    RefreshTokenRecord,
    Scope,
    ServiceToken,
    User,
)

# simplejwt's blacklist admin shows each token's text; our refresh token records
# (below) keep no text at all. The app stays installed for its migration only.
for _blacklist_model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(_blacklist_model):
        admin.site.unregister(_blacklist_model)


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("preferred_language", "monthly_token_limit", "monthly_cost_limit")


@admin.register(User)
class UserAdmin(ServiceErrorsAdmin, DjangoUserAdmin):
    inlines = [ProfileInline]
    list_display = ("email", "username", "is_active", "is_staff", "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser", "profile__preferred_language")
    search_fields = ("email", "username")
    ordering = ("-created_at",)
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "username", "password1", "password2")}),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, ("Provider keys", {"fields": ("provider_keys",)}))

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "provider_keys")

    @admin.display(description="keys")
    def provider_keys(self, user: User):
        """The user's keys by hint, each linking to its page (read-only there)."""
        keys = selectors.provider_key_list(user=user)
        return (
            format_html_join(
                mark_safe("<br>"),
                '<a href="{}">{}: {} ({}){}, {}</a>',
                (
                    (
                        reverse("admin:users_providerkey_change", args=[key.pk]),
                        key.get_provider_display(),
                        key.label,
                        key.hint,
                        ", default" if key.is_default else "",
                        key.effective_status,
                    )
                    for key in keys
                ),
            )
            or "-"
        )

    def get_inlines(self, request, obj):
        # The profile is created with the user; the add form has none yet.
        return self.inlines if obj else []

    def delete_model(self, request, obj):
        services.user_delete(user=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.user_delete(user=user)

    def save_model(self, request, obj, form, change):
        obj.email = User.objects.normalize_email(obj.email)
        super().save_model(request, obj, form, change)
        if not change:
            Profile.objects.get_or_create(user=obj)
        elif "is_active" in form.changed_data and not obj.is_active:
            services.user_sign_out_everywhere(user=obj)  # deactivated: no session survives


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Language and the user's monthly budget (an operator's to set)."""

    list_display = ("user", "preferred_language", "monthly_token_limit", "monthly_cost_limit")
    list_filter = ("preferred_language",)
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)
    fields = (
        "user",
        "preferred_language",
        "monthly_token_limit",
        "monthly_cost_limit",
        "created_at",
    )
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request) -> bool:
        return False


class ServiceTokenAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ServiceToken
        fields = ("name", "scopes")


@admin.register(ServiceToken)
class ServiceTokenAdmin(ServiceErrorsAdmin):
    add_form = ServiceTokenAddForm
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes")
        return ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("name", "scopes") if obj else ())

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, raw = services.service_token_create(
            name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        obj.pk = token.pk
        request._service_token_secret = raw  # shown once by response_add, never stored

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/users/servicetoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "token": obj,
                "secret": request._service_token_secret,
                "title": "Service token created",
            },
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.service_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(ProviderKey)
class ProviderKeyAdmin(ServiceErrorsAdmin):
    """Users' provider keys, by hint: the secret is never read, shown or in a form.

    Read-only; an operator may revoke (erases the secret) or delete keys, both
    through ``users.services``, so the default-per-provider rule holds.
    """

    list_display = (
        "user",
        "provider",
        "label",
        "hint",
        "is_default",
        "effective_status",
        "last_used_at",
        "last_verification",
    )
    list_filter = ("provider", "status", "last_verification")
    search_fields = ("user__email", "label")
    list_select_related = ("user",)
    ordering = ("user", "provider", "-is_default", "-created_at")
    fields = (
        "user",
        "provider",
        "label",
        "base_url",
        "hint",
        "is_default",
        "effective_status",
        "expires_at",
        "monthly_token_limit",
        "monthly_cost_limit",
        "last_used_at",
        "last_verified_at",
        "last_verification",
        "last_verification_detail",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("encrypted_key")

    @admin.display(description="status", ordering="status")
    def effective_status(self, key: ProviderKey) -> str:
        return key.effective_status

    @admin.action(
        description="Revoke the selected keys (erases their secrets)", permissions=["revoke"]
    )
    def revoke(self, request, queryset):
        keys = list(queryset.select_related("user"))
        for key in keys:
            services.provider_key_update(user=key.user, key_id=key.pk, status="revoked")
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)

    def delete_model(self, request, obj):
        services.provider_key_delete(user=obj.user, key_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for key in queryset.select_related("user"):
            services.provider_key_delete(user=key.user, key_id=key.pk)

    def has_revoke_permission(self, request) -> bool:
        return super().has_change_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiKeyAccessLog)
class ApiKeyAccessLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "service_token", "user", "key")
    list_filter = ("service_token",)
    search_fields = ("user__email", "service_token__name")
    list_select_related = ("user", "service_token", "key")
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # The key is shown by its hint; its secret is never read.
        return super().get_queryset(request).defer("key__encrypted_key")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RefreshTokenRecord)
class RefreshTokenRecordAdmin(admin.ModelAdmin):
    """Who holds which session; never a token (none is stored), only a jti prefix.

    Read-only; the one change an operator makes is "Revoke the selected tokens'
    sessions", through ``services.refresh_token_family_revoke``.
    """

    list_display = (
        "jti_prefix",
        "user",
        "family",
        "issued_at",
        "expires_at",
        "spent_at",
        "revoked_at",
    )
    list_filter = (
        ("revoked_at", admin.EmptyFieldListFilter),
        ("spent_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "issued_at"
    ordering = ("-issued_at", "-pk")
    fields = (
        "jti_prefix",
        "user",
        "family",
        "issued_at",
        "expires_at",
        "spent_at",
        "successor_prefix",
        "revoked_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["revoke_family"]

    @admin.display(description="jti", ordering="jti")
    def jti_prefix(self, record: RefreshTokenRecord) -> str:
        return f"{record.jti_prefix}…"

    @admin.display(description="family", ordering="family_id")
    def family(self, record: RefreshTokenRecord) -> str:
        # Links to the whole chain of the session: every token of the family.
        chain = reverse("admin:users_refreshtokenrecord_changelist")
        return format_html(
            '<a href="{}?family_id={}">{}…</a>', chain, record.family_id, record.family_id.hex[:8]
        )

    @admin.display(description="successor jti")
    def successor_prefix(self, record: RefreshTokenRecord) -> str:
        return f"{record.successor_jti[:8]}…" if record.successor_jti else "-"

    @admin.action(
        description="Revoke the selected tokens' sessions (their whole families)",
        permissions=["revoke"],
    )
    def revoke_family(self, request, queryset):
        families = set(queryset.values_list("family_id", flat=True))
        revoked = sum(services.refresh_token_family_revoke(family_id=f) for f in families)
        self.message_user(
            request,
            f"Revoked {len(families)} session(s); {revoked} of them still had a live token.",
            messages.SUCCESS,
        )

    def has_revoke_permission(self, request) -> bool:
        # Revoking is the one change there is; records are never edited in a form.
        return super().has_change_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
