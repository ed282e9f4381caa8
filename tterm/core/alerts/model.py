"""Price alerts: what an alert is, the text that makes one, and the test it applies to a quote.

Pure: no engine, no I/O. An alert watches one price of one contract (``last``, ``bid``, ``ask``
or ``mid``) against a level with ``>``, ``>=``, ``<``, ``<=`` or ``crosses``; it fires once, the
first time its condition holds, and is then disarmed (state ``fired``).

``crosses`` fires when the price moves to the other side of the level from the side it was last
seen on, in either direction; touching the level counts as reaching the other side. The side is
taken from the quote when the alert is created (or from the first quote after, when there was
none, or when the price sat exactly on the level) and never changes while the alert is armed,
so it survives a restart: a price that crossed while tterm was down fires on the first quote.

Text form (the palette, the command bar)::

    alert SYMBOL [last|bid|ask|mid] OP PRICE [webhook NAME] [run NAME] [note TEXT...]

``OP`` is one of ``> >= < <= crosses`` (also ``above``/``below`` for ``>=``/``<=`` and ``x``
for ``crosses``); ``webhook NAME`` and ``run NAME`` pick a webhook-out or a command configured
under ``[alerts]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from tterm.core.models import Quote, utcnow


class AlertError(ValueError):
    """An alert that cannot be created or changed; the message says what is wrong."""


class AlertField(StrEnum):
    """The price of a quote an alert watches."""

    LAST = "last"
    BID = "bid"
    ASK = "ask"
    MID = "mid"

    def of(self, quote: Quote) -> Decimal | None:
        """This price in ``quote``; ``mid`` needs both a bid and an ask (no fallback to last)."""
        if self is AlertField.LAST:
            return quote.last
        if self is AlertField.BID:
            return quote.bid
        if self is AlertField.ASK:
            return quote.ask
        if quote.bid is None or quote.ask is None:
            return None
        return (quote.bid + quote.ask) / 2


class AlertOp(StrEnum):
    """The test an alert applies."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    CROSSES = "crosses"


class AlertState(StrEnum):
    ARMED = "armed"
    FIRED = "fired"
    REMOVED = "removed"


#: Words accepted for each operator (case-insensitive).
OP_WORDS: dict[str, AlertOp] = {
    ">": AlertOp.GT,
    ">=": AlertOp.GE,
    "=>": AlertOp.GE,
    "<": AlertOp.LT,
    "<=": AlertOp.LE,
    "=<": AlertOp.LE,
    "above": AlertOp.GE,
    "below": AlertOp.LE,
    "crosses": AlertOp.CROSSES,
    "cross": AlertOp.CROSSES,
    "x": AlertOp.CROSSES,
}
FIELD_WORDS: dict[str, AlertField] = {f.value: f for f in AlertField}

#: Bounds on what an alert may carry (checked before any arithmetic).
MAX_NOTE = 200
MAX_PRICE_CHARS = 24
_PRICE = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SYMBOL = re.compile(r"^/?[A-Za-z][A-Za-z0-9.!:_/-]{0,39}$")

ALERT_EXAMPLE = "alert MES > 6800"


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """A new alert as asked for (before the engine resolves the symbol and checks the price)."""

    symbol: str
    op: AlertOp
    price: Decimal
    field: AlertField = AlertField.LAST
    webhook: str = ""
    command: str = ""
    note: str = ""

    def describe(self) -> str:
        return describe_condition(self.symbol, self.field, self.op, self.price)


@dataclass(frozen=True, slots=True)
class Alert:
    """One price alert as the engine holds it. ``symbol`` is the contract (MESZ6), ``listed``
    what was typed (MES). ``side`` is where the price was last seen for ``crosses``: -1 below
    the level, +1 above, 0 not seen yet."""

    alert_id: int
    symbol: str
    op: AlertOp
    price: Decimal
    field: AlertField = AlertField.LAST
    state: AlertState = AlertState.ARMED
    listed: str = ""
    side: int = 0
    webhook: str = ""
    command: str = ""
    note: str = ""
    source: str = ""
    created_at: datetime = dc_field(default_factory=utcnow)
    fired_at: datetime | None = None
    fired_price: Decimal | None = None

    @property
    def armed(self) -> bool:
        return self.state is AlertState.ARMED

    def describe(self) -> str:
        """``MESZ6 last > 6800.00`` (the listed symbol when it differs: ``MES (MESZ6) ...``)."""
        return describe_condition(self.display_symbol, self.field, self.op, self.price)

    @property
    def display_symbol(self) -> str:
        if self.listed and self.listed != self.symbol:
            return f"{self.listed} ({self.symbol})"
        return self.symbol

    def evaluate(self, value: Decimal) -> tuple[bool, int]:
        """Whether ``value`` fires this alert, and the ``side`` to keep (for ``crosses``)."""
        level = self.price
        if self.op is AlertOp.GT:
            return value > level, self.side
        if self.op is AlertOp.GE:
            return value >= level, self.side
        if self.op is AlertOp.LT:
            return value < level, self.side
        if self.op is AlertOp.LE:
            return value <= level, self.side
        now = (value > level) - (value < level)
        if self.side == 0:
            return False, now  # the first sighting only says which side the price is on
        if now != self.side:  # on the level or beyond it, coming from the other side
            return True, self.side
        return False, self.side

    def fired(self, price: Decimal, at: datetime) -> Alert:
        return replace(self, state=AlertState.FIRED, fired_at=at, fired_price=price)


@dataclass(frozen=True, slots=True)
class AlertFired:
    """An alert fired: published once on the bus (toast and bell in the terminal)."""

    alert: Alert
    price: Decimal
    text: str
    ts: datetime = dc_field(default_factory=utcnow)


def describe_condition(symbol: str, fld: AlertField, op: AlertOp, price: Decimal) -> str:
    return f"{symbol} {fld.value} {op.value} {price}"


def side_of(value: Decimal, level: Decimal) -> int:
    return (value > level) - (value < level)


# --------------------------------------------------------------------------- text


def _shown(token: str) -> str:
    return repr(token if len(token) <= 24 else token[:24] + f"... ({len(token)} characters)")


def parse_price(token: str) -> Decimal:
    """A positive price written as plain digits (``6800``, ``6800.25``, ``.5``)."""
    if token.startswith("-"):
        raise AlertError(f"alert: the price must be positive, got {_shown(token)}")
    if token.startswith("+"):
        token = token[1:]
    if len(token) > MAX_PRICE_CHARS or not _PRICE.match(token):
        raise AlertError(f"alert: {_shown(token)} is not a price (e.g. {ALERT_EXAMPLE!r})")
    try:
        value = Decimal(token)
    except InvalidOperation:  # pragma: no cover - the regex admits only numbers
        raise AlertError(f"alert: {_shown(token)} is not a price") from None
    if value <= 0:
        raise AlertError(f"alert: the price must be positive, got {_shown(token)}")
    return value


def _split(words: list[str]) -> list[str]:
    """``MES>6800`` and ``>=6800`` become separate tokens."""
    out: list[str] = []
    for word in words:
        out.extend(t for t in re.split(r"(>=|<=|=>|=<|>|<)", word) if t)
    return out


def parse_alert_spec(words: list[str]) -> AlertSpec:
    """The words after ``alert``: ``MES > 6800``, ``AAPL bid crosses 190 webhook phone``.

    Raises :class:`AlertError` saying what is wrong; the symbol is checked by the engine.
    """
    tokens = _split(words)
    if not tokens:
        raise AlertError(f"alert: missing the condition, e.g. {ALERT_EXAMPLE!r} or 'alert AAPL crosses 190'")
    symbol = tokens[0]
    if not _SYMBOL.match(symbol) or symbol.isdigit():
        raise AlertError(f"alert: {_shown(symbol)} is not a symbol (e.g. {ALERT_EXAMPLE!r})")
    i = 1
    fld = AlertField.LAST
    if i < len(tokens) and tokens[i].lower() in FIELD_WORDS:
        fld = FIELD_WORDS[tokens[i].lower()]
        i += 1
    if i >= len(tokens):
        raise AlertError(f"alert: missing the condition after {symbol}: one of > >= < <= crosses, then a price")
    op = OP_WORDS.get(tokens[i].lower())
    if op is None:
        raise AlertError(
            f"alert: {_shown(tokens[i])} is not a condition: use >, >=, <, <= or crosses (e.g. {ALERT_EXAMPLE!r})"
        )
    i += 1
    if i >= len(tokens):
        raise AlertError(f"alert: missing the price after {op.value!r}")
    price = parse_price(tokens[i])
    i += 1
    webhook = command = note = ""
    while i < len(tokens):
        word = tokens[i].lower()
        if word in ("webhook", "post", "hook"):
            if i + 1 >= len(tokens):
                raise AlertError("alert: missing the webhook name after 'webhook' (a name under [alerts.webhooks])")
            webhook = _name(tokens[i + 1], "webhook")
            i += 2
        elif word in ("run", "command", "cmd", "exec"):
            if i + 1 >= len(tokens):
                raise AlertError("alert: missing the command name after 'run' (a name under [alerts.commands])")
            command = _name(tokens[i + 1], "command")
            i += 2
        elif word in ("note", "say", "msg", "--"):
            note = " ".join(tokens[i + 1 :]).strip()
            i = len(tokens)
        else:
            raise AlertError(
                f"alert: unexpected {_shown(tokens[i])} after the price (allowed: webhook NAME, run NAME, note TEXT)"
            )
    if len(note) > MAX_NOTE:
        raise AlertError(f"alert: the note is {len(note)} characters; at most {MAX_NOTE}")
    return AlertSpec(symbol=symbol.upper(), op=op, price=price, field=fld, webhook=webhook, command=command, note=note)


def _name(token: str, what: str) -> str:
    if not _NAME.match(token):
        raise AlertError(f"alert: {_shown(token)} is not a {what} name (letters, digits, '-' and '_')")
    return token
