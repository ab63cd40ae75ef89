import logging

from config.logfilters import NoQueryStrings, NoSecretPaths, without_query


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


def test_share_link_tokens_are_redacted_from_paths_in_messages_and_arguments():
    record = logging.LogRecord(
        "django.request",
        logging.ERROR,
        __file__,
        1,
        "Internal Server Error: %s from http://host/api/shared/tok-en_2 again",
        ("/api/shared/AbC-12_xyz/",),
        None,
    )

    NoSecretPaths().filter(record)

    assert record.getMessage() == (
        "Internal Server Error: /api/shared/<redacted>/ "
        "from http://host/api/shared/<redacted> again"
    )


def test_the_console_and_djangos_request_loggers_redact_secret_paths(settings):
    logging_config = settings.LOGGING
    assert "no_secret_paths" in logging_config["handlers"]["console"]["filters"]
    for name in ("django.request", "django.server"):
        assert "no_secret_paths" in logging_config["loggers"][name]["filters"]
