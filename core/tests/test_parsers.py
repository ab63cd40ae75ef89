"""Client JSON: the one reader for HTTP bodies and socket frames."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import ParseError

from core.parsers import json_depth, loads


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("x", 0), ([], 1), ({"a": [1, {"b": {}}]}, 4), ([[[[]]], []], 4)],
)
def test_json_depth(value, depth):
    assert json_depth(value) == depth


def test_json_depth_is_iterative_and_stops_early():
    deep = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    assert json_depth(deep, stop_after=10) == 11


def test_loads_refuses_json_nested_past_the_limit(settings):
    settings.JSON_MAX_DEPTH = 5

    assert loads(_nested(5)) == loads("[[[[[]]]]]")
    with pytest.raises(ParseError, match="deeper than 5 levels"):
        loads(_nested(6))
    with pytest.raises(ParseError):
        loads(_nested(10_000))  # orjson's own limit: still a 400, never a crash


def test_loads_refuses_nan_and_garbage():
    for text in ("NaN", '{"a": Infinity}', "{", ""):
        with pytest.raises(ParseError):
            loads(text)
