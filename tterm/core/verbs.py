"""The trade verbs of the command palette, the command bar and plain-text webhook alerts.

One pure parser (no Textual, no engine) so that ``buy 2 MES mkt`` means the same thing typed in
the palette and sent by TradingView as a text alert. The grammar (case-insensitive, words in
any order after the quantity and symbol):

- ``buy|b|sell|s QTY SYMBOL [mkt | lmt PRICE | PRICE | @PRICE] [stp PRICE] [tp N|tp @PRICE]
  [sl N|sl @PRICE] [br TP/SL] [day|gtc|ioc|fok] [in ACCOUNT]`` — an order. ``QTY SYMBOL`` may
  also be written ``SYMBOL QTY``. No price means market; a price alone means limit; ``stp`` alone
  means stop, ``stp`` with a limit price means stop-limit. Bracket distances are whole ticks
  (``tp 40 sl 20``, or ``br 40/20``); ``tp @5010.25`` gives an absolute price.
- ``flatten|flat|close|exit SYMBOL|all [in ACCOUNT]`` — cancel working orders and close positions.
- ``cancel SYMBOL|all [in ACCOUNT]`` — cancel working orders.
- ``watch SYMBOL...``, ``unwatch SYMBOL...``, ``theme NAME``, ``account NAME`` — navigation.

Symbols are upper-cased but not resolved here (the instrument master does that, so ``MES1!``,
``MESZ6`` and ``CME_MINI:MES1!`` all pass through). Every failure is a :class:`VerbError` that
says exactly which word is wrong; no half-parsed order ever comes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tterm.core.models import (
    Bracket,
    ModelError,
    OrderRequest,
    OrderSource,
    OrderType,
    Side,
    TimeInForce,
    new_client_order_id,
)


class VerbError(ValueError):
    """Text that is not a valid verb; the message names the word at fault and what was expected."""


@dataclass(frozen=True, slots=True)
class OrderVerb:
    """``buy 2 MES mkt``: one order, not yet tied to an account unless ``in ACCOUNT`` was given."""

    side: Side
    quantity: int
    symbol: str
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    bracket: Bracket | None = None
    account: str = ""

    def to_request(
        self,
        account: str,
        *,
        source: OrderSource,
        quantity: int | None = None,
        client_order_id: str | None = None,
        strategy: str = "",
        symbol: str | None = None,
    ) -> OrderRequest:
        """The order request this verb stands for in ``account`` (``quantity``/``symbol`` override)."""
        return OrderRequest(
            account=account,
            symbol=symbol or self.symbol,
            side=self.side,
            quantity=self.quantity if quantity is None else quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            tif=self.tif,
            bracket=self.bracket,
            client_order_id=client_order_id or new_client_order_id(),
            source=source,
            strategy=strategy,
        )

    def describe(self) -> str:
        return self.to_request(self.account or "the current account", source=OrderSource.PALETTE).describe()


@dataclass(frozen=True, slots=True)
class FlattenVerb:
    """``flatten MES`` / ``flatten all``: ``symbol`` None means every symbol."""

    symbol: str | None
    account: str = ""

    def describe(self) -> str:
        what = f"the {self.symbol} position" if self.symbol else "every position"
        return f"FLATTEN {what} (cancel working orders, close at market) in {self.account or 'the current account'}"


@dataclass(frozen=True, slots=True)
class CancelVerb:
    """``cancel MES`` / ``cancel all``: ``symbol`` None means every working order."""

    symbol: str | None
    account: str = ""

    def describe(self) -> str:
        what = f"working {self.symbol} orders" if self.symbol else "every working order"
        return f"CANCEL {what} in {self.account or 'the current account'}"


@dataclass(frozen=True, slots=True)
class WatchVerb:
    """``watch NVDA`` (``add``) or ``unwatch TSLA``."""

    symbols: tuple[str, ...]
    add: bool = True

    def describe(self) -> str:
        return ("WATCH " if self.add else "UNWATCH ") + " ".join(self.symbols)


@dataclass(frozen=True, slots=True)
class ThemeVerb:
    name: str

    def describe(self) -> str:
        return f"THEME {self.name}"


@dataclass(frozen=True, slots=True)
class AccountVerb:
    name: str

    def describe(self) -> str:
        return f"ACCOUNT {self.name}"


Verb = OrderVerb | FlattenVerb | CancelVerb | WatchVerb | ThemeVerb | AccountVerb

TRADE_VERBS = frozenset({"buy", "b", "sell", "s", "flatten", "flat", "close", "exit", "cancel"})
_SIDES = {"buy": Side.BUY, "b": Side.BUY, "sell": Side.SELL, "s": Side.SELL}
_FLATTEN = frozenset({"flatten", "flat", "close", "exit"})
_TIFS = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}
_MARKET = frozenset({"mkt", "market", "m"})
_LIMIT = frozenset({"lmt", "limit", "lim", "l"})
_STOP = frozenset({"stp", "stop"})
_KEYWORDS = _MARKET | _LIMIT | _STOP | set(_TIFS) | {"tp", "sl", "br", "in", "@"}
_INT = re.compile(r"^\d+$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
_EXAMPLE = "e.g. 'buy 2 MES mkt', 'sell 1 ES 5000.25 lmt', 'buy 1 NQ mkt tp 40 sl 20'"


def _tokens(text: str) -> list[str]:
    """Split on whitespace; ``@5010`` becomes ``@``, ``5010``; commas are spaces."""
    out: list[str] = []
    for word in text.replace(",", " ").split():
        if word.startswith("@") and len(word) > 1:
            out.extend(("@", word[1:]))
        else:
            out.append(word)
    return out


def _price(word: str | None, what: str) -> Decimal:
    if word is None:
        raise VerbError(f"{what} needs a price after it")
    if not _NUMBER.match(word):
        raise VerbError(f"{what}: {word!r} is not a price")
    try:
        return Decimal(word)
    except InvalidOperation:
        raise VerbError(f"{what}: {word!r} is not a price") from None


def _ticks(word: str | None, what: str) -> int:
    if word is None:
        raise VerbError(f"{what} needs a number of ticks (or @PRICE) after it")
    if not _INT.match(word) or int(word) == 0:
        raise VerbError(f"{what}: {word!r} is not a whole number of ticks (use {what} @PRICE for a price)")
    return int(word)


def parse_verb(text: str) -> Verb:
    """Parse one command line; raises :class:`VerbError` with a specific message."""
    words = _tokens(text.strip())
    if not words:
        raise VerbError(f"empty command ({_EXAMPLE})")
    head = words[0].lower()
    rest = words[1:]
    if head in _SIDES:
        return _order(_SIDES[head], rest)
    if head in _FLATTEN:
        symbol, account = _scope(head, rest)
        return FlattenVerb(symbol=symbol, account=account)
    if head == "cancel":
        symbol, account = _scope(head, rest)
        return CancelVerb(symbol=symbol, account=account)
    if head in ("watch", "unwatch"):
        if not rest:
            raise VerbError(f"{head} needs at least one symbol")
        return WatchVerb(symbols=tuple(w.upper() for w in rest), add=head == "watch")
    if head == "theme":
        if len(rest) != 1:
            raise VerbError("theme needs exactly one theme name")
        return ThemeVerb(rest[0])
    if head == "account":
        if not rest:
            raise VerbError("account needs an account name or id")
        return AccountVerb(" ".join(rest))
    raise VerbError(
        f"unknown command {words[0]!r} (verbs: buy, sell, flatten, cancel, watch, unwatch, theme, account; {_EXAMPLE})"
    )


def _scope(verb: str, rest: list[str]) -> tuple[str | None, str]:
    account = ""
    if len(rest) >= 2 and rest[-2].lower() == "in":
        account = rest[-1]
        rest = rest[:-2]
    if not rest:
        raise VerbError(f"{verb} what? give a symbol or 'all' (e.g. '{verb} MES', '{verb} all')")
    if len(rest) > 1:
        raise VerbError(f"{verb} takes one symbol or 'all', got {' '.join(rest)!r}")
    word = rest[0]
    return (None if word.lower() == "all" else word.upper()), account


def _order(side: Side, rest: list[str]) -> OrderVerb:
    verb = side.value
    if len(rest) < 2:
        raise VerbError(f"{verb} needs a quantity and a symbol ({_EXAMPLE})")
    a, b = rest[0], rest[1]
    if _INT.match(a) and not _INT.match(b) and b.lower() not in _KEYWORDS:
        qty_word, symbol = a, b
    elif _INT.match(b) and not _INT.match(a) and a.lower() not in _KEYWORDS:
        qty_word, symbol = b, a
    else:
        bad = a if not _INT.match(a) else b
        if _NUMBER.match(a) or _NUMBER.match(b):
            num = a if _NUMBER.match(a) else b
            raise VerbError(f"quantity {num!r} must be a whole number of contracts or shares")
        raise VerbError(f"{verb} needs a quantity and a symbol, got {bad!r} ({_EXAMPLE})")
    quantity = int(qty_word)
    if quantity <= 0:
        raise VerbError(f"quantity must be at least 1, got {quantity}")

    explicit: str | None = None  # "market" or "limit" as written
    limit: Decimal | None = None
    stop: Decimal | None = None
    tif: TimeInForce | None = None
    tp_ticks = sl_ticks = None
    tp_price = sl_price = None
    account = ""
    words = rest[2:]
    i = 0

    def take() -> str | None:
        nonlocal i
        i += 1
        return words[i] if i < len(words) else None

    def set_limit(price: Decimal) -> None:
        nonlocal limit
        if limit is not None:
            raise VerbError(f"two limit prices given ({limit} and {price})")
        limit = price

    while i < len(words):
        word = words[i]
        low = word.lower()
        if low in _MARKET:
            if explicit is not None:
                raise VerbError(f"order type given twice ({explicit} and market)")
            explicit = "market"
        elif low in _LIMIT:
            if explicit is not None:
                raise VerbError(f"order type given twice ({explicit} and limit)")
            explicit = "limit"
            nxt = words[i + 1] if i + 1 < len(words) else None
            if nxt is not None and _NUMBER.match(nxt):
                set_limit(_price(take(), "lmt"))
        elif low == "@":
            set_limit(_price(take(), "@"))
        elif low in _STOP:
            if stop is not None:
                raise VerbError("stop price given twice")
            stop = _price(take(), "stp")
        elif low in ("tp", "sl"):
            nxt = take()
            if nxt == "@":
                price = _price(take(), f"{low} @")
                if low == "tp":
                    tp_price = price
                else:
                    sl_price = price
            elif low == "tp":
                tp_ticks = _ticks(nxt, "tp")
            else:
                sl_ticks = _ticks(nxt, "sl")
        elif low == "br":
            nxt = take()
            parts = (nxt or "").split("/")
            if len(parts) != 2:
                raise VerbError(f"br needs TP/SL in ticks, e.g. 'br 8/16', got {nxt!r}")
            tp_ticks, sl_ticks = _ticks(parts[0], "br take-profit"), _ticks(parts[1], "br stop-loss")
        elif low in _TIFS:
            if tif is not None:
                raise VerbError(f"time in force given twice ({tif.value} and {low})")
            tif = _TIFS[low]
        elif low == "in":
            nxt = take()
            if nxt is None:
                raise VerbError("'in' needs an account after it")
            account = nxt
        elif _NUMBER.match(word):
            set_limit(_price(word, "price"))
        else:
            raise VerbError(
                f"I don't understand {word!r} (expected mkt, lmt PRICE, @PRICE, stp PRICE, tp N, sl N, "
                f"br TP/SL, day/gtc/ioc/fok or in ACCOUNT)"
            )
        i += 1

    if explicit == "market" and (limit is not None or stop is not None):
        raise VerbError("a market order takes no price (drop 'mkt', or drop the price)")
    if explicit == "limit" and limit is None:
        raise VerbError("a limit order needs a price, e.g. 'lmt 5000.25' or '@5000.25'")
    if stop is not None and limit is not None:
        order_type = OrderType.STOP_LIMIT
    elif stop is not None:
        order_type = OrderType.STOP
    elif limit is not None:
        order_type = OrderType.LIMIT
    else:
        order_type = OrderType.MARKET
    bracket = None
    if any(v is not None for v in (tp_ticks, sl_ticks, tp_price, sl_price)):
        try:
            bracket = Bracket(
                take_profit_ticks=tp_ticks,
                stop_loss_ticks=sl_ticks,
                take_profit_price=tp_price,
                stop_loss_price=sl_price,
            )
        except ModelError as exc:
            raise VerbError(str(exc)) from None
    return OrderVerb(
        side=side,
        quantity=quantity,
        symbol=symbol.upper(),
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=tif or TimeInForce.DAY,
        bracket=bracket,
        account=account,
    )
