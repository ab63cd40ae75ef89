"""Share link factories."""

from __future__ import annotations

import secrets

import factory
from factory.django import DjangoModelFactory

from chat_history import selectors as chat_selectors
from chat_history.models import ChatSession
from chat_history.tests.factories import ChatSessionFactory
from sharing.models import TOKEN_PREFIX_LENGTH, ShareLink, ShareMode
from sharing.selectors import token_hash
from users.models import User


def as_seen_by(user: User, session: ChatSession) -> ChatSession:
    """``session`` as ``user``'s request would load it (with ``my_role``)."""
    return chat_selectors.session_get(actor=user, session_id=session.session_id)


class ShareLinkFactory(DjangoModelFactory):
    """A link row; its token (``link.token``) is only known to the test, as to
    the owner after the create."""

    class Meta:
        model = ShareLink

    token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    session = factory.SubFactory(ChatSessionFactory)
    created_by = factory.LazyAttribute(lambda o: o.session.user)
    token_hash = factory.LazyAttribute(lambda o: token_hash(o.token))
    token_prefix = factory.LazyAttribute(lambda o: o.token[:TOKEN_PREFIX_LENGTH])
    mode = ShareMode.LIVE
    up_to_message_id = None

    @classmethod
    def _build(cls, model_class, *args, token: str, **kwargs) -> ShareLink:
        link = super()._build(model_class, *args, **kwargs)
        link.token = token  # type: ignore[attr-defined]
        return link

    @classmethod
    def _create(cls, model_class, *args, token: str, **kwargs) -> ShareLink:
        link = super()._create(model_class, *args, **kwargs)
        link.token = token  # type: ignore[attr-defined]
        return link
