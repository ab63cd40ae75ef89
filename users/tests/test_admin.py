"""The admin never shows an API key or its ciphertext; service secrets show once."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from users import services
from users.models import Profile, ServiceToken

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
        cursor.execute("SELECT encrypted_api_key FROM profiles WHERE user_id = %s", [user.pk])
        stored = cursor.fetchone()[0]
    for page in pages:
        response = staff_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert OPENAI_KEY not in html
        assert stored not in html
    # What the operator does see: that a key exists, and its hint.
    assert "sk-proj-...Kk77" in staff_client.get(pages[1]).content.decode()


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


def test_blacklisted_token_admin_is_available(staff_client):
    assert (
        staff_client.get(reverse("admin:token_blacklist_blacklistedtoken_changelist")).status_code
        == 200
    )


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
