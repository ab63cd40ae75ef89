from __future__ import annotations

from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data`` (a body or query parameters) with an input serializer.

    Raises DRF's ValidationError, which the exception handler renders as a 400
    naming each field; views and consumers use it alike.
    """
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
