"""Request body parsing for the partner API."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, plus a 400 for bodies nested deeper than Python's recursion limit.

    `json.load` raises RecursionError (not ValueError) on e.g. 5000 nested arrays, which DRF would let
    through as a 500; a body that fits DATA_UPLOAD_MAX_MEMORY_SIZE can easily be nested that deep.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
