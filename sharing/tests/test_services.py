from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from chat_history import services as chat_services
from chat_history.errors import OwnerOnlyError
from chat_history.models import ChatMessage, MemberRole
from chat_history.tests.factories import ChatSessionFactory, add_member
from sharing import services
from sharing.models import ShareLink, ShareMode, ShareStatus
from sharing.tests.factories import as_seen_by
from users.principals import OperatorPrincipal
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _create(user, session, **kwargs):
    kwargs.setdefault("mode", ShareMode.SNAPSHOT)
    return services.share_link_create(actor=user, session=as_seen_by(user, session), **kwargs)


def test_a_snapshot_stops_at_the_active_leaf_by_default(user, session):
    link, _ = _create(user, session)

    assert link.mode == ShareMode.SNAPSHOT
    assert link.up_to_message_id == session.active_leaf_id
    assert link.created_by_id == user.pk
    assert link.status == ShareStatus.ACTIVE


def test_the_token_is_stored_only_as_its_hash_and_a_short_prefix(user, session):
    link, token = _create(user, session)

    assert len(token) == 43  # token_urlsafe(32): 256 random bits
    row = ShareLink.objects.filter(pk=link.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["token_prefix"] == token[:6]
    assert not any(token in str(value) for value in row.values())


def test_every_link_has_a_token_of_its_own(user, session):
    tokens = {_create(user, session, mode=ShareMode.LIVE)[1] for _ in range(5)}
    assert len(tokens) == 5


def test_a_snapshot_may_stop_at_an_earlier_message(user, session):
    first = ChatMessage.objects.filter(session=session).order_by("id").first()
    link, _ = _create(user, session, up_to_message_id=first.pk)
    assert link.up_to_message_id == first.pk


@pytest.mark.parametrize("which", ["other session", "trashed", "unknown"])
def test_a_snapshot_must_stop_at_a_live_message_of_the_session(user, session, other_session, which):
    if which == "other session":
        message_id = ChatMessage.objects.filter(session=other_session).first().pk
    elif which == "trashed":
        message = ChatMessage.objects.filter(session=session).order_by("id").first()
        ChatMessage.objects.filter(pk=message.pk).update(deleted_at=timezone.now())
        message_id = message.pk
    else:
        message_id = 10**12
    with pytest.raises(ValidationError) as caught:
        _create(user, session, up_to_message_id=message_id)
    assert "up_to_message_id" in caught.value.message_dict
    assert not ShareLink.objects.exists()


def test_a_snapshot_of_an_empty_session_is_refused(user):
    empty = ChatSessionFactory(user=user)
    with pytest.raises(ValidationError) as caught:
        _create(user, empty)
    assert "mode" in caught.value.message_dict


def test_a_live_link_of_an_empty_session_is_fine(user):
    link, _ = _create(user, ChatSessionFactory(user=user), mode=ShareMode.LIVE)
    assert link.up_to_message_id is None


def test_an_expiry_must_lie_in_the_future(user, session):
    with pytest.raises(ValidationError) as caught:
        _create(user, session, expires_at=timezone.now() - timedelta(seconds=1))
    assert "expires_at" in caught.value.message_dict

    later = timezone.now() + timedelta(days=1)
    link, _ = _create(user, session, expires_at=later)
    assert link.expires_at == later


@pytest.mark.parametrize("role", [MemberRole.EDITOR, MemberRole.VIEWER])
def test_only_the_owner_creates_or_revokes_links(user, session, role):
    member = UserFactory()
    add_member(session, member, role)
    link, _ = _create(user, session)

    with pytest.raises(OwnerOnlyError):
        _create(member, session)
    with pytest.raises(OwnerOnlyError):
        services.share_link_revoke(actor=member, session=as_seen_by(member, session), link=link)
    assert ShareLink.objects.get().revoked_at is None


def test_a_session_loaded_without_the_owner_role_is_refused(session):
    stranger = UserFactory()  # session as loaded for no member: my_role is None
    with pytest.raises(OwnerOnlyError):
        services.share_link_create(actor=stranger, session=session, mode=ShareMode.LIVE)


def test_an_operator_may_revoke_any_link(user, session, rf):
    link, _ = _create(user, session)
    request = rf.get("/admin/")
    request.user = UserFactory(is_staff=True)

    services.share_link_revoke(actor=OperatorPrincipal(request), session=session, link=link)

    assert ShareLink.objects.get().revoked_at is not None


def test_revoking_keeps_the_row_and_is_idempotent(user, session, published):
    link, _ = _create(user, session)
    owner_view = as_seen_by(user, session)

    services.share_link_revoke(actor=user, session=owner_view, link=link)
    first = ShareLink.objects.get().revoked_at
    services.share_link_revoke(actor=user, session=owner_view, link=link)

    row = ShareLink.objects.get()
    assert first is not None
    assert row.revoked_at == first
    assert row.status == ShareStatus.REVOKED


def test_create_and_revoke_tell_the_owner_without_the_token(
    user, session, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        link, token = _create(user, session)
    with django_capture_on_commit_callbacks(execute=True):
        services.share_link_revoke(actor=user, session=as_seen_by(user, session), link=link)
        services.share_link_revoke(actor=user, session=as_seen_by(user, session), link=link)

    assert [(group, event["type"]) for group, event in published] == [
        (f"user.{user.pk}", "share_link.created"),
        (f"user.{user.pk}", "share_link.revoked"),
    ]
    created, revoked = (event for _, event in published)
    assert created["session_id"] == str(session.session_id)
    assert created["share_link"]["id"] == link.pk
    assert revoked["share_link"]["status"] == ShareStatus.REVOKED
    assert token not in str(published)


def test_a_view_is_counted(user, session):
    link, _ = _create(user, session)
    services.share_link_view_record(link=link)
    services.share_link_view_record(link=link)

    row = ShareLink.objects.get()
    assert row.view_count == 2
    assert row.last_viewed_at is not None


def test_a_link_goes_with_its_session(user, session):
    link, _ = _create(user, session)
    chat_services.chat_session_delete(actor=user, session=as_seen_by(user, session), permanent=True)
    assert not ShareLink.objects.filter(pk=link.pk).exists()


def test_a_link_goes_with_its_owners_account(user, session):
    _create(user, session)
    user.delete()
    assert not ShareLink.objects.exists()
