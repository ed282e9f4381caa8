"""Request binding and response shapes of the fake ProjectX gateway (an ASP.NET Core service).

The gateway is ASP.NET Core, and clients see its framework's habits as much as its own code:

- JSON property names bind case-insensitively and numbers may arrive as strings
  (``JsonSerializerDefaults.Web``); unknown properties are ignored.
- A body that is not JSON, a field of the wrong type, or a documented "Required" field that is
  missing or null earns HTTP 400 with a ProblemDetails body (``[ApiController]`` model
  validation), not the ``{success, errorCode, errorMessage}`` envelope. UNCERTAIN: whether the
  gateway marks its required fields ``[Required]``; the fake does, as its docs say "Required".
- A missing or bad Bearer token is HTTP 401 with an empty body and ``WWW-Authenticate``
  (JwtBearer); business failures are HTTP 200 envelopes with ``success: false`` (B2).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

_INT = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class Invalid(Exception):
    """Model binding failed: the request gets a 400 ProblemDetails."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def problem(errors: dict[str, list[str]]) -> web.Response:
    return web.json_response(
        {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": errors,
            "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
        },
        status=400,
        content_type="application/problem+json",
    )


def envelope(payload: JSON | None = None, *, code: int = 0, message: str | None = None) -> JSON:
    """The gateway's answer: payload fields plus ``success``, ``errorCode``, ``errorMessage``."""
    body: JSON = dict(payload or {})
    body.update({"success": code == 0, "errorCode": code, "errorMessage": message})
    return body


def parse_time(value: str) -> datetime:
    """An ISO timestamp as .NET reads it; one without an offset is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # .NET accepts up to 7 fractional digits; Python up to 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _convert(value: Any, kind: str, path: str) -> Any:
    def bad(target: str) -> Invalid:
        return Invalid({path: [f"The JSON value could not be converted to {target}. Path: {path}"]})

    if kind == "int":
        if isinstance(value, bool):
            raise bad("System.Int32")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT.match(value.strip()):  # AllowReadingFromString
            return int(value.strip())
        raise bad("System.Int32")
    if kind == "long":
        return _convert(value, "int", path)
    if kind == "decimal":
        if isinstance(value, bool):
            raise bad("System.Decimal")
        if isinstance(value, int | float):
            return Decimal(str(value))
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            try:
                return Decimal(value.strip())
            except InvalidOperation as exc:
                raise bad("System.Decimal") from exc
        raise bad("System.Decimal")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad("System.Boolean")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise bad("System.String")
    if kind == "datetime":
        if isinstance(value, str):
            try:
                return parse_time(value)
            except ValueError as exc:
                raise bad("System.DateTime") from exc
        raise bad("System.DateTime")
    if kind == "bracket":
        if not isinstance(value, dict):
            raise bad("PlaceOrderBracket")
        inner = {k.lower(): v for k, v in value.items()}
        out = {}
        for name in ("ticks", "type"):
            if inner.get(name) is None:
                raise Invalid({f"{path}.{name}": [f"The {name} field is required."]})
            out[name] = _convert(inner[name], "int", f"{path}.{name}")
        return out["ticks"], out["type"]
    raise AssertionError(kind)


def bind(body: Any, fields: dict[str, tuple[str, bool]]) -> JSON:
    """Bind a JSON body to ``{name: (kind, required)}``; names match case-insensitively.

    Returns every declared field (None when absent) under its documented spelling."""
    if body is None:
        raise Invalid({"": ["A non-empty request body is required."]})
    if not isinstance(body, dict):
        raise Invalid({"$": ["The JSON value could not be converted to the request type. Path: $"]})
    lowered = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
    out: JSON = {}
    errors: dict[str, list[str]] = {}
    for name, (kind, required) in fields.items():
        value = lowered.get(name.lower())
        if value is None:
            if required:
                errors[name] = [f"The {name} field is required."]
            out[name] = None
            continue
        try:
            out[name] = _convert(value, kind, f"$.{name}")
        except Invalid as exc:
            errors.update(exc.errors)
    if errors:
        raise Invalid(errors)
    return out
