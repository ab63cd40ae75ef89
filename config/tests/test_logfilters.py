import logging

from config.logfilters import NoQueryStrings, without_query


def test_query_strings_are_cut_from_urls_in_messages_and_arguments():
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted] see /docs?x=1',
        ("127.0.0.1:5000", "/ws/events/?ticket=wst_secret&x=1"),
        None,
    )

    NoQueryStrings().filter(record)

    assert record.getMessage() == '127.0.0.1:5000 - "WebSocket /ws/events/" [accepted] see /docs'


def test_values_without_a_query_are_left_alone():
    assert without_query("/api/users/profile/") == "/api/users/profile/"
    assert without_query("what? nothing") == "what? nothing"
    assert without_query(404) == 404
