"""DRF's JSON renderer, on orjson.

Output matches DRF's JSONRenderer for everything the API returns (UTC
datetimes end in ``Z``, UUIDs are strings, non-ASCII text is not escaped); the
encoding is an order of magnitude faster, which shows on long history pages.
Types orjson does not know (Decimal, lazy translation strings, ...) fall back
to DRF's own encoder.
"""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_fallback = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        options = _OPTIONS
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            options |= orjson.OPT_INDENT_2
        try:
            return orjson.dumps(data, default=_fallback, option=options)
        except TypeError:
            # An integer past 64 bits, which orjson cannot write: PostgreSQL's
            # jsonb gives 1e20 back as 100000000000000000000. DRF's encoder
            # writes any integer; a response never fails over one number.
            return super().render(data, accepted_media_type, renderer_context)
