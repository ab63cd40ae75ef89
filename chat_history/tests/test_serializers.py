from datetime import UTC, datetime, timedelta, timezone

from chat_history.serializers import iso_datetime


def test_iso_datetime_renders_utc_with_z_whatever_the_input_zone():
    seoul = timezone(timedelta(hours=9))
    assert iso_datetime(datetime(2025, 1, 15, 19, 31, 0, 5, tzinfo=seoul)) == (
        "2025-01-15T10:31:00.000005Z"
    )
    assert iso_datetime(datetime(2025, 1, 15, 10, 31, tzinfo=UTC)) == "2025-01-15T10:31:00Z"
    assert iso_datetime(None) is None
