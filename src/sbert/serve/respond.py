"""JSON answers, written by orjson (numpy rows included, without a ``tolist()``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """``body`` (dicts, lists, numpy float32 rows) as an ``application/json`` response."""
    return Response(orjson.dumps(body, option=_OPTIONS), status_code=status, headers=headers,
                    media_type="application/json")
