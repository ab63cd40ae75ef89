from datetime import UTC, datetime, timedelta, timezone

import pytest
from rest_framework.exceptions import ValidationError

from chat_history.serializers import (
    SEARCH_MAX_TERMS,
    MessageCreateBodySerializer,
    MessageUpdateInputSerializer,
    SearchQuerySerializer,
    iso_datetime,
)
from core.validation import validated


def test_iso_datetime_renders_utc_with_z_whatever_the_input_zone():
    seoul = timezone(timedelta(hours=9))
    assert iso_datetime(datetime(2025, 1, 15, 19, 31, 0, 5, tzinfo=seoul)) == (
        "2025-01-15T10:31:00.000005Z"
    )
    assert iso_datetime(datetime(2025, 1, 15, 10, 31, tzinfo=UTC)) == "2025-01-15T10:31:00Z"
    assert iso_datetime(None) is None


def test_search_query_is_words_only():
    def terms(query):
        return validated(SearchQuerySerializer, {"q": query})["q"]

    assert terms("  RAG가 (무엇)?  vector-db ") == ["RAG가", "무엇", "vector", "db"]
    assert len(terms("a " * 50)) == SEARCH_MAX_TERMS
    with pytest.raises(ValidationError) as excinfo:
        terms("?! ... -- ")
    assert "q" in excinfo.value.detail


def _message_errors(**fields) -> dict:
    serializer = MessageCreateBodySerializer(
        data={"role": "user", "content": "RAG가 무엇인가요?", **fields}
    )
    return {} if serializer.is_valid() else serializer.errors


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"role": "tool"}, "role"),
        ({"content": ""}, "content"),
        ({"content": " \n\t "}, "content"),
        ({"content": "x" * 101}, "content"),
        ({"content": "nul \x00 byte"}, "content"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": {"blob": "x" * 200}}, "metadata"),
        ({"metadata": {"score": float("nan")}}, "metadata"),
        ({"metadata": {"note": "nul \x00"}}, "metadata"),
        ({"metadata": {"n": 2**70}}, "metadata"),  # no renderer takes it back
        (
            {
                "metadata": {
                    "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
                }
            },
            "metadata",
        ),
        ({"client_message_id": ""}, "client_message_id"),
        ({"client_message_id": "k" * 129}, "client_message_id"),
        ({"stream_id": "s" * 129}, "stream_id"),
    ],
)
def test_message_input_names_the_bad_field(settings, fields, field):
    settings.CHAT_MESSAGE_MAX_LENGTH = 100
    settings.CHAT_METADATA_MAX_BYTES = 100

    assert set(_message_errors(**fields)) == {field}


def test_message_limits_are_inclusive_and_read_at_call_time(settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 10
    settings.CHAT_METADATA_MAX_BYTES = 12  # {"a":"12345"} is 13 bytes; {"a":"1234"} 12

    assert _message_errors(content="x" * 10, metadata={"a": "1234"}) == {}
    assert set(_message_errors(content="x" * 10, metadata={"a": "12345"})) == {"metadata"}
    assert set(_message_errors(content="x" * 11)) == {"content"}


def test_metadata_size_counts_utf8_bytes(settings):
    settings.CHAT_METADATA_MAX_BYTES = 20
    # {"t":"가나다"} is 10 characters but 16 bytes; 가 is 3 bytes in UTF-8.
    assert _message_errors(metadata={"t": "가나다"}) == {}
    assert set(_message_errors(metadata={"t": "가나다라마"})) == {"metadata"}  # 22 bytes


def test_all_field_errors_are_reported_together():
    assert set(_message_errors(role="robot", content="", metadata="nope")) == {
        "role",
        "content",
        "metadata",
    }


def test_message_update_content_follows_the_same_rule(settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 5
    for content in ("  ", "x" * 6):
        serializer = MessageUpdateInputSerializer(data={"content": content})
        assert not serializer.is_valid()
        assert set(serializer.errors) == {"content"}
