"""The one way input is validated: a serializer, with JSON's types kept.

DRF's fields convert what they can (``"5"`` for an integer, ``1`` for a string,
``"yes"`` for a boolean), which suits query strings and forms but lets a JSON
client send the wrong type unnoticed, and the schema promises more. A JSON body
or socket frame is therefore checked against each field's JSON type first, and
a field the serializer does not know is refused (a misspelt ``contnet`` is a
400, not silently dropped; the schema says ``additionalProperties: false``).
Query parameters, which are all strings, go through ``validated_query``.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import serializers

# The JSON type each kind of field takes, most specific first.
_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float), "a number"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.ListField, (list,), "an array"),
    (serializers.Serializer, (dict,), "an object"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.DateField, (str,), "a string"),
]


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate a JSON body or socket frame (or a multipart form) with an input
    serializer; a value of the wrong JSON type is refused, not converted.

    Raises DRF's ValidationError, which the exception handler renders as a 400
    naming each field; views and consumers use it alike.
    """
    serializer = serializer_class(data=data)
    errors = _unknown_field_errors(serializer, data) if hasattr(data, "keys") else {}
    if isinstance(data, dict) and not isinstance(data, QueryDict):
        errors |= _json_type_errors(serializer, data)
    if errors:
        raise serializers.ValidationError(errors)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_query(
    serializer_class: type[serializers.Serializer], params: QueryDict
) -> dict[str, Any]:
    """Validate query parameters (strings, converted by the fields). A parameter
    sent empty (``?since=``) is a value to check, not an absent one; a repeated
    one counts once, its last value."""
    serializer = serializer_class(data=params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _unknown_field_errors(serializer: serializers.Serializer, data: Any) -> dict:
    known = {name for name, field in serializer.fields.items() if not field.read_only}
    return {name: ["Unknown field."] for name in data if name not in known}


def _json_type_errors(serializer: serializers.Serializer, data: dict[str, Any]) -> dict:
    errors = {}
    for name, field in serializer.fields.items():
        if field.read_only or name not in data:
            continue
        value = data[name]
        if value is None and field.allow_null:
            continue
        expected = _json_type(field)
        if expected is None:
            continue
        types, label = expected
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            errors[name] = [f"Must be {label}."]
    return errors


def _json_type(field: serializers.Field) -> tuple[tuple[type, ...], str] | None:
    if isinstance(field, serializers.FileField | serializers.JSONField):
        return None  # a multipart file, or any JSON value
    for kind, types, label in _JSON_TYPES:
        if isinstance(field, kind):
            return types, label
    return None


def idempotency_key(request, body_value: str | None, *, field: str, max_length: int) -> str | None:
    """The idempotency key of a write: the body's ``field`` or the
    ``Idempotency-Key`` header (the same value if both are sent), None if
    neither. A mismatch or a key over ``max_length`` is a 400 on ``field``."""
    header = (request.headers.get("Idempotency-Key") or "").strip() or None
    if body_value and header and body_value != header:
        raise serializers.ValidationError(
            {field: "Differs from the Idempotency-Key header; send one of them."}
        )
    key = body_value or header
    if key is not None and len(key) > max_length:
        raise serializers.ValidationError({field: f"At most {max_length} characters."})
    return key
