import pytest

from users import selectors, services

pytestmark = pytest.mark.django_db


def test_user_with_profile_is_one_query_and_never_decrypts(user, django_assert_num_queries):
    services.api_key_set(user=user, api_key="sk-" + "q" * 40)

    with django_assert_num_queries(1) as captured:
        found = selectors.user_get_for_auth(user_id=user.pk, with_profile=True)
        assert found.profile.preferred_language == "ko"
        assert selectors.user_default_openai_key_hint(user=found) == "sk-...qqqq"
    assert "encrypted_key" not in captured.captured_queries[0]["sql"]


def test_provider_key_for_service_returns_none_for_unknown_user(db):
    assert selectors.provider_key_for_service(user_id=123456, provider="openai") is None


def test_user_get_active_ignores_inactive_and_unknown_users(user):
    from users.tests.factories import UserFactory

    assert selectors.user_get_active(user_id=user.pk) == user
    assert selectors.user_get_active(user_id=UserFactory(is_active=False).pk) is None
    assert selectors.user_get_active(user_id=987654) is None


@pytest.mark.parametrize("with_profile", [False, True])
def test_user_get_for_auth_joins_the_profile_only_when_asked(
    user, with_profile, django_assert_num_queries
):
    with django_assert_num_queries(1) as captured:
        found = selectors.user_get_for_auth(user_id=user.pk, with_profile=with_profile)
    sql = captured.captured_queries[0]["sql"]
    assert found == user
    assert ("profiles" in sql) is with_profile
    assert "encrypted" not in sql


@pytest.mark.parametrize("user_id", [987654, "not-a-number", None])
def test_user_get_for_auth_returns_none_for_unknown_or_malformed_ids(db, user_id):
    assert selectors.user_get_for_auth(user_id=user_id) is None
