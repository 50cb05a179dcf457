"""Errors as OpenAI's API writes them: ``{"error": {"message", "type", "param", "code"}}``.

Every refusal of the server goes through :class:`ApiError` or one of the handlers here, so a
client sees one shape whatever went wrong: a bad body (400/422), a missing key (401), an
unknown path (404), an over-long input (413), a full queue (429) or a bug (500, logged).
"""

from __future__ import annotations

import logging
from typing import Any

from sbert.serve.respond import json_response

logger = logging.getLogger("sbert.serve")

# status -> OpenAI's error type
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 503: "service_unavailable", 500: "server_error"}


class ApiError(Exception):
    """A refusal with its HTTP status and OpenAI-style body."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None) -> Any:
    return json_response(error_body(status, message, code, param), status, headers)


def validation_message(errors: list[dict[str, Any]], body: Any) -> tuple[int, str, str | None,
                                                                          str]:
    """Status, message, param and code for pydantic's errors about a request body."""
    errors = _relevant(errors, body)
    first = errors[0] if errors else {"loc": (), "msg": "invalid body", "type": ""}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = loc[0] if loc else None
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return 400, f"the body is not valid JSON ({first.get('msg')})", None, "invalid_json"
    if param == "input" and isinstance(body, dict) and _token_ids(body.get("input")):
        return 422, ("token-id arrays are not accepted as input; send the text (a string or "
                     "a list of strings)"), "input", "token_ids_not_supported"
    if kind == "missing" and not loc:
        return 422, "the body is missing; send a JSON object", None, "invalid_body"
    if not loc:
        return 422, "the body must be a JSON object", None, "invalid_body"
    if param == "input" and isinstance(body, dict) and body.get("input") == []:
        return 422, "'input' is an empty list; send at least one string", "input", "empty_input"
    where = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc
                    if part not in ("str", "list[str]")).lstrip(".") or "body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")  # our validators'
    if kind == "too_long" and not any(part.isdigit() for part in loc):  # a field's list
        msg += " (the server's --max-inputs)"
    return 422, f"'{where}': {msg}{more}", param, "invalid_value"


def _relevant(errors: list[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    """For a field that may be a string or a list, the errors of the form actually sent."""
    if not isinstance(body, dict):
        return errors
    kept = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        if len(loc) > 1 and loc[1] in ("str", "list[str]"):
            want = "list[str]" if isinstance(body.get(loc[0]), list) else "str"
            if loc[1] != want:
                continue
        kept.append(error)
    return kept or errors


def _token_ids(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    head = value[0]
    if isinstance(head, list):
        return bool(head) and all(isinstance(x, int) for x in head)
    return all(isinstance(x, int) and not isinstance(x, bool) for x in value)
