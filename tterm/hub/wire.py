"""JSON on the wire for the core models: the hub's WebSocket carries engine events and commands.

Every core dataclass (Quote, Order, OrderRequest, EngineSnapshot, SignalOutcome...) becomes a
JSON object tagged with its type name under ``"$"``; ``Decimal`` travels as a string (never a
float: a price must arrive exactly as it left), ``datetime``/``date`` as ISO-8601 text (offset
kept), enums as their value and tuples as lists. Decoding is driven by the dataclass field types,
so ``decode(encode(x)) == x`` for every registered type, and a payload that does not fit raises
:class:`WireError` naming the type and field instead of building a half-valid object.

Encoders and decoders are built once per type and cached: quotes cross the wire many times a
second.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, Union

from tterm.core import models, pnl
from tterm.core.alerts import model as alerts
from tterm.core.broker import LoginPrompt, LoginResult
from tterm.core.client import EngineSnapshot

TAG = "$"


class WireError(ValueError):
    """A wire payload that does not decode to a core model."""


#: Every type that may cross the wire, by name (the value of the ``"$"`` tag).
WIRE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        models.Instrument,
        models.InstrumentAdded,
        models.Quote,
        models.DepthLevel,
        models.Depth,
        models.Trade,
        models.Bar,
        models.Greeks,
        models.OptionQuote,
        models.ChainRow,
        models.OptionChain,
        models.Bracket,
        models.OrderLeg,
        models.OrderRequest,
        models.OrderGroup,
        models.Order,
        models.Fill,
        models.Position,
        models.Account,
        models.AccountSnapshot,
        models.ConnectionStatus,
        models.Notice,
        models.RiskDecision,
        models.OrderPreview,
        models.AccountLock,
        models.RiskStatus,
        models.SignalOutcome,
        models.PositionDrift,
        alerts.AlertSpec,
        alerts.Alert,
        alerts.AlertFired,
        pnl.RoundTrip,
        pnl.DayResult,
        pnl.EquityPoint,
        pnl.OpenLot,
        pnl.PnlReport,
        EngineSnapshot,
        LoginPrompt,
        LoginResult,
    )
}


def register(cls: type) -> type:
    """Let another frozen dataclass cross the wire (the hub's own records); usable as a decorator."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    existing = WIRE_TYPES.get(cls.__name__)
    if existing is not None and existing is not cls:
        raise WireError(f"another type is already registered as {cls.__name__}")
    WIRE_TYPES[cls.__name__] = cls
    return cls


Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_encoders: dict[type, Callable[[Any], dict[str, Any]]] = {}
_decoders: dict[type, Callable[[dict[str, Any]], Any]] = {}


# --------------------------------------------------------------------------- encoding


def _encode_value(v: Any) -> Any:
    cls = type(v)
    if cls is str or cls is int or cls is bool or cls is float or v is None:
        return v
    if cls is Decimal:
        return str(v)
    if v is None or (isinstance(v, bool | int | float | str) and not isinstance(v, Enum)):
        return v
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_encode_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _encode_value(x) for k, x in v.items()}
    enc = _encoders.get(type(v))
    if enc is None:
        enc = _encoder_for(type(v))
    return enc(v)


def _encoder_for(cls: type) -> Callable[[Any], dict[str, Any]]:
    if cls.__name__ not in WIRE_TYPES or WIRE_TYPES[cls.__name__] is not cls:
        raise WireError(f"{cls.__name__} cannot be sent over the wire")
    names = tuple(f.name for f in dataclasses.fields(cls))
    tag = cls.__name__

    def encode_obj(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {TAG: tag}
        for name in names:
            out[name] = _encode_value(getattr(obj, name))
        return out

    _encoders[cls] = encode_obj
    return encode_obj


def encode(obj: Any) -> Any:
    """``obj`` (a registered dataclass, or a list/dict/scalar of them) as plain JSON types."""
    return _encode_value(obj)


def dumps(obj: Any) -> str:
    """Compact JSON text of ``obj``."""
    return json.dumps(encode(obj), separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- decoding


def _fail(where: str, expected: str, value: Any) -> WireError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return WireError(f"{where}: expected {expected}, got {shown}")


def _converter(tp: Any, where: str) -> Decoder:
    """A function turning the JSON form of type ``tp`` back into a value of ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        options = [a for a in args if a is not type(None)]
        nullable = len(options) < len(args)
        if len(options) == 1:
            inner = _converter(options[0], where)
        else:
            convs = [_converter(a, where) for a in options]

            def inner(v: Any) -> Any:
                for conv in convs:
                    try:
                        return conv(v)
                    except (WireError, ValueError, TypeError):
                        continue
                raise _fail(where, " or ".join(getattr(a, "__name__", str(a)) for a in options), v)

        if not nullable:
            return inner
        return lambda v: None if v is None else inner(v)
    if origin is Literal:
        allowed = typing.get_args(tp)

        def lit(v: Any) -> Any:
            if v not in allowed:
                raise _fail(where, f"one of {allowed}", v)
            return v

        return lit
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _converter(args[0], where)

            def tup(v: Any) -> tuple[Any, ...]:
                if not isinstance(v, list | tuple):
                    raise _fail(where, "a list", v)
                return tuple(item(x) for x in v)

            return tup
        items = [_converter(a, where) for a in args]

        def fixed(v: Any) -> tuple[Any, ...]:
            if not isinstance(v, list | tuple) or len(v) != len(items):
                raise _fail(where, f"a list of {len(items)}", v)
            return tuple(c(x) for c, x in zip(items, v, strict=True))

        return fixed
    if origin in (list, dict) or tp is Any or tp is object:
        return lambda v: v
    if tp is Decimal:

        def dec(v: Any) -> Decimal:
            if isinstance(v, bool) or not isinstance(v, str | int):
                raise _fail(where, "a decimal string", v)
            try:
                return Decimal(v)
            except InvalidOperation:
                raise _fail(where, "a decimal string", v) from None

        return dec
    if tp is datetime:

        def dt(v: Any) -> datetime:
            if not isinstance(v, str):
                raise _fail(where, "an ISO-8601 datetime", v)
            try:
                out = datetime.fromisoformat(v)
            except ValueError:
                raise _fail(where, "an ISO-8601 datetime", v) from None
            if out.tzinfo is None:
                raise _fail(where, "a timezone-aware datetime", v)
            return out

        return dt
    if tp is date:

        def d(v: Any) -> date:
            if not isinstance(v, str):
                raise _fail(where, "an ISO-8601 date", v)
            try:
                return date.fromisoformat(v)
            except ValueError:
                raise _fail(where, "an ISO-8601 date", v) from None

        return d
    if isinstance(tp, type) and issubclass(tp, Enum):

        def en(v: Any) -> Enum:
            try:
                return tp(v)
            except ValueError:
                raise _fail(where, f"a {tp.__name__} ({', '.join(str(m.value) for m in tp)})", v) from None

        return en
    if tp is bool:

        def b(v: Any) -> bool:
            if not isinstance(v, bool):
                raise _fail(where, "true or false", v)
            return v

        return b
    if tp is int:

        def i(v: Any) -> int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise _fail(where, "a whole number", v)
            return v

        return i
    if tp is float:

        def f(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _fail(where, "a number", v)
            return float(v)

        return f
    if tp is str:

        def s(v: Any) -> str:
            if not isinstance(v, str):
                raise _fail(where, "a string", v)
            return v

        return s
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):

        def nested(v: Any) -> Any:
            if not isinstance(v, dict):
                raise _fail(where, f"a {tp.__name__} object", v)
            return _decoder_for(tp)(v)

        return nested
    raise WireError(f"{where}: type {tp!r} has no wire form")


def _decoder_for(cls: type) -> Callable[[dict[str, Any]], Any]:
    dec = _decoders.get(cls)
    if dec is not None:
        return dec
    hints = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields.append((f.name, _converter(hints[f.name], f"{cls.__name__}.{f.name}"), required))
    name = cls.__name__

    def decode_obj(data: dict[str, Any]) -> Any:
        tag = data.get(TAG, name)
        if tag != name:
            raise WireError(f"expected a {name}, got a {tag}")
        kwargs: dict[str, Any] = {}
        for fname, conv, required in fields:
            if fname in data:
                kwargs[fname] = conv(data[fname])
            elif required:
                raise WireError(f"{name}.{fname}: missing")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise WireError(f"{name}: {exc}") from None

    _decoders[cls] = decode_obj
    return decode_obj


def decode(data: Any, cls: type | None = None) -> Any:
    """The model a JSON value stands for: tagged objects become their dataclass, lists and
    plain values come back as they are. ``cls`` insists on one type (a command argument)."""
    if cls is not None:
        if not isinstance(data, dict):
            raise _fail(cls.__name__, "an object", data)
        return _decoder_for(cls)(data)
    if isinstance(data, dict):
        tag = data.get(TAG)
        if tag is None:
            return {k: decode(v) for k, v in data.items()}
        found = WIRE_TYPES.get(tag) if isinstance(tag, str) else None
        if found is None:
            raise WireError(f"unknown wire type {tag!r}")
        return _decoder_for(found)(data)
    if isinstance(data, list):
        return [decode(v) for v in data]
    return data


def loads(text: str | bytes) -> Any:
    """Parse JSON text and decode it (see :func:`decode`)."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    return decode(data)


def decimal_or_none(v: Any, where: str) -> Decimal | None:
    """A command argument that is an optional decimal string."""
    return None if v is None else _converter(Decimal, where)(v)
