"""Provider keys in ``users.services`` and ``users.selectors``: formats, hints,
the default-per-provider rule (sequential and concurrent), revocation,
deletion, seed 000's one key, and the AI service's read."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.utils import timezone

from users import selectors, services
from users.errors import ApiKeyNotSetError, ProviderKeyNotFoundError, ProviderKeyRevokedError
from users.models import ApiKeyAccessLog, KeyStatus, Profile, Provider, ProviderKey, Scope
from users.tests.factories import (
    ProviderKeyFactory,
    UserFactory,
    sample_base_url,
    sample_key,
    service_token_create,
)

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-proj-" + "Xy12" * 10 + "LAST"


def _defaults(user, provider: str = Provider.OPENAI) -> list[int]:
    return list(
        ProviderKey.objects.filter(user=user, provider=provider, is_default=True).values_list(
            "pk", flat=True
        )
    )


def _stored_ciphertext(key_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key FROM provider_keys WHERE id = %s", [key_id])
        return cursor.fetchone()[0]


# --- Formats and hints --------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "api_key", "hint"),
    [
        (Provider.OPENAI, "sk-" + "a" * 40 + "WXYZ", "sk-...WXYZ"),
        (Provider.OPENAI, "sk-proj-" + "b" * 40 + "WXYZ", "sk-proj-...WXYZ"),
        (Provider.OPENAI, "sk-svcacct-" + "c" * 40 + "WXYZ", "sk-svcacct-...WXYZ"),
        (Provider.ANTHROPIC, "sk-ant-api03-" + "d" * 40 + "WXYZ", "sk-ant-...WXYZ"),
        (Provider.GOOGLE, "AIza" + "e" * 31 + "WXYZ", "AIza...WXYZ"),
        (Provider.AZURE_OPENAI, "f" * 28 + "WXYZ", "...WXYZ"),
        (Provider.OPENAI_COMPATIBLE, "my-local:key/" + "WXYZ", "...WXYZ"),
    ],
)
def test_each_provider_key_is_stored_encrypted_with_its_hint(user, provider, api_key, hint):
    key = services.provider_key_create(
        user=user, provider=provider, api_key=api_key, base_url=sample_base_url(provider)
    )

    stored = ProviderKey.objects.get(pk=key.pk)
    assert stored.hint == hint
    assert stored.encrypted_key == api_key
    assert api_key not in _stored_ciphertext(key.pk)
    assert stored.label == Provider(provider).label
    assert stored.is_default is True  # the first key of its provider


@pytest.mark.parametrize(
    ("provider", "api_key"),
    [
        (Provider.OPENAI, "pk-" + "a" * 40),
        (Provider.OPENAI, "sk-short"),
        (Provider.ANTHROPIC, "sk-" + "a" * 40),  # an OpenAI key is not an Anthropic key
        (Provider.GOOGLE, "AIza" + "a" * 34),  # one short
        (Provider.GOOGLE, "AIza" + "a" * 36),  # one long
        (Provider.AZURE_OPENAI, "a" * 31),
        (Provider.AZURE_OPENAI, "a" * 31 + "-"),
        (Provider.OPENAI_COMPATIBLE, "short-key"),
        (Provider.OPENAI_COMPATIBLE, "has a space in it"),
        (Provider.OPENAI_COMPATIBLE, "x" * 513),
    ],
)
def test_a_malformed_key_is_an_api_key_error_that_never_echoes_it(user, provider, api_key):
    with pytest.raises(ValidationError) as excinfo:
        services.provider_key_create(
            user=user, provider=provider, api_key=api_key, base_url=sample_base_url(provider)
        )

    assert list(excinfo.value.message_dict) == ["api_key"]
    assert api_key not in str(excinfo.value.message_dict)
    assert not ProviderKey.objects.exists()


@pytest.mark.parametrize(
    ("provider", "base_url", "allow_private"),
    [
        (Provider.AZURE_OPENAI, "", False),  # required
        (Provider.OPENAI_COMPATIBLE, "http://llm.example.com/v1", False),  # https only
        (Provider.OPENAI_COMPATIBLE, "https://user:pw@llm.example.com/v1", False),
        (Provider.OPENAI_COMPATIBLE, "https://llm.example.com/v1#frag", False),
        (Provider.OPENAI_COMPATIBLE, "https://llm.example.com/v1?x=1", False),
        (Provider.OPENAI_COMPATIBLE, "https://10.0.0.5/v1", False),  # a private address
        (Provider.OPENAI_COMPATIBLE, "https://169.254.169.254/", False),
        (Provider.OPENAI_COMPATIBLE, "ftp://llm.example.com/", True),
        (Provider.OPENAI_COMPATIBLE, "not a url", True),
        (Provider.OPENAI, "https://my-proxy.example.com/v1", False),  # the operator's
        (Provider.ANTHROPIC, "https://my-proxy.example.com", True),
    ],
)
def test_base_url_rules(user, settings, provider, base_url, allow_private):
    settings.PROVIDER_ALLOW_PRIVATE_URLS = allow_private
    with pytest.raises(ValidationError) as excinfo:
        services.provider_key_create(
            user=user, provider=provider, api_key=sample_key(provider), base_url=base_url
        )
    assert list(excinfo.value.message_dict) == ["base_url"]


def test_http_and_private_base_urls_only_when_allowed(user, settings):
    settings.PROVIDER_ALLOW_PRIVATE_URLS = True
    key = services.provider_key_create(
        user=user,
        provider=Provider.OPENAI_COMPATIBLE,
        api_key=sample_key(Provider.OPENAI_COMPATIBLE),
        base_url="http://192.168.1.20:11434/v1/",
    )
    assert key.base_url == "http://192.168.1.20:11434/v1"  # trailing slash dropped


def test_expiry_must_be_in_the_future(user):
    with pytest.raises(ValidationError) as excinfo:
        ProviderKeyFactory(user=user, expires_at=timezone.now() - timedelta(seconds=1))
    assert list(excinfo.value.message_dict) == ["expires_at"]


# --- The default per provider ---------------------------------------------------------


def test_first_key_of_each_provider_is_its_default_the_next_ones_are_not(user):
    first = ProviderKeyFactory(user=user)
    second = ProviderKeyFactory(user=user)
    anthropic = ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    never = ProviderKeyFactory(user=user, provider=Provider.GOOGLE, is_default=False)

    assert _defaults(user) == [first.pk]
    assert not ProviderKey.objects.get(pk=second.pk).is_default
    assert _defaults(user, Provider.ANTHROPIC) == [anthropic.pk]
    assert not ProviderKey.objects.get(pk=never.pk).is_default


def test_creating_a_default_takes_over_from_the_previous_one(user, other_user):
    first = ProviderKeyFactory(user=user)
    theirs = ProviderKeyFactory(user=other_user)

    second = ProviderKeyFactory(user=user, is_default=True)

    assert _defaults(user) == [second.pk]
    assert not ProviderKey.objects.get(pk=first.pk).is_default
    assert _defaults(other_user) == [theirs.pk]


def test_make_default_moves_it_and_only_true_is_accepted(user):
    first, second = ProviderKeyFactory.create_batch(2, user=user)

    services.provider_key_update(user=user, key_id=second.pk, is_default=True)
    assert _defaults(user) == [second.pk]
    services.provider_key_update(user=user, key_id=second.pk, is_default=True)  # idempotent
    assert _defaults(user) == [second.pk]

    with pytest.raises(ValidationError) as excinfo:
        services.provider_key_update(user=user, key_id=second.pk, is_default=False)
    assert list(excinfo.value.message_dict) == ["is_default"]
    assert _defaults(user) == [second.pk]
    assert first.pk not in _defaults(user)


def test_the_database_refuses_two_defaults_for_one_provider(user):
    _, second = ProviderKeyFactory.create_batch(2, user=user)
    with pytest.raises(IntegrityError):
        ProviderKey.objects.filter(pk=second.pk).update(is_default=True)


def test_update_changes_label_expiry_and_limits_only(user):
    key = ProviderKeyFactory(user=user)
    expiry = timezone.now() + timedelta(days=30)

    updated = services.provider_key_update(
        user=user,
        key_id=key.pk,
        label="  Work  ",
        expires_at=expiry,
        monthly_token_limit=1_000_000,
        monthly_cost_limit=Decimal("12.50"),
    )

    stored = ProviderKey.objects.get(pk=key.pk)
    assert (stored.label, stored.expires_at, stored.monthly_token_limit) == (
        "Work",
        expiry,
        1_000_000,
    )
    assert stored.monthly_cost_limit == Decimal("12.50")
    assert updated.label == "Work"
    services.provider_key_update(user=user, key_id=key.pk, expires_at=None)
    assert ProviderKey.objects.get(pk=key.pk).expires_at is None


@pytest.mark.parametrize(
    "changes",
    [
        {"api_key": OPENAI_KEY},
        {"provider": Provider.ANTHROPIC},
        {"base_url": "https://x.example.com"},
        {"status": KeyStatus.ACTIVE},
        {"label": " "},
        {"expires_at": timezone.now() - timedelta(days=1)},
    ],
)
def test_update_refuses_everything_else(user, changes):
    key = ProviderKeyFactory(user=user)
    before = ProviderKey.objects.get(pk=key.pk)

    with pytest.raises(ValidationError) as excinfo:
        services.provider_key_update(user=user, key_id=key.pk, **changes)

    assert list(excinfo.value.message_dict) == list(changes)
    after = ProviderKey.objects.get(pk=key.pk)
    assert (after.encrypted_key, after.label, after.updated_at) == (
        before.encrypted_key,
        before.label,
        before.updated_at,
    )


def test_revoking_erases_the_secret_and_passes_the_default_on(user):
    older, newer, default = ProviderKeyFactory.create_batch(3, user=user)
    services.provider_key_update(user=user, key_id=default.pk, is_default=True)

    revoked = services.provider_key_update(user=user, key_id=default.pk, status="revoked")

    stored = ProviderKey.objects.get(pk=default.pk)
    assert (stored.status, stored.encrypted_key, stored.is_default) == ("revoked", "", False)
    assert revoked.status == "revoked"
    assert _defaults(user) == [newer.pk]  # the newest active key
    assert older.pk not in _defaults(user)
    # Irreversible: it can never be the default, and its secret is gone.
    with pytest.raises(ProviderKeyRevokedError):
        services.provider_key_update(user=user, key_id=default.pk, is_default=True)
    with pytest.raises(ProviderKeyRevokedError):
        services.provider_key_verify(user=user, key_id=default.pk)
    services.provider_key_update(user=user, key_id=default.pk, status="revoked")  # a no-op


def test_deleting_the_default_promotes_the_newest_active_unexpired_key(user):
    oldest = ProviderKeyFactory(user=user)  # the default
    valid = ProviderKeyFactory(user=user)
    soon = ProviderKeyFactory(user=user, expires_at=timezone.now() + timedelta(hours=1))
    invalid = ProviderKeyFactory(user=user)
    revoked = ProviderKeyFactory(user=user)
    ProviderKey.objects.filter(pk=invalid.pk).update(status=KeyStatus.INVALID)
    services.provider_key_update(user=user, key_id=revoked.pk, status="revoked")
    ProviderKey.objects.filter(pk=soon.pk).update(expires_at=timezone.now())  # now expired

    services.provider_key_delete(user=user, key_id=oldest.pk)

    assert _defaults(user) == [valid.pk]
    services.provider_key_delete(user=user, key_id=valid.pk)
    assert _defaults(user) == []  # nothing usable is left to promote
    services.provider_key_delete(user=user, key_id=soon.pk)
    assert not ProviderKey.objects.filter(pk=soon.pk).exists()


def test_deleting_another_key_leaves_the_default_alone(user):
    default, other = ProviderKeyFactory.create_batch(2, user=user)
    services.provider_key_delete(user=user, key_id=other.pk)
    assert _defaults(user) == [default.pk]


def test_another_users_key_is_not_found_for_every_service(user, other_user):
    theirs = ProviderKeyFactory(user=other_user)
    for call in (
        lambda: selectors.provider_key_get(user=user, key_id=theirs.pk),
        lambda: services.provider_key_update(user=user, key_id=theirs.pk, label="mine"),
        lambda: services.provider_key_update(user=user, key_id=theirs.pk, is_default=True),
        lambda: services.provider_key_update(user=user, key_id=theirs.pk, status="revoked"),
        lambda: services.provider_key_delete(user=user, key_id=theirs.pk),
        lambda: services.provider_key_verify(user=user, key_id=theirs.pk),
    ):
        with pytest.raises(ProviderKeyNotFoundError):
            call()
    stored = ProviderKey.objects.get(pk=theirs.pk)
    assert (stored.label, stored.status, stored.is_default) == ("OpenAI", "active", True)


def test_a_deleted_keys_reads_stay_in_the_access_log(user):
    key = ProviderKeyFactory(user=user)
    token, _ = service_token_create(scopes=[Scope.KEYS_READ])
    services.api_key_read_for_service(service_token=token, user_id=user.pk)

    services.provider_key_delete(user=user, key_id=key.pk)

    log = ApiKeyAccessLog.objects.get()
    assert (log.user_id, log.key_id) == (user.pk, None)


# --- Seed 000's one OpenAI key ------------------------------------------------------


def test_api_key_set_replaces_the_default_openai_key_in_place(user):
    first = services.api_key_set(user=user, api_key=OPENAI_KEY)
    assert (first.label, first.is_default, first.hint) == ("OpenAI", True, "sk-proj-...LAST")
    ProviderKey.objects.filter(pk=first.pk).update(
        status=KeyStatus.INVALID,
        last_verification="invalid",
        last_verification_detail="HTTP 401",
        last_verified_at=timezone.now(),
    )
    new_secret = "sk-" + "n" * 40 + "NEW1"

    again = services.api_key_set(user=user, api_key=new_secret)

    stored = ProviderKey.objects.get(user=user)  # still one row
    assert again.pk == stored.pk == first.pk
    assert (stored.encrypted_key, stored.hint, stored.status) == (
        new_secret,
        "sk-...NEW1",
        "active",
    )
    assert (stored.last_verification, stored.last_verification_detail) == ("", "")
    assert stored.last_verified_at is None


def test_api_key_set_leaves_other_keys_alone_and_delete_promotes(user):
    other = ProviderKeyFactory(user=user, is_default=False)
    ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    default = services.api_key_set(user=user, api_key=OPENAI_KEY)
    assert _defaults(user) == [default.pk]  # created as the default: there was none

    services.api_key_delete(user=user)

    assert _defaults(user) == [other.pk]
    assert ProviderKey.objects.filter(user=user, provider=Provider.ANTHROPIC).exists()


def test_api_key_delete_without_a_default_openai_key_is_api_key_not_set(user):
    ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    with pytest.raises(ApiKeyNotSetError):
        services.api_key_delete(user=user)


# --- The AI service's read ------------------------------------------------------------


@pytest.fixture
def reader(db):
    token, _ = service_token_create(scopes=[Scope.KEYS_READ])
    return token


def test_service_read_returns_the_providers_default_and_logs_the_key(user, reader):
    openai = ProviderKeyFactory(user=user)
    anthropic = ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)
    ProviderKeyFactory(user=user, provider=Provider.ANTHROPIC)  # not the default

    read = services.api_key_read_for_service(
        service_token=reader, user_id=user.pk, provider=Provider.ANTHROPIC
    )

    assert read.pk == anthropic.pk
    assert read.encrypted_key == ProviderKey.objects.get(pk=anthropic.pk).encrypted_key
    assert read.encrypted_key.startswith("sk-ant-")
    assert services.api_key_read_for_service(service_token=reader, user_id=user.pk).pk == openai.pk
    logged = list(ApiKeyAccessLog.objects.order_by("pk").values_list("key_id", "service_token_id"))
    assert logged == [(anthropic.pk, reader.pk), (openai.pk, reader.pk)]


def test_service_read_by_key_id(user, other_user, reader):
    ProviderKeyFactory(user=user)
    second = ProviderKeyFactory(user=user)
    theirs = ProviderKeyFactory(user=other_user)

    read = services.api_key_read_for_service(
        service_token=reader, user_id=user.pk, provider=None, key_id=second.pk
    )
    assert read.pk == second.pk
    with pytest.raises(ApiKeyNotSetError):  # the key of another user is not theirs to get
        services.api_key_read_for_service(
            service_token=reader, user_id=user.pk, provider=None, key_id=theirs.pk
        )
    with pytest.raises(ApiKeyNotSetError):  # nor a key of another provider than asked
        services.api_key_read_for_service(
            service_token=reader, user_id=user.pk, provider=Provider.GOOGLE, key_id=second.pk
        )


@pytest.mark.parametrize("state", ["revoked", "invalid", "expired"])
def test_service_read_never_returns_an_unusable_key(user, reader, state):
    key = ProviderKeyFactory(user=user)
    if state == "revoked":
        services.provider_key_update(user=user, key_id=key.pk, status="revoked")
    elif state == "invalid":
        ProviderKey.objects.filter(pk=key.pk).update(status=KeyStatus.INVALID)
    else:
        ProviderKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())

    for key_id in (None, key.pk):
        with pytest.raises(ApiKeyNotSetError):
            services.api_key_read_for_service(service_token=reader, user_id=user.pk, key_id=key_id)
    assert not ApiKeyAccessLog.objects.exists()


def test_an_invalid_default_stays_default_but_is_not_served(user, reader):
    default = ProviderKeyFactory(user=user)
    ProviderKeyFactory(user=user)
    ProviderKey.objects.filter(pk=default.pk).update(status=KeyStatus.INVALID)

    assert _defaults(user) == [default.pk]
    with pytest.raises(ApiKeyNotSetError):
        services.api_key_read_for_service(service_token=reader, user_id=user.pk)


def test_service_read_marks_the_key_used_at_most_once_a_minute(user, reader):
    key = ProviderKeyFactory(user=user)

    services.api_key_read_for_service(service_token=reader, user_id=user.pk)
    first = ProviderKey.objects.get(pk=key.pk).last_used_at
    services.api_key_read_for_service(service_token=reader, user_id=user.pk)
    assert ProviderKey.objects.get(pk=key.pk).last_used_at == first
    ProviderKey.objects.filter(pk=key.pk).update(last_used_at=first - services.LAST_USED_RESOLUTION)
    services.api_key_read_for_service(service_token=reader, user_id=user.pk)

    assert first is not None
    assert ProviderKey.objects.get(pk=key.pk).last_used_at > first
    assert ApiKeyAccessLog.objects.filter(key=key).count() == 3  # every read is logged


def test_service_read_for_an_unknown_user_is_user_not_found(reader):
    from users.errors import UserNotFoundError

    with pytest.raises(UserNotFoundError):
        services.api_key_read_for_service(service_token=reader, user_id=987_654)


# --- Selectors others call ------------------------------------------------------------


def test_provider_key_for_usage_any_status_never_decrypting(
    user, other_user, django_assert_num_queries
):
    key = ProviderKeyFactory(user=user)
    services.provider_key_update(user=user, key_id=key.pk, status="revoked")

    with django_assert_num_queries(1) as captured:
        found = selectors.provider_key_for_usage(user_id=user.pk, key_id=key.pk)
    assert found is not None
    assert found.pk == key.pk
    assert "encrypted_key" not in captured.captured_queries[0]["sql"]
    assert selectors.provider_key_for_usage(user_id=other_user.pk, key_id=key.pk) is None


def test_provider_key_get_never_decrypts(user, django_assert_num_queries):
    key = ProviderKeyFactory(user=user)
    with django_assert_num_queries(1) as captured:
        assert selectors.provider_key_get(user=user, key_id=key.pk).hint == key.hint
    assert "encrypted_key" not in captured.captured_queries[0]["sql"]


def test_user_budget_limits(user):
    assert selectors.user_budget_limits(user_id=user.pk) == (None, None)
    Profile.objects.filter(user=user).update(
        monthly_token_limit=5000, monthly_cost_limit=Decimal("7.5")
    )
    assert selectors.user_budget_limits(user_id=user.pk) == (5000, Decimal("7.5"))
    assert selectors.user_budget_limits(user_id=987_654) is None  # no such user


# --- Concurrency (PostgreSQL) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_make_default_ends_with_exactly_one_default(run_concurrently):
    user = UserFactory()
    keys = ProviderKeyFactory.create_batch(10, user=user)

    results = run_concurrently(
        10,
        lambda i: services.provider_key_update(user=user, key_id=keys[i].pk, is_default=True),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(_defaults(user)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("is_default", [True, None])
def test_concurrent_creates_end_with_exactly_one_default(run_concurrently, is_default):
    user = UserFactory()

    results = run_concurrently(
        10,
        lambda i: services.provider_key_create(
            user=user,
            provider=Provider.OPENAI,
            api_key=sample_key("openai", i),
            is_default=is_default,
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert ProviderKey.objects.filter(user=user).count() == 10
    assert len(_defaults(user)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_and_defaults_keep_at_most_one_default(run_concurrently):
    user = UserFactory()
    keys = ProviderKeyFactory.create_batch(10, user=user)

    def work(i: int):
        if i % 2:
            return services.provider_key_delete(user=user, key_id=keys[i].pk)
        if i % 4 == 0:
            return services.provider_key_update(user=user, key_id=keys[i].pk, status="revoked")
        return services.provider_key_update(user=user, key_id=keys[i].pk, is_default=True)

    results = run_concurrently(10, work)

    assert [r for r in results if isinstance(r, Exception)] == []
    defaults = _defaults(user)
    assert len(defaults) == 1
    assert ProviderKey.objects.get(pk=defaults[0]).status == KeyStatus.ACTIVE
