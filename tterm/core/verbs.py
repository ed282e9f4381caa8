"""The trade-verb parser shared by the command palette (Ctrl+P), the ``:`` command bar and
the webhook hub's plain-text alerts (one parser, so ``buy 2 MES mkt`` means the same everywhere;
``tterm.tui.parse`` re-exports it).

Pure: no Textual, no engine. :func:`parse` turns one line of text into a command object or
raises :class:`ParseError` saying exactly what is wrong; nothing is ever sent from text that does
not parse. :func:`build_order` then turns an :class:`OrderCommand` into an ``OrderRequest`` for a
resolved instrument and account, checking prices against the tick grid.

Order grammar (words are case-insensitive, symbols are upper-cased)::

    buy|b|sell|s QTY SYMBOL   (or SYMBOL QTY)
        mkt | market                     market order
        PRICE | @PRICE | PRICE lmt | lmt PRICE        limit order
        stp PRICE | PRICE stp            stop order
        stp PRICE lmt PRICE | stl STOP LIMIT          stop-limit order
        day | gtc | ioc | fok            time in force (default day)
        tp N | sl N                      bracket in ticks (also ``40t``, ``40 ticks``)
        tp @PRICE | sl @PRICE            bracket at a price (a number with a decimal point is a price too)
        in ACCOUNT | acct ACCOUNT        another account than the current one

Every order must say how it executes: ``buy 2 MES`` without ``mkt`` or a price is an error,
because guessing "market" from a forgotten price is how accidents happen.

Other verbs: ``flatten SYMBOL|all``, ``cancel all|SYMBOL|ORDER_ID``, ``watch SYM..``,
``unwatch SYM..``, ``theme NAME``, ``account NAME``, ``list [NAME]``, ``sort COLUMN [asc|desc]``,
``lock [REASON]``, ``login BROKER``, ``kill``, ``help``, ``quit``, and pane names (``watchlist``, ``ticket``,
``blotter``, ``fills``, ``positions``, ``risk``; also ``go PANE``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tterm.core.models import (
    Bracket,
    Instrument,
    ModelError,
    OrderRequest,
    OrderSource,
    OrderType,
    Side,
    TimeInForce,
)


class ParseError(ValueError):
    """Text that is not a valid command; the message says what is wrong and how to write it."""


# --------------------------------------------------------------------------- vocabulary

BUY_WORDS = frozenset({"buy", "b", "long"})
SELL_WORDS = frozenset({"sell", "s", "short"})
MARKET_WORDS = frozenset({"mkt", "market", "m"})
LIMIT_WORDS = frozenset({"lmt", "limit", "lim", "l"})
STOP_WORDS = frozenset({"stp", "stop"})
STOP_LIMIT_WORDS = frozenset({"stl", "stplmt", "stoplimit", "stop-limit", "stop_limit"})
TP_WORDS = frozenset({"tp", "target", "pt", "take-profit", "takeprofit"})
SL_WORDS = frozenset({"sl", "stoploss", "stop-loss"})
TRAIL_WORDS = frozenset({"trail", "trailing", "trl"})
ACCOUNT_WORDS = frozenset({"in", "acct", "account", "on"})
TICK_WORDS = frozenset({"t", "tick", "ticks", "tk"})
TIF_WORDS: dict[str, TimeInForce] = {t.value: t for t in TimeInForce}

FLATTEN_WORDS = frozenset({"flatten", "flat", "close"})
CANCEL_WORDS = frozenset({"cancel", "cxl", "can"})
WATCH_WORDS = frozenset({"watch", "add"})
UNWATCH_WORDS = frozenset({"unwatch", "remove", "rm", "del"})
THEME_WORDS = frozenset({"theme"})
SWITCH_ACCOUNT_WORDS = frozenset({"account", "acct", "use"})
LIST_WORDS = frozenset({"list", "wl", "watchlist-name"})
SORT_WORDS = frozenset({"sort"})
LOCK_WORDS = frozenset({"lock"})
KILL_WORDS = frozenset({"kill", "killswitch", "kill-switch", "panic"})
LOGIN_WORDS = frozenset({"login", "log-in", "signin"})
HELP_WORDS = frozenset({"help", "keys", "?"})
QUIT_WORDS = frozenset({"quit", "q", "exit"})
GO_WORDS = frozenset({"go", "focus", "show"})

#: Pane names (and their aliases) the navigation verbs accept.
PANES: dict[str, str] = {
    "watchlist": "watchlist",
    "quotes": "watchlist",
    "ticket": "ticket",
    "order": "ticket",
    "blotter": "blotter",
    "orders": "blotter",
    "working": "blotter",
    "fills": "fills",
    "rejects": "fills",
    "positions": "positions",
    "pos": "positions",
    "risk": "risk",
    "meters": "risk",
}

#: Watchlist columns that can be sorted on: key -> (aliases).
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "symbol": ("sym", "name"),
    "last": ("price", "px"),
    "change": ("chg", "net"),
    "change_pct": ("pct", "%", "chg%", "%chg", "percent"),
    "bid": (),
    "ask": (),
    "bid_size": ("bidsz", "bsz", "bidsize"),
    "ask_size": ("asksz", "asz", "asksize"),
    "volume": ("vol", "v"),
}
_SORT_ALIASES = {alias: key for key, aliases in SORT_COLUMNS.items() for alias in (key, *aliases)}

_PRICE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")

#: The largest order quantity a command (or a webhook alert) may ask for, in contracts or shares.
#: Numbers are bounded before any arithmetic: a 5,000-digit quantity must be refused, not computed.
MAX_QUANTITY = 1_000_000
#: The most ticks a take-profit or stop-loss may be away.
MAX_TICKS = 100_000
#: The longest a price may be written (sign and point included): 12 digits before the point.
MAX_PRICE_CHARS = 24
_PRICE_INT_DIGITS = 12
_INT = re.compile(r"^\d+$")
_TICKS = re.compile(r"^(\d+)(t|tk|ticks?)$")
_SYMBOL = re.compile(r"^/?[A-Za-z][A-Za-z0-9.!:_-]*$")

ORDER_EXAMPLE = "buy 2 MES mkt"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class OrderCommand:
    """A new order as typed; ``account`` None means the current account."""

    side: Side
    quantity: int
    symbol: str
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    take_profit_ticks: int | None = None
    stop_loss_ticks: int | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    account: str | None = None
    #: A trailing stop's distance: whole ticks (``trail 8``/``trail 8t``) or a price (``trail @2.5``).
    trail_ticks: int | None = None
    trail_amount: Decimal | None = None

    @property
    def has_bracket(self) -> bool:
        return any(
            v is not None
            for v in (self.take_profit_ticks, self.stop_loss_ticks, self.take_profit_price, self.stop_loss_price)
        )

    def bracket(self) -> Bracket | None:
        if not self.has_bracket:
            return None
        return Bracket(
            take_profit_ticks=self.take_profit_ticks,
            stop_loss_ticks=self.stop_loss_ticks,
            take_profit_price=self.take_profit_price,
            stop_loss_price=self.stop_loss_price,
        )


@dataclass(frozen=True, slots=True)
class FlattenCommand:
    """Close positions and cancel working orders: one symbol, or everything (``symbol`` None)."""

    symbol: str | None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class CancelCommand:
    """Cancel every working order (``target`` None), those of a symbol, or one order by id."""

    target: str | None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class WatchCommand:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnwatchCommand:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ThemeCommand:
    name: str


@dataclass(frozen=True, slots=True)
class AccountCommand:
    """Make another account current (by engine id, vendor id, name or alias)."""

    name: str


@dataclass(frozen=True, slots=True)
class ListCommand:
    """Show another watchlist; ``name`` None cycles to the next one."""

    name: str | None


@dataclass(frozen=True, slots=True)
class SortCommand:
    column: str
    descending: bool


@dataclass(frozen=True, slots=True)
class FocusCommand:
    pane: str


@dataclass(frozen=True, slots=True)
class LockCommand:
    """Lock the current account for the rest of the session (only exits pass)."""

    reason: str
    account: str | None = None


@dataclass(frozen=True, slots=True)
class LoginCommand:
    """A broker's browser login (the terminal's modal for ``tterm login BROKER``)."""

    broker: str


@dataclass(frozen=True, slots=True)
class KillCommand:
    """The kill switch: flatten and cancel everything in every account (asks first)."""


@dataclass(frozen=True, slots=True)
class HelpCommand:
    pass


@dataclass(frozen=True, slots=True)
class QuitCommand:
    pass


Command = (
    OrderCommand
    | FlattenCommand
    | CancelCommand
    | WatchCommand
    | UnwatchCommand
    | ThemeCommand
    | AccountCommand
    | ListCommand
    | SortCommand
    | FocusCommand
    | LockCommand
    | LoginCommand
    | KillCommand
    | HelpCommand
    | QuitCommand
)


# --------------------------------------------------------------------------- tokens


def _tokens(text: str) -> list[str]:
    """Split on whitespace; ``@`` and ``=`` glued to a word become separate tokens."""
    text = text.strip()
    if text.startswith(":"):
        text = text[1:]
    text = re.sub(r"@", " @ ", text)
    text = text.replace("=", " ")
    return text.split()


def _bounded_int(digits: str, limit: int) -> int | None:
    """A string of digits as an int if it is at most ``limit`` (None if above), without ever
    converting a long string (int() of thousands of digits is slow, and refused past 4,300)."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(limit)):
        return None
    value = int(digits)
    return value if value <= limit else None


def _shown(token: str) -> str:
    """A token for an error message, cut short (a pasted 5,000-digit number stays readable)."""
    return repr(token if len(token) <= 24 else token[:24] + f"... ({len(token)} characters)")


def _price(token: str, what: str) -> Decimal:
    if not _PRICE.match(token):
        raise ParseError(f"{what}: {_shown(token)} is not a price")
    if len(token) > MAX_PRICE_CHARS or len(token.lstrip("+-").split(".")[0].lstrip("0")) > _PRICE_INT_DIGITS:
        raise ParseError(f"{what}: {_shown(token)} is too long for a price")
    try:
        value = Decimal(token)
    except InvalidOperation:  # pragma: no cover - the regex already admits only numbers
        raise ParseError(f"{what}: {token!r} is not a price") from None
    return value


def _symbol(token: str) -> str:
    if not _SYMBOL.match(token) or _INT.match(token):
        raise ParseError(f"{_shown(token)} is not a symbol")
    return token.upper()


def _is_price(token: str) -> bool:
    return bool(_PRICE.match(token))


class _Cursor:
    """Walks the tokens of one command, with errors that name the command."""

    def __init__(self, tokens: list[str], verb: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.verb = verb

    def more(self) -> bool:
        return self.i < len(self.tokens)

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, what: str) -> str:
        if self.i >= len(self.tokens):
            raise ParseError(f"{self.verb}: missing {what}")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def rest(self) -> list[str]:
        out = self.tokens[self.i :]
        self.i = len(self.tokens)
        return out


# --------------------------------------------------------------------------- parse


def parse(text: str) -> Command:
    """Parse one command line; raises ParseError with a specific message."""
    tokens = _tokens(text)
    if not tokens:
        raise ParseError(f"type a command, e.g. {ORDER_EXAMPLE!r}, 'flatten all' or 'watch NVDA'")
    verb = tokens[0].lower()
    cur = _Cursor(tokens[1:], verb)
    if verb in BUY_WORDS:
        return _parse_order(Side.BUY, cur)
    if verb in SELL_WORDS:
        return _parse_order(Side.SELL, cur)
    if verb in FLATTEN_WORDS:
        return _parse_flatten(cur)
    if verb in CANCEL_WORDS:
        return _parse_cancel(cur)
    if verb in WATCH_WORDS:
        return WatchCommand(_symbols(cur, "symbol to watch, e.g. 'watch NVDA'"))
    if verb in UNWATCH_WORDS:
        return UnwatchCommand(_symbols(cur, "symbol to remove, e.g. 'unwatch TSLA'"))
    if verb in THEME_WORDS:
        name = " ".join(cur.rest()).strip()
        if not name:
            raise ParseError("theme: missing theme name, e.g. 'theme tterm-light'")
        return ThemeCommand(name)
    if verb in SWITCH_ACCOUNT_WORDS:
        name = " ".join(cur.rest()).strip()
        if not name:
            raise ParseError("account: missing account name or alias, e.g. 'account FUT50K'")
        return AccountCommand(name)
    if verb in LIST_WORDS:
        name = " ".join(cur.rest()).strip()
        return ListCommand(name or None)
    if verb in SORT_WORDS:
        return _parse_sort(cur)
    if verb in LOCK_WORDS:
        words = cur.rest()
        account = None
        if len(words) >= 2 and words[-2].lower() in ACCOUNT_WORDS:
            account = words[-1]
            words = words[:-2]
        return LockCommand(" ".join(words).strip() or "locked from the command bar", account)
    if verb in LOGIN_WORDS:
        broker = cur.take("broker name, e.g. 'login schwab'").lower()
        _no_more(cur)
        return LoginCommand(broker)
    if verb in KILL_WORDS:
        _no_more(cur)
        return KillCommand()
    if verb in HELP_WORDS:
        _no_more(cur)
        return HelpCommand()
    if verb in QUIT_WORDS:
        _no_more(cur)
        return QuitCommand()
    if verb in GO_WORDS:
        pane = cur.take("pane name (" + ", ".join(sorted(set(PANES.values()))) + ")").lower()
        _no_more(cur)
        if pane not in PANES:
            raise ParseError(f"{verb}: no pane {pane!r} (panes: {', '.join(sorted(set(PANES.values())))})")
        return FocusCommand(PANES[pane])
    if verb in PANES:
        _no_more(cur)
        return FocusCommand(PANES[verb])
    raise ParseError(
        f"unknown command {tokens[0]!r}: start with buy/sell, flatten, cancel, watch, unwatch, theme, "
        f"account, list, sort, lock, login, kill, help or a pane name"
    )


def _no_more(cur: _Cursor) -> None:
    if cur.more():
        raise ParseError(f"{cur.verb}: unexpected {' '.join(cur.rest())!r}")


def _symbols(cur: _Cursor, what: str) -> tuple[str, ...]:
    raw = [t for tok in cur.rest() for t in tok.split(",") if t]
    if not raw:
        raise ParseError(f"{cur.verb}: missing {what}")
    return tuple(_symbol(t) for t in raw)


def _account_suffix(cur: _Cursor) -> str | None:
    tok = cur.peek()
    if tok is not None and tok.lower() in ACCOUNT_WORDS:
        cur.take("")
        return cur.take("account name after 'in'")
    return None


def _parse_flatten(cur: _Cursor) -> FlattenCommand:
    tok = cur.peek()
    if tok is None or tok.lower() in ACCOUNT_WORDS:
        raise ParseError(f"{cur.verb}: flatten what? Write 'flatten MES' for one symbol or 'flatten all'")
    cur.take("")
    symbol = None if tok.lower() in ("all", "everything", "*") else _symbol(tok)
    account = _account_suffix(cur)
    _no_more(cur)
    return FlattenCommand(symbol, account)


def _parse_cancel(cur: _Cursor) -> CancelCommand:
    tok = cur.peek()
    if tok is None or tok.lower() in ACCOUNT_WORDS:
        raise ParseError(f"{cur.verb}: cancel what? Write 'cancel all', 'cancel MES' or 'cancel <order id>'")
    cur.take("")
    target = None if tok.lower() in ("all", "*") else tok
    account = _account_suffix(cur)
    _no_more(cur)
    return CancelCommand(target, account)


def _parse_sort(cur: _Cursor) -> SortCommand:
    name = cur.take("column (" + ", ".join(SORT_COLUMNS) + ")").lower()
    key = _SORT_ALIASES.get(name)
    if key is None:
        raise ParseError(f"sort: no column {name!r} (columns: {', '.join(SORT_COLUMNS)})")
    descending = key != "symbol"
    tok = cur.peek()
    if tok is not None:
        word = cur.take("").lower()
        if word in ("asc", "ascending", "up"):
            descending = False
        elif word in ("desc", "descending", "down"):
            descending = True
        else:
            raise ParseError(f"sort: {word!r} is not a direction (asc or desc)")
    _no_more(cur)
    return SortCommand(key, descending)


def _quantity(token: str, verb: str) -> int:
    if not _INT.match(token):
        raise ParseError(f"{verb}: quantity {_shown(token)} must be a whole number")
    qty = _bounded_int(token, MAX_QUANTITY)
    if qty is None:
        raise ParseError(f"{verb}: quantity {_shown(token)} is above the largest order ({MAX_QUANTITY:,})")
    if qty <= 0:
        raise ParseError(f"{verb}: quantity must be at least 1")
    return qty


def _parse_order(side: Side, cur: _Cursor) -> OrderCommand:
    verb = cur.verb
    first = cur.peek()
    if first is None:
        raise ParseError(f"{verb}: missing quantity and symbol, e.g. '{verb} 2 MES mkt'")
    cur.take("")
    if _INT.match(first):
        quantity = _quantity(first, verb)
        sym_tok = cur.peek()
        if sym_tok is None:
            raise ParseError(f"{verb}: missing symbol after the quantity, e.g. '{verb} {quantity} MES mkt'")
        cur.take("")
        symbol = _symbol(sym_tok)
    else:
        if _is_price(first):
            raise ParseError(f"{verb}: quantity {_shown(first)} must be a whole number")
        symbol = _symbol(first)
        qty_tok = cur.peek()
        if qty_tok is None or not _INT.match(qty_tok):
            raise ParseError(f"{verb}: missing quantity, e.g. '{verb} 2 {symbol} mkt'")
        cur.take("")
        quantity = _quantity(qty_tok, verb)

    market = False
    limit: Decimal | None = None
    stop: Decimal | None = None
    pending: Decimal | None = None  # a bare price not yet claimed by lmt/stp
    tif: TimeInForce | None = None
    tp_ticks = sl_ticks = None
    tp_price = sl_price = None
    trail_ticks: int | None = None
    trail_price: Decimal | None = None
    trailing = False
    account: str | None = None

    def set_limit(value: Decimal) -> None:
        nonlocal limit
        if limit is not None:
            raise ParseError(f"{verb}: two limit prices ({limit} and {value})")
        limit = value

    def set_stop(value: Decimal) -> None:
        nonlocal stop
        if stop is not None:
            raise ParseError(f"{verb}: two stop prices ({stop} and {value})")
        stop = value

    while cur.more():
        raw = cur.take("")
        tok = raw.lower()
        if tok in MARKET_WORDS:
            market = True
        elif tok == "@":
            set_limit(_price(cur.take("price after '@'"), f"{verb}: limit price"))
        elif tok in LIMIT_WORDS:
            if pending is not None:
                set_limit(pending)
                pending = None
            else:
                set_limit(_price(cur.take("limit price after 'lmt'"), f"{verb}: limit price"))
        elif tok in STOP_WORDS:
            if pending is not None and not (cur.peek() is not None and _is_price(cur.peek() or "")):
                set_stop(pending)
                pending = None
            else:
                set_stop(_price(cur.take("stop price after 'stp'"), f"{verb}: stop price"))
        elif tok in STOP_LIMIT_WORDS:
            set_stop(_price(cur.take("stop price after 'stl'"), f"{verb}: stop price"))
            set_limit(_price(cur.take("limit price after the stop price"), f"{verb}: limit price"))
        elif tok in TIF_WORDS:
            if tif is not None and tif is not TIF_WORDS[tok]:
                raise ParseError(f"{verb}: two times in force ({tif.value} and {tok})")
            tif = TIF_WORDS[tok]
        elif tok in TP_WORDS or tok in SL_WORDS:
            which = "take-profit" if tok in TP_WORDS else "stop-loss"
            ticks, price = _bracket_leg(cur, which)
            if which == "take-profit":
                if tp_ticks is not None or tp_price is not None:
                    raise ParseError(f"{verb}: two take-profits")
                tp_ticks, tp_price = ticks, price
            else:
                if sl_ticks is not None or sl_price is not None:
                    raise ParseError(f"{verb}: two stop-losses")
                sl_ticks, sl_price = ticks, price
        elif tok in TRAIL_WORDS:
            if trailing:
                raise ParseError(f"{verb}: two trailing distances")
            trailing = True
            trail_ticks, trail_price = _bracket_leg(cur, "trailing distance")
        elif tok in ACCOUNT_WORDS:
            if account is not None:
                raise ParseError(f"{verb}: two accounts ({account} and another)")
            account = cur.take(f"account name after {raw!r}")
        elif _is_price(tok):
            if pending is not None:
                raise ParseError(f"{verb}: two bare prices ({pending} and {raw}); mark them with lmt and stp")
            pending = _price(tok, f"{verb}: price")
        else:
            raise ParseError(
                f"{verb}: do not understand {_shown(raw)} (expected mkt, a price or @price, lmt, stp, "
                f"trail, day/gtc/ioc/fok, tp, sl, or 'in ACCOUNT')"
            )

    if pending is not None:
        set_limit(pending)
    if trailing and (market or limit is not None or stop is not None):
        raise ParseError(f"{verb}: a trailing stop takes only its distance ('trail 8' ticks or 'trail @2.50')")
    if market and (limit is not None or stop is not None):
        given = limit if limit is not None else stop
        raise ParseError(f"{verb}: a market order takes no price (got {given}); drop 'mkt' for a limit order")
    if trailing:
        order_type = OrderType.TRAILING_STOP
    elif market:
        order_type = OrderType.MARKET
    elif stop is not None and limit is not None:
        order_type = OrderType.STOP_LIMIT
    elif stop is not None:
        order_type = OrderType.STOP
    elif limit is not None:
        order_type = OrderType.LIMIT
    else:
        raise ParseError(
            f"{verb}: say how to execute: 'mkt' for market, a price or @price for a limit, 'stp PRICE' for a stop"
        )
    return OrderCommand(
        side=side,
        quantity=quantity,
        symbol=symbol,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=tif or TimeInForce.DAY,
        take_profit_ticks=tp_ticks,
        stop_loss_ticks=sl_ticks,
        take_profit_price=tp_price,
        stop_loss_price=sl_price,
        account=account,
        trail_ticks=trail_ticks,
        trail_amount=trail_price,
    )


def _bracket_leg(cur: _Cursor, which: str) -> tuple[int | None, Decimal | None]:
    """``tp 40`` / ``tp 40t`` / ``tp 40 ticks`` are ticks; ``tp @5010.25`` / ``tp 5010.25`` a price."""
    verb = cur.verb
    tok = cur.take(f"{which} (ticks, or @price)").lower()
    if tok == "@":
        return None, _price(cur.take(f"{which} price after '@'"), f"{verb}: {which} price")
    m = _TICKS.match(tok)
    if m or _INT.match(tok):
        bounded = _bounded_int(m.group(1) if m else tok, MAX_TICKS)
        if bounded is None:
            raise ParseError(f"{verb}: {which} {_shown(tok)} is more than {MAX_TICKS:,} ticks away")
        ticks = bounded
        nxt = cur.peek()
        if not m and nxt is not None and nxt.lower() in TICK_WORDS:
            cur.take("")
    elif _is_price(tok):
        value = _price(tok, f"{verb}: {which} price")
        if value <= 0:
            raise ParseError(f"{verb}: {which} {_shown(tok)} is neither a price nor a number of ticks")
        return None, value
    else:
        raise ParseError(f"{verb}: {which} {_shown(tok)} is neither a number of ticks nor @price")
    if ticks <= 0:
        raise ParseError(f"{verb}: {which} must be at least 1 tick")
    return ticks, None


# --------------------------------------------------------------------------- order building


def build_order(
    cmd: OrderCommand,
    *,
    account: str,
    instrument: Instrument,
    source: OrderSource,
) -> OrderRequest:
    """The OrderRequest for ``cmd`` in ``account`` on the resolved ``instrument``.

    Prices must already sit on the tick grid: a person typed them, so they are never rounded
    silently (ParseError names the nearest valid prices).
    """
    try:
        for label, price in (
            ("limit price", cmd.limit_price),
            ("stop price", cmd.stop_price),
            ("take-profit", cmd.take_profit_price),
            ("stop-loss", cmd.stop_loss_price),
        ):
            if price is not None:
                instrument.round_price(price, "reject")
                if price <= 0 and instrument.asset_class.value != "future":
                    raise ParseError(f"{label} must be positive, got {price}")
        bracket = cmd.bracket()
        trail = cmd.trail_amount
        if cmd.trail_ticks is not None:
            trail = (cmd.trail_ticks * instrument.tick_size).quantize(instrument.tick_size)
        if trail is not None:
            instrument.round_price(trail, "reject")
    except ModelError as exc:
        raise ParseError(str(exc)) from None
    return OrderRequest(
        account=account,
        symbol=instrument.symbol,
        side=cmd.side,
        quantity=cmd.quantity,
        order_type=cmd.order_type,
        limit_price=cmd.limit_price,
        stop_price=cmd.stop_price,
        tif=cmd.tif,
        bracket=bracket,
        source=source,
        trail_amount=trail,
    )


def format_order(cmd: OrderCommand) -> str:
    """The canonical verb text of an order (parses back to the same command)."""
    words = [cmd.side.value, str(cmd.quantity), cmd.symbol]
    if cmd.order_type is OrderType.MARKET:
        words.append("mkt")
    if cmd.stop_price is not None:
        words += ["stp", str(cmd.stop_price)]
    if cmd.limit_price is not None:
        words += ["lmt", str(cmd.limit_price)]
    if cmd.trail_ticks is not None:
        words += ["trail", str(cmd.trail_ticks)]
    elif cmd.trail_amount is not None:
        words += ["trail", f"@{cmd.trail_amount}"]
    if cmd.tif is not TimeInForce.DAY:
        words.append(cmd.tif.value)
    for word, ticks, price in (
        ("tp", cmd.take_profit_ticks, cmd.take_profit_price),
        ("sl", cmd.stop_loss_ticks, cmd.stop_loss_price),
    ):
        if ticks is not None:
            words += [word, str(ticks)]
        elif price is not None:
            words += [word, f"@{price}"]
    if cmd.account is not None:
        words += ["in", cmd.account]
    return " ".join(words)


def describe(cmd: Command) -> str:
    """Plain words for a non-order command (orders use ``OrderRequest.describe()``)."""
    match cmd:
        case FlattenCommand(symbol=None, account=acct):
            return f"FLATTEN everything in {acct or 'the current account'}: cancel working orders, close positions"
        case FlattenCommand(symbol=sym, account=acct):
            return f"FLATTEN {sym} in {acct or 'the current account'}: cancel its orders, close the position"
        case CancelCommand(target=None, account=acct):
            return f"CANCEL every working order in {acct or 'the current account'}"
        case CancelCommand(target=t, account=acct):
            return f"CANCEL working orders for {t} in {acct or 'the current account'}"
        case WatchCommand(symbols=syms):
            return "WATCH " + ", ".join(syms)
        case UnwatchCommand(symbols=syms):
            return "UNWATCH " + ", ".join(syms)
        case ThemeCommand(name=n):
            return f"switch to theme {n}"
        case AccountCommand(name=n):
            return f"make {n} the current account"
        case ListCommand(name=None):
            return "show the next watchlist"
        case ListCommand(name=n):
            return f"show watchlist {n}"
        case SortCommand(column=c, descending=d):
            return f"sort the watchlist by {c.replace('_', ' ')} {'descending' if d else 'ascending'}"
        case FocusCommand(pane=p):
            return f"go to the {p} pane"
        case LockCommand(reason=r, account=acct):
            return f"LOCK {acct or 'the current account'} for the rest of the session ({r}); only exits pass"
        case LoginCommand(broker=b):
            return f"log in to {b}: open the address it shows in a browser, then paste where the browser went"
        case KillCommand():
            return "KILL SWITCH: flatten and cancel everything in every account"
        case HelpCommand():
            return "show every key binding"
        case QuitCommand():
            return "quit tterm"
        case OrderCommand():
            return format_order(cmd)
    raise TypeError(f"not a command: {cmd!r}")  # pragma: no cover
