"""The chat history's URLs, by the names the router gives them, for the API tests."""

from __future__ import annotations

from django.urls import reverse


def _url(name: str, *args) -> str:
    return reverse(f"chat_history:{name}", args=args)


def sessions_url() -> str:
    return _url("session-list")


def session_url(session) -> str:
    return _url("session-detail", session.session_id)


def history_url(session) -> str:
    return _url("session-messages", session.session_id)


def export_url(session) -> str:
    return _url("session-export", session.session_id)


def members_url(session) -> str:
    return _url("session-members", session.session_id)


def member_url(session, user) -> str:
    return _url("session-update-member", session.session_id, user.pk)


def read_url(session) -> str:
    return _url("session-read", session.session_id)
