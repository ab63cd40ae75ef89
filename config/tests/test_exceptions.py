"""The exception handler turns every failure into {detail, code, errors?}."""

from __future__ import annotations

import socket
import sqlite3
from types import SimpleNamespace

import psycopg
import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.utils import DatabaseErrorWrapper
from django.http import Http404
from psycopg_pool import PoolTimeout
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from config.errors import ConflictError, DomainError
from config.exceptions import error_answer, exception_handler


def _handle(exc):
    response = exception_handler(exc, {"view": None})
    return response.status_code, response.data, response


class _GoneError(DomainError):
    status_code = 410
    code = "gone"
    default_detail = "It went away."


def test_domain_error_uses_its_status_code_and_extra_fields():
    status, body, _ = _handle(ConflictError("Already uploaded.", existing_document_id=7))
    assert status == 409
    assert body == {"detail": "Already uploaded.", "code": "conflict", "existing_document_id": 7}


def test_domain_error_subclass_defaults():
    assert _handle(_GoneError())[:2] == (410, {"detail": "It went away.", "code": "gone"})


def test_drf_validation_error_keeps_field_errors_and_names_the_first():
    exc = exceptions.ValidationError({"email": ["Enter a valid email."], "age": ["Too low."]})
    status, body, _ = _handle(exc)
    assert status == 400
    assert body["code"] == "invalid"
    assert body["detail"] == "email: Enter a valid email."
    assert body["errors"] == {"email": ["Enter a valid email."], "age": ["Too low."]}


def test_non_field_validation_errors():
    status, body, _ = _handle(exceptions.ValidationError(["Nope."]))
    assert status == 400
    assert body["errors"] == {"non_field_errors": ["Nope."]}
    assert body["detail"] == "Nope."


def test_nested_validation_errors_name_the_path():
    exc = exceptions.ValidationError({"metadata": {"sources": ["Must be a list."]}})
    assert _handle(exc)[1]["detail"] == "metadata.sources: Must be a list."


def test_django_validation_error_becomes_a_400_with_field_errors():
    status, body, _ = _handle(DjangoValidationError({"title": "Too long."}))
    assert status == 400
    assert body["errors"] == {"title": ["Too long."]}


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404(), 404, "not_found"),
        (DjangoPermissionDenied(), 403, "permission_denied"),
        (RequestDataTooBig(), 413, "payload_too_large"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.UnsupportedMediaType("text/csv"), 415, "unsupported_media_type"),
        (TokenError("Token is invalid"), 401, "token_not_valid"),
        (InvalidToken(), 401, "token_not_valid"),
    ],
)
def test_framework_errors_map_to_status_and_code(exc, status, code):
    got_status, body, _ = _handle(exc)
    assert (got_status, body["code"]) == (status, code)
    assert isinstance(body["detail"], str)
    assert body["detail"]


def test_throttled_keeps_retry_after_header():
    status, body, response = _handle(exceptions.Throttled(wait=42))
    assert status == 429
    assert body["code"] == "throttled"
    assert response["Retry-After"] == "42"


def test_unhandled_exception_is_a_500_without_details(caplog):
    status, body, _ = _handle(RuntimeError("secret connection string postgres://u:p@h"))
    assert status == 500
    assert body == {"detail": "A server error occurred.", "code": "server_error"}
    assert "Unhandled error" in caplog.text


# --- The database cannot be reached: 503 database_unavailable -------------------------


def _as_django_raises(exc: Exception) -> Exception:
    """``exc`` wrapped the way Django's PostgreSQL backend raises it."""
    wrapper = DatabaseErrorWrapper(SimpleNamespace(Database=psycopg, errors_occurred=False))
    try:
        with wrapper:
            raise exc
    except Exception as wrapped:
        return wrapped
    raise AssertionError("not raised")


def _refused_connection() -> psycopg.OperationalError:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        psycopg.connect(f"host=127.0.0.1 port={port} connect_timeout=2")
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("connected to a closed port")


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(_refused_connection(), id="refused"),
        pytest.param(PoolTimeout("couldn't get a connection after 3.00 sec"), id="pool-timeout"),
        pytest.param(psycopg.OperationalError("the connection is closed"), id="closed"),
        pytest.param(psycopg.errors.AdminShutdown("terminating connection"), id="restart"),
        pytest.param(psycopg.errors.CannotConnectNow("the system is starting up"), id="starting"),
    ],
)
def test_an_unreachable_database_is_a_503_with_retry_after(cause):
    status, body, response = _handle(_as_django_raises(cause))

    assert status == 503
    assert body == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }
    assert int(response["Retry-After"]) > 0


def test_only_an_unreachable_database_is_an_outage():
    def code(exc):
        answer = error_answer(exc)
        return answer and answer.body["code"]  # None: a 500, logged as a bug

    assert {
        "refused": code(_as_django_raises(_refused_connection())),
        "deadlock": code(_as_django_raises(psycopg.errors.DeadlockDetected("deadlock"))),
        "cancelled": code(_as_django_raises(psycopg.errors.QueryCanceled("statement timeout"))),
        "bug": code(_as_django_raises(psycopg.errors.UndefinedTable("no such table"))),
        "sqlite": code(sqlite3.OperationalError("database is locked")),
    } == {
        "refused": "database_unavailable",
        "deadlock": None,
        "cancelled": None,
        "bug": None,
        "sqlite": None,
    }
