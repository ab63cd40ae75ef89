"""The admin never shows an API key, its ciphertext or a JWT; service secrets show once."""

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from users import services
from users.errors import InvalidRefreshTokenError
from users.models import Profile, RefreshTokenRecord, ServiceToken

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-proj-" + "Kk77" * 10


def test_profile_and_user_pages_never_show_the_key(staff_client, user):
    services.api_key_set(user=user, api_key=OPENAI_KEY)
    pages = [
        reverse("admin:users_profile_changelist"),
        reverse("admin:users_profile_change", args=[user.profile.pk]),
        reverse("admin:users_user_change", args=[user.pk]),
        reverse("admin:users_user_changelist") + "?q=" + user.email,
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key FROM provider_keys WHERE user_id = %s", [user.pk])
        stored = cursor.fetchone()[0]
    for page in pages:
        response = staff_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert OPENAI_KEY not in html
        assert stored not in html
    # What the operator does see: the user's keys, by their hints.
    assert "sk-proj-...Kk77" in staff_client.get(pages[2]).content.decode()


def test_admin_add_user_creates_the_profile(staff_client):
    response = staff_client.post(
        reverse("admin:users_user_add"),
        {
            "email": "Added@Example.com",
            "username": "added",
            "password1": "zebra-quilt-9000",
            "password2": "zebra-quilt-9000",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content
    assert Profile.objects.filter(user__email="added@example.com").exists()


def test_service_token_admin_add_shows_the_secret_once(staff_client):
    response = staff_client.post(
        reverse("admin:users_servicetoken_add"),
        {"name": "worker", "scopes": ["documents:process"]},
    )

    assert response.status_code == 200
    secret = re.search(r"svc_[A-Za-z0-9_-]{40,}", response.content.decode()).group(0)
    token = ServiceToken.objects.get(name="worker")
    assert token.scopes == ["documents:process"]
    change = staff_client.get(reverse("admin:users_servicetoken_change", args=[token.pk]))
    assert secret not in change.content.decode()


def test_service_token_admin_revoke_action(staff_client):
    token, _ = services.service_token_create(name="old", scopes=["chat:read"])
    staff_client.post(
        reverse("admin:users_servicetoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked


def _tokens_everywhere(user) -> list[str]:
    """Live refresh tokens in every state, and what a page must never show of them."""
    login = services.tokens_issue(user=user)
    rotated = services.token_refresh(refresh=login["refresh"])
    services.token_revoke(refresh=services.tokens_issue(user=user)["refresh"])
    legacy = RefreshToken.for_user(user)  # the old path: its text sits in OutstandingToken
    legacy.blacklist()
    secrets = [login["refresh"], login["access"], rotated["refresh"], rotated["access"]]
    secrets.append(str(legacy))
    # A signature alone, or a whole jti (the admin shows only a prefix), is too much too.
    secrets += [token.rsplit(".", 1)[1] for token in list(secrets)]
    secrets += list(RefreshTokenRecord.objects.values_list("jti", flat=True))
    return secrets


def test_no_admin_page_shows_a_token(staff_client, user):
    secrets = _tokens_everywhere(user)
    record = RefreshTokenRecord.objects.filter(spent_at__isnull=False).first()
    pages = [reverse("admin:index")]
    pages += [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    pages += [
        reverse("admin:users_refreshtokenrecord_change", args=[record.pk]),
        reverse("admin:users_user_change", args=[user.pk]),
        reverse("admin:users_refreshtokenrecord_changelist") + "?q=" + user.email,
    ]

    for page in pages:
        response = staff_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert not [secret for secret in secrets if secret in html], page
    # What the operator does see: whose session, and a jti prefix.
    html = staff_client.get(pages[-1]).content.decode()
    assert record.jti[:8] in html
    assert user.email in html


def test_the_blacklist_admins_that_showed_tokens_are_gone(staff_client, user):
    for model in ("outstandingtoken", "blacklistedtoken"):
        response = staff_client.get(f"/admin/token_blacklist/{model}/")
        assert response.status_code == 404


def test_refresh_token_admin_is_read_only(staff_client, user):
    services.tokens_issue(user=user)
    record = RefreshTokenRecord.objects.get()

    assert staff_client.get(reverse("admin:users_refreshtokenrecord_add")).status_code == 403
    delete = reverse("admin:users_refreshtokenrecord_delete", args=[record.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:users_refreshtokenrecord_change", args=[record.pk])
    staff_client.post(change, {"revoked_at": "2020-01-01 00:00:00"})
    record.refresh_from_db()
    assert record.revoked_at is None


def test_refresh_token_admin_revokes_whole_sessions(staff_client, user):
    first = services.tokens_issue(user=user)["refresh"]
    rotated = services.token_refresh(refresh=first)["refresh"]
    other_session = services.tokens_issue(user=user)["refresh"]
    spent = RefreshTokenRecord.objects.get(spent_at__isnull=False)
    changelist = reverse("admin:users_refreshtokenrecord_changelist")
    chain = staff_client.get(f"{changelist}?family_id={spent.family_id}")
    assert chain.context["cl"].result_count == 2  # the session's tokens, linked from each row

    response = staff_client.post(
        changelist,
        {"action": "revoke_family", "_selected_action": [spent.pk]},
        follow=True,
    )

    assert "Revoked 1 session(s)" in response.content.decode()
    for token in (first, rotated):
        with pytest.raises(InvalidRefreshTokenError):
            services.token_refresh(refresh=token)
    services.token_refresh(refresh=other_session)


def test_admin_user_delete_goes_through_the_service(staff_client, user):
    from documents import services as document_services
    from documents.models import DocumentDeletion
    from documents.tests.factories import upload

    document_services.document_upload(user=user, file=upload("n.txt", b"notes"))
    response = staff_client.post(
        reverse("admin:users_user_changelist"),
        {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert DocumentDeletion.objects.filter(owner_id=user.pk).count() == 1
