"""Input validation keeps JSON's types; query strings are converted."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from core.validation import validated, validated_query


class Input(serializers.Serializer):
    name = serializers.CharField(required=False)
    count = serializers.IntegerField(required=False)
    ratio = serializers.FloatField(required=False)
    flag = serializers.BooleanField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    meta = serializers.DictField(required=False)
    kind = serializers.ChoiceField(choices=["a", "b"], required=False)
    note = serializers.CharField(required=False, allow_null=True)
    anything = serializers.JSONField(required=False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 0}, "name"),
        ({"count": "5"}, "count"),
        ({"count": True}, "count"),
        ({"count": 1.5}, "count"),
        ({"ratio": "0.5"}, "ratio"),
        ({"flag": "0"}, "flag"),
        ({"flag": 1}, "flag"),
        ({"tags": "a,b"}, "tags"),
        ({"meta": []}, "meta"),
        ({"kind": 1}, "kind"),
        ({"name": None}, "name"),
    ],
)
def test_a_json_value_of_the_wrong_type_is_refused(body, field):
    with pytest.raises(ValidationError) as excinfo:
        validated(Input, body)

    assert set(excinfo.value.detail) == {field}


def test_json_values_of_the_right_type_pass():
    body = {
        "name": "x",
        "count": 5,
        "ratio": 1,
        "flag": False,
        "tags": ["a"],
        "meta": {"k": 1},
        "kind": "a",
        "note": None,
        "anything": [1, "x"],
    }
    assert validated(Input, body)["count"] == 5


def test_query_parameters_are_converted_and_empty_ones_are_values():
    assert validated_query(Input, QueryDict("count=5&flag=true"))["count"] == 5
    with pytest.raises(ValidationError) as excinfo:
        validated_query(Input, QueryDict("count="))
    assert "count" in excinfo.value.detail


def test_a_field_the_serializer_does_not_know_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        validated(Input, {"name": "x", "contnet": "typo"})

    assert excinfo.value.detail == {"contnet": ["Unknown field."]}


def test_unknown_query_parameters_are_ignored():
    assert validated_query(Input, QueryDict("count=2&utm_source=mail")) == {"count": 2}
