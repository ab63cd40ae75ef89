from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from users import services
from users.models import ApiKeyAccessLog, RefreshTokenRecord, Scope, User
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "a-much-better-passphrase-42"
OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2 + "WXYZ"


def _register(client, **overrides):
    body = {
        "username": "newuser",
        "email": "New.User@Example.com",
        "password": STRONG,
        "password_confirm": STRONG,
    } | overrides
    return client.post(reverse("users:auth-register"), body)


def _login(client, email, password=DEFAULT_PASSWORD, **extra):
    return client.post(reverse("users:auth-login"), {"email": email, "password": password}, **extra)


def _throttle_rates(settings, **rates: str) -> None:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {**current, **rates}
    }


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    return body


# --- Registration -------------------------------------------------------------


def test_register_returns_user_and_working_tokens(api_client):
    response = _register(api_client)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "email", "created_at", "token"}
    assert body["email"] == "new.user@example.com"
    assert set(body["token"]) == {"access", "refresh"}
    # End to end with the real access token: the account works at once.
    profile = _bearer(body["token"]["access"]).get(reverse("users:profile"))
    assert profile.status_code == 200
    assert profile.json()["id"] == body["id"]
    assert User.objects.get(pk=body["id"]).profile.preferred_language == "ko"


def test_register_rejects_email_taken_in_another_case(api_client, user):
    response = _register(api_client, email=user.email.upper())

    body = _assert_error(response, 400, "invalid")
    assert "email" in body["errors"]
    assert User.objects.count() == 1


def test_register_rejects_taken_username(api_client, user):
    body = _assert_error(_register(api_client, username=user.username), 400, "invalid")
    assert "username" in body["errors"]


def test_register_rejects_weak_password(api_client):
    response = _register(api_client, password="12345678", password_confirm="12345678")

    body = _assert_error(response, 400, "invalid")
    assert body["errors"]["password"]
    assert not User.objects.exists()


def test_register_names_the_mismatched_field(api_client):
    body = _assert_error(_register(api_client, password_confirm=STRONG + "x"), 400, "invalid")
    assert list(body["errors"]) == ["password_confirm"]
    assert body["detail"].startswith("password_confirm:")


@pytest.mark.parametrize("missing", ["username", "email", "password", "password_confirm"])
def test_register_requires_every_field(api_client, missing):
    body = {"username": "u1", "email": "u1@example.com", "password": STRONG}
    body["password_confirm"] = STRONG
    del body[missing]
    response = api_client.post(reverse("users:auth-register"), body)
    assert missing in _assert_error(response, 400, "invalid")["errors"]


def test_register_is_throttled_per_client(api_client, settings):
    _throttle_rates(settings, register="2/min", login_client="9/min", login_account="9/min")
    for n in range(2):
        assert _register(api_client, username=f"u{n}", email=f"u{n}@e.com").status_code == 201
    response = _register(api_client, username="u9", email="u9@e.com")
    _assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


# --- Login ----------------------------------------------------------------------


def test_login_returns_user_and_tokens(api_client, user):
    response = _login(api_client, user.email.upper())

    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"id": user.pk, "username": user.username, "email": user.email}
    assert set(body["token"]) == {"access", "refresh"}


@pytest.mark.parametrize(
    ("email", "password"),
    [("user-that-exists", "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)],
)
def test_login_failure_does_not_say_which_part_was_wrong(api_client, user, email, password):
    email = user.email if email == "user-that-exists" else email
    body = _assert_error(_login(api_client, email, password), 401, "invalid_credentials")
    assert body["detail"] == "Invalid email or password."


def test_login_refuses_inactive_user(api_client):
    inactive = UserFactory(is_active=False)
    _assert_error(_login(api_client, inactive.email), 401, "invalid_credentials")


def test_login_is_throttled_per_client(api_client, user, settings):
    _throttle_rates(settings, login_client="3/min", login_account="100/min", register="9/min")
    for n in range(3):
        _login(api_client, f"someone{n}@example.com", "nope")
    response = _login(api_client, user.email)
    _assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_guessing_from_elsewhere_does_not_lock_the_owner_out(api_client, user, settings):
    _throttle_rates(settings, login_client="100/min", login_account="2/min")
    for _ in range(2):
        _login(api_client, user.email, "wrong", REMOTE_ADDR="203.0.113.7")

    _assert_error(_login(api_client, user.email, REMOTE_ADDR="203.0.113.7"), 429, "throttled")
    # The owner, signing in from their own address, has a budget of their own.
    assert _login(api_client, user.email.upper(), REMOTE_ADDR="10.0.0.5").status_code == 200


def test_login_is_throttled_per_account_over_all_clients(api_client, user, settings):
    _throttle_rates(settings, login_client="100/min", login_account_total="3/min")
    for n in range(3):
        _login(api_client, user.email, "wrong", REMOTE_ADDR=f"10.0.0.{n}")
    response = _login(api_client, user.email.upper(), REMOTE_ADDR="10.0.0.99")
    _assert_error(response, 429, "throttled")
    # Another account from the same address is unaffected.
    other = UserFactory()
    assert _login(api_client, other.email, REMOTE_ADDR="10.0.0.99").status_code == 200


# --- Refresh and logout -------------------------------------------------------


def _refresh(client, refresh: str):
    return client.post(reverse("users:auth-refresh"), {"refresh": refresh})


def _rotated_long_ago(seconds: int = 60) -> None:
    """Move every rotation ``seconds`` into the past, beyond the grace window."""
    RefreshTokenRecord.objects.filter(spent_at__isnull=False).update(
        spent_at=F("spent_at") - timedelta(seconds=seconds)
    )


def test_refresh_rotates_the_pair(api_client, user):
    pair = _login(api_client, user.email).json()["token"]

    first = _refresh(api_client, pair["refresh"])

    assert first.status_code == 200
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != pair["refresh"]
    assert _bearer(rotated["access"]).get(reverse("users:profile")).status_code == 200
    assert _refresh(api_client, rotated["refresh"]).status_code == 200


def test_refresh_token_cannot_be_reused_after_rotation(api_client, user, settings):
    settings.JWT_REFRESH_GRACE_SECONDS = 0  # no overlap: any second use is reuse
    stolen = _login(api_client, user.email).json()["token"]["refresh"]
    thief = _refresh(api_client, stolen).json()["refresh"]  # the thief refreshes first

    reuse = _refresh(api_client, stolen)  # then the owner presents the same token

    _assert_error(reuse, 401, "token_not_valid")
    # The reuse revoked the whole family: the thief's token is dead too.
    _assert_error(_refresh(api_client, thief), 401, "token_not_valid")


def test_two_tabs_refreshing_at_once_get_the_same_token_and_both_keep_working(api_client, user):
    refresh = _login(api_client, user.email).json()["token"]["refresh"]

    for _ in range(3):  # each round both tabs hold the same token and race to refresh it
        tab_one = _refresh(api_client, refresh)
        tab_two = _refresh(api_client, refresh)
        assert tab_one.status_code == tab_two.status_code == 200, tab_two.content
        assert tab_two.json()["refresh"] == tab_one.json()["refresh"]
        for tab in (tab_one, tab_two):
            profile = _bearer(tab.json()["access"]).get(reverse("users:profile"))
            assert profile.status_code == 200
        refresh = tab_one.json()["refresh"]
    assert RefreshTokenRecord.objects.count() == 4  # the login and one successor a round


def test_a_duplicate_refresh_after_the_grace_window_is_reuse(api_client, user):
    refresh = _login(api_client, user.email).json()["token"]["refresh"]
    rotated = _refresh(api_client, refresh).json()["refresh"]
    _rotated_long_ago(seconds=11)  # the default window is 10 seconds

    _assert_error(_refresh(api_client, refresh), 401, "token_not_valid")
    _assert_error(_refresh(api_client, rotated), 401, "token_not_valid")


def test_refresh_query_counts(api_client, user, django_assert_num_queries):
    refresh = services.tokens_issue(user=user)["refresh"]

    # The token's row (locked) with its user, the successor's insert, the spend.
    with django_assert_num_queries(5):  # + the savepoint and its release
        rotated = _refresh(api_client, refresh)
    assert rotated.status_code == 200
    # Within the grace window: the token's row, then its successor.
    with django_assert_num_queries(4):
        again = _refresh(api_client, refresh)
    assert again.json()["refresh"] == rotated.json()["refresh"]


def test_a_refresh_token_issued_before_families_keeps_working(api_client, user):
    from django.apps import apps

    # What login returned before this change: simplejwt's for_user, recorded in
    # the blacklist app's OutstandingToken, without a family claim.
    legacy = str(RefreshToken.for_user(user))
    migration = importlib.import_module("users.migrations.0003_adopt_outstanding_tokens")
    migration.adopt_outstanding_tokens(apps, None)

    response = _refresh(api_client, legacy)

    assert response.status_code == 200
    assert _bearer(response.json()["access"]).get(reverse("users:profile")).status_code == 200
    assert _refresh(api_client, response.json()["refresh"]).status_code == 200


@pytest.mark.parametrize("kind", ["garbage", "expired", "access-as-refresh"])
def test_refresh_rejects_bad_tokens(api_client, user, kind):
    if kind == "garbage":
        raw = "not-a-token"
    elif kind == "expired":
        token = RefreshToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        raw = str(token)
    else:
        raw = str(AccessToken.for_user(user))
    response = api_client.post(reverse("users:auth-refresh"), {"refresh": raw})
    _assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_a_deactivated_account(api_client, user):
    refresh = services.tokens_issue(user=user)["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = api_client.post(reverse("users:auth-refresh"), {"refresh": refresh})
    _assert_error(response, 401, "token_not_valid")


def test_logout_revokes_the_refresh_token(api_client, user):
    refresh = _login(api_client, user.email).json()["token"]["refresh"]

    response = api_client.post(reverse("users:auth-logout"), {"refresh": refresh})

    assert response.status_code == 204
    after = api_client.post(reverse("users:auth-refresh"), {"refresh": refresh})
    _assert_error(after, 401, "token_not_valid")
    twice = api_client.post(reverse("users:auth-logout"), {"refresh": refresh})
    _assert_error(twice, 401, "token_not_valid")


def test_logout_revokes_the_whole_session_and_only_it(api_client, user):
    first = _login(api_client, user.email).json()["token"]["refresh"]
    rotated = _refresh(api_client, first).json()["refresh"]
    other_device = _login(api_client, user.email).json()["token"]["refresh"]

    assert api_client.post(reverse("users:auth-logout"), {"refresh": rotated}).status_code == 204

    for token in (first, rotated):
        _assert_error(_refresh(api_client, token), 401, "token_not_valid")
    assert _refresh(api_client, other_device).status_code == 200


def test_logout_requires_a_refresh_token(api_client):
    assert (
        "refresh"
        in _assert_error(api_client.post(reverse("users:auth-logout"), {}), 400, "invalid")[
            "errors"
        ]
    )


# --- Access tokens --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "expired", "refresh-as-access", "unknown-scheme"])
def test_protected_routes_reject_bad_access_tokens(user, kind):
    client = APIClient()
    if kind == "unknown-scheme":
        client.credentials(HTTP_AUTHORIZATION=f"Token {AccessToken.for_user(user)}")
        _assert_error(client.get(reverse("users:profile")), 401, "not_authenticated")
        return
    if kind == "garbage":
        raw = "a.b.c"
    elif kind == "expired":
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        raw = str(token)
    else:
        raw = str(RefreshToken.for_user(user))
    response = _bearer(raw).get(reverse("users:profile"))
    _assert_error(response, 401, "token_not_valid")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_protected_routes_require_credentials(api_client):
    _assert_error(api_client.get(reverse("users:profile")), 401, "not_authenticated")


# --- Profile --------------------------------------------------------------------


def test_profile_shape(auth_client, user):
    response = auth_client.get(reverse("users:profile"))

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "profile": {"preferred_language": "ko", "has_api_key": False, "api_key_hint": None},
    }


def test_profile_with_a_real_token_is_one_query(api_client, user, django_assert_num_queries):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")

    with django_assert_num_queries(1) as captured:  # the user, its profile joined
        response = api_client.get(reverse("users:profile"))

    assert response.status_code == 200
    assert response.json()["profile"]["preferred_language"] == "ko"
    assert "encrypted" not in captured.captured_queries[0]["sql"]


def test_profile_patch_changes_language_and_username(auth_client, user):
    response = auth_client.patch(
        reverse("users:profile"), {"preferred_language": "en", "username": "renamed"}
    )

    assert response.status_code == 200
    assert response.json()["username"] == "renamed"
    assert response.json()["profile"]["preferred_language"] == "en"
    user.refresh_from_db()
    assert user.username == "renamed"
    assert user.profile.preferred_language == "en"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"preferred_language": "fr"}, "preferred_language"), ({"username": "bad name!"}, "username")],
)
def test_profile_patch_rejects_invalid_values(auth_client, user, body, field):
    assert (
        field
        in _assert_error(auth_client.patch(reverse("users:profile"), body), 400, "invalid")[
            "errors"
        ]
    )
    user.refresh_from_db()
    assert user.profile.preferred_language == "ko"


def test_profile_patch_rejects_a_taken_username(auth_client, other_user):
    response = auth_client.patch(reverse("users:profile"), {"username": other_user.username})
    assert "username" in _assert_error(response, 400, "invalid")["errors"]


def test_profile_routes_refuse_service_tokens(service_client):
    _assert_error(service_client.get(reverse("users:profile")), 403, "end_user_only")


# --- OpenAI API key -------------------------------------------------------------


def test_set_api_key_stores_it_and_shows_only_a_hint(auth_client):
    response = auth_client.post(reverse("users:profile-set-api-key"), {"api_key": OPENAI_KEY})

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert OPENAI_KEY not in response.content.decode()
    profile = auth_client.get(reverse("users:profile")).json()["profile"]
    assert profile["has_api_key"] is True
    assert profile["api_key_hint"] == "sk-proj-...WXYZ"


@pytest.mark.parametrize("value", ["hello", "sk-short", "pk-" + "a" * 40, "sk-" + "a" * 30 + " x"])
def test_set_api_key_rejects_implausible_keys_without_echoing_them(auth_client, value):
    response = auth_client.post(reverse("users:profile-set-api-key"), {"api_key": value})

    assert "api_key" in _assert_error(response, 400, "invalid")["errors"]
    assert value not in response.content.decode()
    assert auth_client.get(reverse("users:profile")).json()["profile"]["has_api_key"] is False


def test_delete_api_key(auth_client):
    auth_client.post(reverse("users:profile-set-api-key"), {"api_key": OPENAI_KEY})

    assert auth_client.delete(reverse("users:profile-api-key")).status_code == 204
    assert auth_client.get(reverse("users:profile")).json()["profile"]["has_api_key"] is False
    _assert_error(auth_client.delete(reverse("users:profile-api-key")), 404, "api_key_not_set")


# --- Password change ------------------------------------------------------------


def test_password_change_revokes_every_session(api_client, user):
    first = _login(api_client, user.email).json()["token"]
    second = _refresh(api_client, _login(api_client, user.email).json()["token"]["refresh"]).json()
    client = _bearer(first["access"])

    response = client.post(
        reverse("users:password-change"), {"old_password": DEFAULT_PASSWORD, "new_password": STRONG}
    )

    assert response.status_code == 200
    assert response.json()["revoked_refresh_tokens"] == 2
    for pair in (first, second):
        refresh = api_client.post(reverse("users:auth-refresh"), {"refresh": pair["refresh"]})
        _assert_error(refresh, 401, "token_not_valid")
        _assert_error(
            _bearer(pair["access"]).get(reverse("users:profile")), 401, "password_changed"
        )
    assert _login(api_client, user.email, STRONG).status_code == 200
    _assert_error(_login(api_client, user.email), 401, "invalid_credentials")


def test_password_change_requires_the_current_password(auth_client, user):
    response = auth_client.post(
        reverse("users:password-change"), {"old_password": "wrong", "new_password": STRONG}
    )
    assert "old_password" in _assert_error(response, 400, "invalid")["errors"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_password_change_validates_the_new_password(auth_client):
    response = auth_client.post(
        reverse("users:password-change"),
        {"old_password": DEFAULT_PASSWORD, "new_password": "password"},
    )
    assert "new_password" in _assert_error(response, 400, "invalid")["errors"]


# --- Service tokens and the key read route ---------------------------------------


def _store_key(user, key=OPENAI_KEY):
    client = APIClient()
    client.force_authenticate(user)
    assert client.post(reverse("users:profile-set-api-key"), {"api_key": key}).status_code == 200


def test_service_with_keys_read_gets_the_key_and_the_read_is_logged(make_service_client, user):
    _store_key(user)
    client = make_service_client(Scope.KEYS_READ)

    response = client.get(reverse("users:service-api-key", args=[user.pk]))

    assert response.status_code == 200
    body = response.json()
    assert (body["user_id"], body["api_key"], body["provider"]) == (user.pk, OPENAI_KEY, "openai")
    log = ApiKeyAccessLog.objects.get()
    assert log.user == user
    assert log.key_id == body["key_id"]
    assert log.service_token.scopes == [Scope.KEYS_READ]


def test_service_without_keys_read_is_forbidden(make_service_client, user):
    _store_key(user)
    client = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)
    response = client.get(reverse("users:service-api-key", args=[user.pk]))
    _assert_error(response, 403, "missing_scope")
    assert not ApiKeyAccessLog.objects.exists()


def test_end_users_cannot_read_keys_even_their_own(auth_client, user):
    _store_key(user)
    response = auth_client.get(reverse("users:service-api-key", args=[user.pk]))
    _assert_error(response, 403, "service_only")


def test_key_read_for_unknown_user_or_missing_key_is_404(make_service_client, user):
    client = make_service_client(Scope.KEYS_READ)
    _assert_error(
        client.get(reverse("users:service-api-key", args=[user.pk])), 404, "api_key_not_set"
    )
    _assert_error(client.get(reverse("users:service-api-key", args=[999_999])), 404, "not_found")


@pytest.mark.parametrize("kind", ["unknown", "revoked"])
def test_invalid_service_tokens_are_rejected(user, kind):
    from users.tests.factories import service_token_create

    token, secret = service_token_create(scopes=[Scope.KEYS_READ])
    if kind == "unknown":
        secret = secret[:-4] + "AAAA"
    else:
        services.service_token_revoke(token=token)
    response = _bearer(secret).get(reverse("users:service-api-key", args=[user.pk]))
    _assert_error(response, 401, "invalid_service_token")


def test_login_accepts_a_legacy_pbkdf2_hash_and_upgrades_it(api_client, user):
    from django.contrib.auth.hashers import make_password

    User.objects.filter(pk=user.pk).update(
        password=make_password(DEFAULT_PASSWORD, hasher="pbkdf2_sha256")
    )

    assert _login(api_client, user.email).status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$")
