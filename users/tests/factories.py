from __future__ import annotations

from functools import cache

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory

from users.models import Scope, ServiceToken, User

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
