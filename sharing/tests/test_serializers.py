from __future__ import annotations

import pytest

from sharing.serializers import public_metadata


def test_keys_starting_with_an_underscore_go_at_any_depth():
    metadata = {"a": 1, "_b": 2, "c": {"_d": 3, "e": {"_f": 4, "g": 5}}}
    assert public_metadata(metadata) == {"a": 1, "c": {"e": {"g": 5}}}


@pytest.mark.parametrize(
    "key", ["private", "Private", "PRIVATE", "feedback", "client_message_id", "stream_id"]
)
def test_named_private_keys_go_with_everything_under_them(key):
    metadata = {"kept": True, key: {"anything": ["at", "all"]}, "nested": {key: "x", "y": 1}}
    assert public_metadata(metadata) == {"kept": True, "nested": {"y": 1}}


def test_objects_inside_arrays_are_cleaned_too():
    metadata = {"sources": [{"title": "doc", "_score": 0.3}, ["x", {"private": 1, "p": 2}], 7]}
    assert public_metadata(metadata) == {"sources": [{"title": "doc"}, ["x", {"p": 2}], 7]}


def test_values_are_never_inspected_only_keys():
    metadata = {"note": "_not a key", "private_notes": "a key that only starts with private"}
    assert public_metadata(metadata) == metadata


def test_the_original_is_left_unchanged():
    metadata = {"a": {"_b": 1}}
    public_metadata(metadata)
    assert metadata == {"a": {"_b": 1}}
