import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers as drf_renderers
from rest_framework.exceptions import ParseError
from rest_framework.utils.serializer_helpers import ReturnDict

from core.parsers import JSONParser
from core.renderers import JSONRenderer

SAMPLE = {
    "id": 7,
    "session_id": uuid.UUID("550e8400-e29b-41d4-a716-446655440000"),
    "created_at": datetime(2025, 1, 15, 10, 31, 0, 123456, tzinfo=UTC),
    "local": datetime(2025, 1, 15, 19, 31, tzinfo=timezone(timedelta(hours=9))),
    "content": "RAG가 무엇인가요? \u2028 <mark>",
    "metadata": ReturnDict(
        {"tokens_used": 450, "score": Decimal("0.5"), "ok": True}, serializer=None
    ),
    "label": gettext_lazy("Not found."),
    "items": [None, 1.5, "x"],
}


def test_output_matches_drfs_json_renderer():
    ours = json.loads(JSONRenderer().render(SAMPLE))
    theirs = json.loads(drf_renderers.JSONRenderer().render(SAMPLE))
    assert ours == theirs
    assert ours["created_at"] == "2025-01-15T10:31:00.123456Z"


def test_none_renders_an_empty_body_and_indent_is_honoured():
    assert JSONRenderer().render(None) == b""
    indented = JSONRenderer().render({"a": 1}, "application/json; indent=4")
    assert b"\n" in indented


def _parse(body: bytes):
    return JSONParser().parse(io.BytesIO(body), "application/json", {})


def test_parser_reads_json():
    assert _parse('{"content": "안녕", "n": [1, 2.5]}'.encode()) == {
        "content": "안녕",
        "n": [1, 2.5],
    }


@pytest.mark.parametrize("body", [b"{not json", b'{"x": NaN}', b'{"x": Infinity}', b""])
def test_parser_refuses_invalid_json_and_non_finite_numbers(body):
    with pytest.raises(ParseError):
        _parse(body)


def test_integers_past_64_bits_render_exactly_instead_of_failing():
    body = JSONRenderer().render({"n": 10**20, "at": SAMPLE["created_at"]})

    assert json.loads(body) == {"n": 10**20, "at": "2025-01-15T10:31:00.123456Z"}
