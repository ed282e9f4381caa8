"""One webhook alert's values, read within bounds, and the typed errors of refusing them.

A body is hostile until proven otherwise, so nothing is computed on a value before it is bounded:
JSON nested deeper than :data:`MAX_DEPTH`, a number written with more than
:data:`MAX_NUMBER_CHARS` characters (in the JSON or quoted), a magnitude of :data:`MAX_MAGNITUDE`
or more, more than :data:`MAX_DECIMALS` decimal places, a quantity above
:data:`~tterm.core.verbs.MAX_QUANTITY` (the palette's bound too), a text field longer than
:data:`MAX_TEXT`, and a list or an object where one value belongs are each a typed ``malformed``
refusal. Without the bounds a quantity of ``"1e999999999"`` made ``int()`` build a billion-digit
integer and froze the hub for minutes, a price of it overflowed the tick rounding, a list where a
number belonged failed with "Decimal is not JSON serializable", and deeply nested JSON raised
RecursionError while the secret was still being looked for.

:mod:`tterm.hub.webhook` turns the values into a :class:`~tterm.hub.webhook.Signal`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any

from tterm.core.verbs import MAX_QUANTITY

#: JSON nested deeper than this is refused (an alert is one flat object with two small brackets).
MAX_DEPTH = 32
#: The longest a number may be written, sign, point and exponent included.
MAX_NUMBER_CHARS = 40
#: Every price, amount, percent and multiplier is below this in size.
MAX_MAGNITUDE = Decimal("1e12")
#: Digits after the decimal point a number may carry (a tick is never finer than 1e-9).
MAX_DECIMALS = 12
#: The longest text field (ticker, action, id...) an alert may carry.
MAX_TEXT = 200


class ErrorCode(StrEnum):
    """The typed errors a webhook reply carries (and the journal records)."""

    MALFORMED = "malformed"
    UNKNOWN_TICKER = "unknown-ticker"
    INVALID_ACTION = "invalid-action"
    UNAUTHORIZED = "unauthorized"
    STALE = "stale"
    DUPLICATE = "duplicate"
    RISK_REJECTED = "risk-rejected"
    UNKNOWN_STRATEGY = "unknown-strategy"
    TOO_LARGE = "too-large"
    RATE_LIMITED = "rate-limited"
    BROKER_REJECTED = "broker-rejected"
    FAILED = "failed"


#: HTTP status of each error in the reply. A duplicate is acknowledged (200): TradingView or a
#: second channel sent the same alert again, which is not the sender's fault.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.UNKNOWN_TICKER: 422,
    ErrorCode.INVALID_ACTION: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.STALE: 422,
    ErrorCode.DUPLICATE: 200,
    ErrorCode.RISK_REJECTED: 422,
    ErrorCode.UNKNOWN_STRATEGY: 404,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BROKER_REJECTED: 422,
    ErrorCode.FAILED: 500,
}


class WebhookError(Exception):
    """A refused alert: ``code`` is the typed error, ``status`` the HTTP status to answer with."""

    def __init__(
        self, code: ErrorCode, message: str, *, status: int | None = None, signal_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else HTTP_STATUS[code]
        #: The alert this refers to (a duplicate's original, or a refused alert that was recorded).
        self.signal_id = signal_id


@lru_cache(maxsize=1024)
def norm_key(key: str) -> str:
    """``limitPrice``, ``limit_price`` and ``LIMIT-PRICE`` all become ``limitprice``.

    Cached: every alert looks up the same few dozen field names (bounded, so odd keys cannot grow it).
    """
    return _KEY_SEPARATORS.sub("", key).lower()


_KEY_SEPARATORS = re.compile(r"[_\-\s]")


_UNIX_TIME = re.compile(r"\d{9,14}(\.\d{1,9})?")
#: Unix times are seconds or milliseconds: below 1e15 either way.
_TIME_BOUND = Decimal("1e15")
_EMPTY_VALUE = re.compile(r"(:\s*)(?=[,}\]])")


class Fields:
    """The JSON object with normalised keys; remembers which keys were used."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.raw = {norm_key(str(k)): v for k, v in data.items()}
        self.used: set[str] = set()

    def get(self, *names: str) -> Any:
        for name in names:
            key = norm_key(name)
            if key in self.raw:
                self.used.add(key)
                v = self.raw[key]
                if v is None or (isinstance(v, str) and not v.strip()):
                    continue
                return v
        return None

    def has(self, *names: str) -> bool:
        return any(self.get(n) is not None for n in names)

    def unused(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.raw) - self.used))


def show(v: Any) -> str:
    """A value for an error message: a scalar quoted and cut to 40 characters, a list or an
    object named, never dumped (it may be huge, deeply nested or hold Decimals)."""
    if isinstance(v, dict):
        return "an object {...}"
    if isinstance(v, list):
        return "a list [...]"
    text = str(v)
    return repr(text if len(text) <= 40 else text[:40] + f"... ({len(text)} characters)")


def read_text(v: Any, what: str) -> str:
    if isinstance(v, str | int | float | Decimal) and not isinstance(v, bool):
        text = str(v).strip()
        if len(text) > MAX_TEXT:
            raise WebhookError(ErrorCode.MALFORMED, f"{what} is {len(text)} characters long (at most {MAX_TEXT})")
        return text
    raise WebhookError(ErrorCode.MALFORMED, f"{what} must be text, got {show(v)}")


def bounded_decimal(text: str, what: str, *, below: Decimal = MAX_MAGNITUDE) -> Decimal:
    """``text`` as a Decimal inside the bounds (module docstring), checked before any arithmetic:
    at most :data:`MAX_NUMBER_CHARS` characters, finite, smaller than ``below``, and at most
    :data:`MAX_DECIMALS` decimal places."""
    if len(text) > MAX_NUMBER_CHARS:
        raise WebhookError(
            ErrorCode.MALFORMED, f"{what} is written with {len(text)} characters (at most {MAX_NUMBER_CHARS})"
        )
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be a number, got {show(text)}") from None
    if not d.is_finite():
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be a finite number, got {show(text)}")
    if d and d.adjusted() >= below.adjusted():
        raise WebhookError(ErrorCode.MALFORMED, f"{what} {show(text)} is too large (it must be below {below:,f})")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if d and (d.adjusted() < -MAX_DECIMALS or (exponent < -MAX_DECIMALS and d != round(d, MAX_DECIMALS))):
        raise WebhookError(ErrorCode.MALFORMED, f"{what} {show(text)} has more than {MAX_DECIMALS} decimal places")
    return d


def read_decimal(v: Any, what: str) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str | Decimal):
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be a number, got {show(v)}")
    return bounded_decimal(str(v).strip().replace(",", ""), what)


def read_whole(v: Any, what: str, *, signed: bool = False, zero: bool = False) -> int | None:
    """A whole number of contracts (at most :data:`MAX_QUANTITY` either way); ``zero`` allows 0."""
    d = read_decimal(v, what)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be a whole number of contracts, got {d}")
    n = int(d)  # safe: the magnitude is bounded
    if abs(n) > MAX_QUANTITY:
        raise WebhookError(
            ErrorCode.MALFORMED, f"{what} {n} is above the largest order an alert may ask for ({MAX_QUANTITY:,})"
        )
    if not signed and n < (0 if zero else 1):
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be at least {0 if zero else 1}, got {n}")
    return n


def read_bool(v: Any, what: str) -> bool | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float | Decimal):
        return bool(v)
    text = read_text(v, what).lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise WebhookError(ErrorCode.MALFORMED, f"{what} must be true or false, got {show(text)}")


def parse_time(v: Any, what: str = "time") -> datetime | None:
    """An alert timestamp: ISO-8601 (``{{timenow}}`` is ``2026-01-05T14:30:00Z``; no offset means
    UTC, as TradingView renders UTC), or Unix seconds / milliseconds."""
    if v is None:
        return None
    if isinstance(v, bool | dict | list):
        raise WebhookError(ErrorCode.MALFORMED, f"{what} must be a time, got {show(v)}")
    if isinstance(v, int | float | Decimal) or (isinstance(v, str) and _UNIX_TIME.fullmatch(v.strip())):
        n = float(bounded_decimal(str(v).strip(), what, below=_TIME_BOUND))
        if n > 1e11:  # milliseconds
            n /= 1000
        try:
            return datetime.fromtimestamp(n, UTC)
        except (OverflowError, OSError, ValueError):
            raise WebhookError(ErrorCode.MALFORMED, f"{what} {v!r} is not a time") from None
    text = read_text(v, what)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise WebhookError(
            ErrorCode.MALFORMED,
            f"{what} {show(text)} is not a time (use {{{{timenow}}}}, e.g. 2026-01-05T14:30:00Z)",
        ) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class _NumberTooLong(ValueError):
    pass


def _json_int(text: str) -> int | Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text)
    return int(text)


def _json_float(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text)
    return Decimal(text)


def _too_deep(data: Any) -> bool:
    """Whether parsed JSON nests deeper than :data:`MAX_DEPTH` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _loads(text: str) -> tuple[Any, str]:
    """(parsed JSON, "") or (None, why not). Numbers are bounded as they are read; nesting is
    bounded by the parser's own recursion guard (a RecursionError, caught: it is the hostile
    case) and then to :data:`MAX_DEPTH`."""
    try:
        data = json.loads(text, parse_float=_json_float, parse_int=_json_int)
    except _NumberTooLong as exc:
        return None, f"a number is written with {len(str(exc))} characters (at most {MAX_NUMBER_CHARS})"
    except RecursionError:
        return None, f"nested deeper than {MAX_DEPTH} levels"
    except ValueError as exc:
        return None, str(exc)
    if (text.count("[") + text.count("{") > MAX_DEPTH) and _too_deep(data):
        return None, f"nested deeper than {MAX_DEPTH} levels"
    return data, ""


@lru_cache(maxsize=4)
def load_json(body: str) -> tuple[Any, bool, str]:
    """(parsed JSON or None, repaired?, the JSON error message if it did not parse).

    Cached for the last few bodies: the server reads the secret and then parses the same body,
    and one JSON parse serves both (callers never change the result).
    """
    text = body.strip()
    if not text.startswith(("{", "[")):
        return None, False, ""
    data, error = _loads(text)
    if not error:
        return data, False, ""
    repaired = _EMPTY_VALUE.sub(r"\1null", text)
    if repaired != text:
        data, again = _loads(repaired)
        if not again:
            return data, True, ""
    return None, False, error
