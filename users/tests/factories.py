from __future__ import annotations

from functools import cache

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory

from users.models import PROVIDERS_WITH_BASE_URL, Provider, ProviderKey, Scope, ServiceToken, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


@cache
def _hashed(password: str) -> str:
    # Argon2 is deliberately slow; hash each distinct test password once.
    return make_password(password)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")

    @classmethod
    def _create(cls, model_class, *args, password: str = DEFAULT_PASSWORD, **kwargs):
        # Through the manager, as production does: the profile comes with it.
        user = model_class.objects.create_user(*args, password=None, **kwargs)
        user.password = _hashed(password)
        user.save(update_fields=["password"])
        return user


def service_token_create(*, name: str = "", scopes: list[str] | None = None):
    """A real token and its secret, through the service."""
    from users import services

    name = name or f"svc-{ServiceToken.objects.count() + 1}"
    return services.service_token_create(name=name, scopes=scopes or list(Scope.values))


# A key of each provider's shape; ``n`` makes each one distinct.
def sample_key(provider: str, n: int = 0) -> str:
    tail = f"{n:08d}"
    return {
        Provider.OPENAI: "sk-proj-" + "Aa1Bb2Cc3" * 3 + tail,
        Provider.ANTHROPIC: "sk-ant-api03-" + "Dd4Ee5Ff6" * 3 + tail,
        Provider.GOOGLE: "AIza" + ("Gg7Hh8Ii9" * 4)[: 35 - len(tail)] + tail,
        Provider.AZURE_OPENAI: "0123456789abcdef0123456789" + tail,
        Provider.OPENAI_COMPATIBLE: "local-key:" + tail,
    }[provider]


def sample_base_url(provider: str) -> str:
    return "https://llm.example.com/v1" if provider in PROVIDERS_WITH_BASE_URL else ""


class ProviderKeyFactory(DjangoModelFactory):
    """A provider key stored through ``services.provider_key_create`` (encrypted,
    with its hint and the default rule); ``api_key`` is the plaintext."""

    class Meta:
        model = ProviderKey

    user = factory.SubFactory(UserFactory)
    provider = Provider.OPENAI
    api_key = factory.LazyAttributeSequence(lambda o, n: sample_key(o.provider, n))
    base_url = factory.LazyAttribute(lambda o: sample_base_url(o.provider))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from users import services

        return services.provider_key_create(**kwargs)
