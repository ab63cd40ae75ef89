"""``/api/users/keys/``: a user's provider keys over HTTP, the AI service's read
(``/api/users/{id}/api-key/?provider=&key_id=``), and the admin's view of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from users.models import ApiKeyAccessLog, KeyStatus, Provider, ProviderKey, Scope
from users.tests.factories import ProviderKeyFactory, sample_key

pytestmark = pytest.mark.django_db

KEYS = reverse("users:keys-list")
ANTHROPIC_KEY = "sk-ant-api03-" + "Zq9" * 14 + "TAIL"


def _key_url(key_id: int, action: str = "detail") -> str:
    return reverse(f"users:keys-{action}", args=[key_id])


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    return response.json()


def _throttle_rates(settings, **rates: str) -> None:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {**current, **rates}
    }


def _secret_of(key_id: int) -> str:
    return ProviderKey.objects.get(pk=key_id).encrypted_key


def _ciphertext_of(key_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key FROM provider_keys WHERE id = %s", [key_id])
        return cursor.fetchone()[0]


# --- The owner's routes ----------------------------------------------------------------


def test_create_stores_the_key_and_answers_with_its_hint_only(auth_client, user):
    response = auth_client.post(
        KEYS,
        {
            "provider": "anthropic",
            "api_key": ANTHROPIC_KEY,
            "label": "Work",
            "monthly_token_limit": 1_000_000,
            "monthly_cost_limit": 25.5,
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert ANTHROPIC_KEY not in response.content.decode()
    assert ANTHROPIC_KEY[-12:] not in response.content.decode()
    assert "api_key" not in body
    assert body == {
        "id": body["id"],
        "provider": "anthropic",
        "label": "Work",
        "base_url": "",
        "hint": "sk-ant-...TAIL",
        "is_default": True,
        "status": "active",
        "expires_at": None,
        "created_at": body["created_at"],
        "last_used_at": None,
        "last_verified_at": None,
        "last_verification": "",
        "monthly_token_limit": 1_000_000,
        "monthly_cost_limit": "25.500000",
    }
    assert _secret_of(body["id"]) == ANTHROPIC_KEY
    assert ProviderKey.objects.get(pk=body["id"]).user == user


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "openai", "api_key": "sk-not-quite"}, "api_key"),
        ({"provider": "google", "api_key": ANTHROPIC_KEY}, "api_key"),
        ({"provider": "azure_openai", "api_key": "a" * 32}, "base_url"),
        (
            {"provider": "openai", "api_key": sample_key("openai"), "base_url": "https://x.io"},
            "base_url",
        ),
        ({"provider": "mistral", "api_key": sample_key("openai")}, "provider"),
        ({"provider": "openai", "api_key": "sk-" + "a" * 510}, "api_key"),  # over 512
        (
            {
                "provider": "openai",
                "api_key": sample_key("openai"),
                "expires_at": "2001-01-01T00:00:00Z",
            },
            "expires_at",
        ),
        ({"provider": "openai", "api_key": sample_key("openai"), "secret": "x"}, "secret"),
        (
            {"provider": "openai", "api_key": sample_key("openai"), "monthly_cost_limit": -1},
            "monthly_cost_limit",
        ),
    ],
)
def test_create_refuses_bad_input_without_echoing_the_key(auth_client, body, field):
    response = auth_client.post(KEYS, body)

    assert field in _assert_error(response, 400, "invalid")["errors"]
    assert body["api_key"] not in response.content.decode()
    assert not ProviderKey.objects.exists()


def test_list_is_one_query_filters_by_provider_and_shows_no_secret(
    auth_client, user, other_user, django_assert_num_queries
):
    openai_default = ProviderKeyFactory(user=user)
    openai_other = ProviderKeyFactory(user=user)
    anthropic = ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    ProviderKeyFactory(user=other_user)

    with django_assert_num_queries(1) as captured:
        response = auth_client.get(KEYS)

    assert response.status_code == 200
    assert [k["id"] for k in response.json()] == [anthropic.pk, openai_default.pk, openai_other.pk]
    assert "encrypted_key" not in captured.captured_queries[0]["sql"]
    for key in (openai_default, openai_other, anthropic):
        assert _secret_of(key.pk) not in response.content.decode()
    only = auth_client.get(KEYS, {"provider": "openai"}).json()
    assert [k["id"] for k in only] == [openai_default.pk, openai_other.pk]
    _assert_error(auth_client.get(KEYS, {"provider": "nope"}), 400, "invalid")


def test_retrieve_patch_and_delete(auth_client, user):
    first = ProviderKeyFactory(user=user)
    second = ProviderKeyFactory(user=user)
    expiry = (timezone.now() + timedelta(days=7)).replace(microsecond=0)

    assert auth_client.get(_key_url(second.pk)).json()["is_default"] is False
    response = auth_client.patch(
        _key_url(second.pk),
        {"label": "Backup", "is_default": True, "expires_at": expiry.isoformat()},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["label"], body["is_default"], body["status"]) == ("Backup", True, "active")
    assert auth_client.get(_key_url(first.pk)).json()["is_default"] is False
    assert auth_client.delete(_key_url(second.pk)).status_code == 204
    assert auth_client.get(_key_url(first.pk)).json()["is_default"] is True  # promoted
    _assert_error(auth_client.get(_key_url(second.pk)), 404, "not_found")


def test_patch_refuses_a_new_secret_and_unsetting_the_default(auth_client, user):
    key = ProviderKeyFactory(user=user)
    secret = _secret_of(key.pk)

    response = auth_client.patch(_key_url(key.pk), {"api_key": sample_key("openai", 9)})
    assert "api_key" in _assert_error(response, 400, "invalid")["errors"]
    response = auth_client.patch(_key_url(key.pk), {"is_default": False})
    assert "is_default" in _assert_error(response, 400, "invalid")["errors"]
    response = auth_client.patch(_key_url(key.pk), {"status": "active"})
    assert "status" in _assert_error(response, 400, "invalid")["errors"]
    assert _secret_of(key.pk) == secret
    assert ProviderKey.objects.get(pk=key.pk).is_default


def test_revoke_over_the_api_is_irreversible(auth_client, user):
    key = ProviderKeyFactory(user=user)

    response = auth_client.patch(_key_url(key.pk), {"status": "revoked"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["is_default"]) == ("revoked", False)
    assert _ciphertext_of(key.pk) == ""
    _assert_error(auth_client.patch(_key_url(key.pk), {"is_default": True}), 409, "key_revoked")
    _assert_error(auth_client.post(_key_url(key.pk, "verify")), 409, "key_revoked")


def test_a_key_past_its_expiry_reads_as_expired(auth_client, user):
    key = ProviderKeyFactory(user=user, expires_at=timezone.now() + timedelta(minutes=5))
    assert auth_client.get(_key_url(key.pk)).json()["status"] == "active"

    ProviderKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())

    assert auth_client.get(_key_url(key.pk)).json()["status"] == "expired"
    assert auth_client.get(KEYS).json()[0]["status"] == "expired"
    # Clearing the expiry brings it back.
    response = auth_client.patch(_key_url(key.pk), {"expires_at": None})
    assert response.json()["status"] == "active"


def _every_route(key_id: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", _key_url(key_id), None),
        ("patch", _key_url(key_id), {"label": "mine now"}),
        ("patch", _key_url(key_id), {"is_default": True}),
        ("patch", _key_url(key_id), {"status": "revoked"}),
        ("delete", _key_url(key_id), None),
        ("post", _key_url(key_id, "verify"), None),
    ]


def test_another_users_key_is_a_404_on_every_route_and_method(auth_client, other_user, settings):
    settings.PROVIDER_BASE_URLS = {"openai": "http://127.0.0.1:9"}  # never reached
    theirs = ProviderKeyFactory(user=other_user)
    before = ProviderKey.objects.get(pk=theirs.pk)

    for method, url, body in _every_route(theirs.pk):
        response = (
            getattr(auth_client, method)(url, body) if body else getattr(auth_client, method)(url)
        )
        _assert_error(response, 404, "not_found")

    after = ProviderKey.objects.get(pk=theirs.pk)
    assert (after.label, after.status, after.is_default, after.updated_at) == (
        before.label,
        before.status,
        before.is_default,
        before.updated_at,
    )
    assert after.last_verification == ""
    assert theirs.pk not in [k["id"] for k in auth_client.get(KEYS).json()]


def test_an_unknown_key_is_a_404_too(auth_client):
    for method, url, body in _every_route(987_654):
        response = (
            getattr(auth_client, method)(url, body) if body else getattr(auth_client, method)(url)
        )
        _assert_error(response, 404, "not_found")


def test_service_tokens_cannot_use_the_owners_routes(service_client, user):
    key = ProviderKeyFactory(user=user)
    _assert_error(service_client.get(KEYS), 403, "end_user_only")
    _assert_error(service_client.get(_key_url(key.pk)), 403, "end_user_only")
    _assert_error(
        service_client.post(KEYS, {"provider": "openai", "api_key": sample_key("openai")}),
        403,
        "end_user_only",
    )


def test_key_routes_require_credentials(api_client):
    _assert_error(api_client.get(KEYS), 401, "not_authenticated")


def test_creates_and_verifies_are_throttled_per_user(
    auth_client, make_auth_client, user, other_user, settings
):
    _throttle_rates(settings, provider_keys="2/min", key_verify="1/min")
    settings.PROVIDER_BASE_URLS = {"openai": "http://127.0.0.1:9"}  # refused at once
    for n in range(2):
        body = {"provider": "openai", "api_key": sample_key("openai", n)}
        assert auth_client.post(KEYS, body).status_code == 201
    response = auth_client.post(KEYS, {"provider": "openai", "api_key": sample_key("openai", 3)})
    _assert_error(response, 429, "throttled")
    assert "Retry-After" in response
    # Someone else's budget is their own; reads are not throttled.
    other = make_auth_client(other_user)
    assert (
        other.post(KEYS, {"provider": "openai", "api_key": sample_key("openai", 4)}).status_code
        == 201
    )
    assert auth_client.get(KEYS).status_code == 200

    key_id = ProviderKey.objects.filter(user=user).first().pk
    assert auth_client.post(_key_url(key_id, "verify")).status_code == 200
    _assert_error(auth_client.post(_key_url(key_id, "verify")), 429, "throttled")


# --- Seed 000's profile describes the default OpenAI key ---------------------------------


def test_profile_shows_the_default_openai_key_in_one_query(
    api_client, user, django_assert_num_queries
):
    ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    ProviderKeyFactory(user=user, provider=Provider.OPENAI, is_default=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")

    response = api_client.get(reverse("users:profile"))
    assert response.json()["profile"] == {
        "preferred_language": "ko",
        "has_api_key": False,  # an OpenAI key, but not the default one
        "api_key_hint": None,
    }
    default = ProviderKeyFactory(user=user, provider=Provider.OPENAI, is_default=True)

    with django_assert_num_queries(1) as captured:
        response = api_client.get(reverse("users:profile"))

    assert response.json()["profile"]["has_api_key"] is True
    assert response.json()["profile"]["api_key_hint"] == default.hint
    assert "encrypted" not in captured.captured_queries[0]["sql"]


def test_a_key_added_by_set_api_key_is_listed_as_the_default_openai_key(auth_client):
    key = "sk-proj-" + "Set1" * 10 + "HINT"
    assert (
        auth_client.post(reverse("users:profile-set-api-key"), {"api_key": key}).status_code == 200
    )

    listed = auth_client.get(KEYS).json()

    assert [(k["provider"], k["label"], k["is_default"], k["hint"]) for k in listed] == [
        ("openai", "OpenAI", True, "sk-proj-...HINT")
    ]


# --- The AI service's read -------------------------------------------------------------


def _read(client, user_id: int, **params):
    return client.get(reverse("users:service-api-key", args=[user_id]), params)


def test_service_read_by_provider_and_by_key_id(make_service_client, user, settings):
    settings.PROVIDER_BASE_URLS = {**settings.PROVIDER_BASE_URLS, "anthropic": "https://proxy.test"}
    client = make_service_client(Scope.KEYS_READ)
    openai = ProviderKeyFactory(user=user)
    anthropic = ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC, label="Claude")
    compatible = ProviderKeyFactory(user=user, provider=Provider.OPENAI_COMPATIBLE)

    default_read = _read(client, user.pk).json()  # no parameter: openai, as seed 000 asks
    anthropic_read = _read(client, user.pk, provider="anthropic").json()
    by_id = _read(client, user.pk, key_id=compatible.pk).json()

    assert default_read == {
        "user_id": user.pk,
        "api_key": _secret_of(openai.pk),
        "key_id": openai.pk,
        "provider": "openai",
        "label": "OpenAI",
        "base_url": "https://api.openai.com/v1",
    }
    assert (anthropic_read["key_id"], anthropic_read["label"]) == (anthropic.pk, "Claude")
    assert anthropic_read["base_url"] == "https://proxy.test"
    assert (by_id["key_id"], by_id["provider"]) == (compatible.pk, "openai_compatible")
    assert by_id["base_url"] == "https://llm.example.com/v1"  # the key's own
    logged = list(ApiKeyAccessLog.objects.order_by("pk").values_list("user_id", "key_id"))
    assert logged == [(user.pk, openai.pk), (user.pk, anthropic.pk), (user.pk, compatible.pk)]
    assert ProviderKey.objects.get(pk=openai.pk).last_used_at is not None


def test_service_read_404s(make_service_client, user, other_user):
    client = make_service_client(Scope.KEYS_READ)
    key = ProviderKeyFactory(user=user)
    theirs = ProviderKeyFactory(user=other_user)
    ProviderKey.objects.filter(pk=key.pk).update(status=KeyStatus.INVALID)

    _assert_error(_read(client, user.pk), 404, "api_key_not_set")
    _assert_error(_read(client, user.pk, key_id=key.pk), 404, "api_key_not_set")
    _assert_error(_read(client, user.pk, key_id=theirs.pk), 404, "api_key_not_set")
    _assert_error(_read(client, user.pk, provider="google"), 404, "api_key_not_set")
    _assert_error(_read(client, 987_654), 404, "not_found")
    _assert_error(_read(client, user.pk, provider="nope"), 400, "invalid")
    assert not ApiKeyAccessLog.objects.exists()


# --- The admin ---------------------------------------------------------------------------


def test_admin_shows_keys_by_hint_never_the_secret(staff_client, user, make_service_client):
    key = ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    secret, ciphertext = _secret_of(key.pk), _ciphertext_of(key.pk)
    _read(make_service_client(Scope.KEYS_READ), user.pk, provider="anthropic")
    log = ApiKeyAccessLog.objects.get()
    pages = [
        reverse("admin:users_providerkey_changelist"),
        reverse("admin:users_providerkey_changelist") + "?q=" + user.email,
        reverse("admin:users_providerkey_changelist") + "?provider=anthropic&status=active",
        reverse("admin:users_providerkey_change", args=[key.pk]),
        reverse("admin:users_providerkey_delete", args=[key.pk]),
        reverse("admin:users_apikeyaccesslog_changelist"),
        reverse("admin:users_apikeyaccesslog_change", args=[log.pk]),
        reverse("admin:users_user_change", args=[user.pk]),
    ]
    for page in pages:
        response = staff_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert secret not in html, page
        assert ciphertext not in html, page
        assert 'name="encrypted_key"' not in html
    assert key.hint in staff_client.get(pages[0]).content.decode()
    assert key.hint in staff_client.get(pages[5]).content.decode()  # the read names the key
    assert staff_client.get(reverse("admin:users_providerkey_add")).status_code == 403


def test_admin_revoke_action_goes_through_the_service(staff_client, user):
    default, other = ProviderKeyFactory.create_batch(2, user=user)

    response = staff_client.post(
        reverse("admin:users_providerkey_changelist"),
        {"action": "revoke", "_selected_action": [default.pk]},
    )

    assert response.status_code == 302
    revoked = ProviderKey.objects.get(pk=default.pk)
    assert (revoked.status, revoked.is_default, _ciphertext_of(default.pk)) == (
        "revoked",
        False,
        "",
    )
    assert ProviderKey.objects.get(pk=other.pk).is_default  # the default passed on


def test_admin_delete_goes_through_the_service(staff_client, user):
    default, other = ProviderKeyFactory.create_batch(2, user=user)

    response = staff_client.post(
        reverse("admin:users_providerkey_delete", args=[default.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ProviderKey.objects.filter(pk=default.pk).exists()
    assert ProviderKey.objects.get(pk=other.pk).is_default


def test_operator_sets_a_users_budget_on_the_profile(staff_client, user):
    response = staff_client.post(
        reverse("admin:users_profile_change", args=[user.profile.pk]),
        {"preferred_language": "en", "monthly_token_limit": "50000", "monthly_cost_limit": "9.5"},
    )

    assert response.status_code == 302, response.content
    user.profile.refresh_from_db()
    assert (user.profile.monthly_token_limit, str(user.profile.monthly_cost_limit)) == (
        50000,
        "9.500000",
    )
