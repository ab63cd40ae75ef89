"""The JSON parser: orjson, and DATA_UPLOAD_MAX_MEMORY_SIZE honoured for JSON too.

Django enforces the limit only when a body is read through ``request.body`` or
``request.POST``; DRF's JSONParser reads the stream directly, so without this a
client could make the server buffer an arbitrarily large JSON document.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.errors import PayloadTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            request = (parser_context or {}).get("request")
            declared = request.META.get("CONTENT_LENGTH") if request is not None else None
            if declared and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        # orjson, like DRF's strict parser, refuses NaN and Infinity.
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
