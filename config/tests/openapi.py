"""Responses checked against the OpenAPI document the project publishes.

``response_problems(response)`` says how a test client's response differs from
what ``/api/schema/`` documents for its operation: an undocumented status
code, an undocumented content type, or a JSON body that does not match the
documented schema. The schema is made strict for the check: an object that
lists its properties may not carry others, so a field added to a payload but
not to its serializer (or the reverse) is caught either way.

The root ``conftest.py`` runs it on every response of every test; the tour in
``config/tests/test_openapi.py`` makes sure each operation is checked with a
real payload at least once.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from drf_spectacular.generators import SchemaGenerator
from openapi_schema_validator import OAS30Validator

JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, e.g. /api/documents/{document_id}/
    pattern: re.Pattern[str]
    responses: dict[str, Any]


@cache
def schema() -> dict[str, Any]:
    """The published document, as ``/api/schema/`` serves it."""
    return SchemaGenerator().get_schema(request=None, public=True)


@cache
def _strict_components() -> dict[str, Any]:
    components = copy.deepcopy(schema()["components"])
    _make_strict(components)
    return components


def _make_strict(node: Any) -> None:
    """Close objects that list their properties; and spell out OpenAPI 3.0's
    ``nullable`` beside ``allOf`` (how a nullable reference is written), which
    the validator would otherwise apply to the referenced schema alone."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        if node.get("nullable") and "allOf" in node:
            node["anyOf"] = [{"allOf": node.pop("allOf")}, {"enum": [None]}]
        for value in node.values():
            _make_strict(value)
    elif isinstance(node, list):
        for value in node:
            _make_strict(value)


@cache
def operations() -> tuple[Operation, ...]:
    """Every documented operation; templates without parameters first, so
    ``deletions/`` is not taken for ``{document_id}/``."""
    found = []
    for path, methods in schema()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in methods.items():
            found.append(Operation(method.upper(), path, pattern, operation["responses"]))
    return tuple(sorted(found, key=lambda op: (op.path.count("{"), op.path, op.method)))


def operation_for(method: str, path: str) -> Operation | None:
    for operation in operations():
        if operation.method == method and operation.pattern.match(path):
            return operation
    return None


def response_problems(response) -> tuple[Operation | None, list[str]]:
    """The operation the response answered (None if undocumented) and what is
    wrong with it (empty if nothing)."""
    method = response.request["REQUEST_METHOD"]
    operation = operation_for(method, response.request["PATH_INFO"])
    if operation is None:
        return None, []
    where = f"{method} {operation.path} -> {response.status_code}"
    documented = operation.responses.get(str(response.status_code))
    if documented is None:
        return operation, [f"{where}: status code not documented"]
    content = documented.get("content", {})
    media_type = response.get("Content-Type", "").split(";")[0].strip()
    has_body = response.streaming or bool(response.content)
    if not has_body:
        return operation, [] if not content else [f"{where}: documented a body, sent none"]
    if media_type not in content:
        return operation, [f"{where}: content type {media_type!r} not documented"]
    if media_type != JSON or response.streaming:
        return operation, []
    return operation, [f"{where}: {error}" for error in _body_errors(content[JSON], response)]


def _body_errors(media: dict[str, Any], response) -> list[str]:
    body = json.loads(response.content)
    validator = OAS30Validator({**media.get("schema", {}), "components": _strict_components()})
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in sorted(validator.iter_errors(body), key=str)
    ]
