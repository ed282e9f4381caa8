"""Webhook alert bodies -> :class:`Signal`: TradersPost JSON, PickMyTrade JSON, position targets, text verbs.

TradingView posts the alert message as the body, as ``application/json`` when it parses as JSON
and ``text/plain`` otherwise (support article 43000529348), so the Content-Type is ignored and the
body itself decides:

1. JSON object (an unquoted placeholder that rendered empty, ``"quantity": ,``, is repaired to
   ``null`` first — the commonest way a TradingView alert turns into invalid JSON):
   - ``market_position`` / ``position_size`` present: a **position target** (acted on as a
     target, so a missed or repeated alert heals itself);
   - ``data`` present: **PickMyTrade** (``symbol``, ``data`` buy/sell/close, ``quantity``,
     ``tp``/``sl``, ``date``, ``token``, ``multiple_accounts``);
   - otherwise **TradersPost** (``ticker``, ``action`` buy/sell/exit/cancel/add, ``sentiment``,
     ``quantity``, ``orderType``, ``limitPrice``, ``stopPrice``, ``takeProfit``, ``stopLoss``,
     ``price``, ``time``).
2. Anything else is read as a palette verb (``buy 2 MES mkt``, ``flatten MES``, ``cancel all``).

Keys are matched ignoring case, ``_`` and ``-`` (``limitPrice`` = ``limit_price``); numbers may
arrive quoted (TradingView placeholders inside quotes render as strings); an empty string is
"not given". Anything that cannot be honoured exactly is refused with a typed
:class:`WebhookError` — never half-traded.

Every value is read within bounds first (:mod:`tterm.hub.values`), so a hostile body is a typed
refusal before any arithmetic is done on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from tterm.core.models import OrderType, Side, TimeInForce
from tterm.core.verbs import CancelCommand, FlattenCommand, OrderCommand, ParseError, parse
from tterm.hub.values import (
    HTTP_STATUS,
    MAX_DEPTH,
    ErrorCode,
    Fields,
    WebhookError,
    load_json,
    norm_key,
    parse_time,
    read_bool,
    read_decimal,
    read_text,
    read_whole,
)

#: Re-exported: the hub's server, router and tests take these from here.
__all__ = ["HTTP_STATUS", "MAX_DEPTH", "ErrorCode", "WebhookError", "norm_key", "parse_time"]

#: The largest ``quantity_multiplier`` of a ``multiple_accounts`` entry.
MAX_MULTIPLIER = Decimal(1000)
#: How many entries ``multiple_accounts`` may list.
MAX_ACCOUNTS = 100
#: How many ignored field names a reply and the journal list.
MAX_IGNORED = 20


class Action(StrEnum):
    """What an alert asks for. ORDER is a literal order (a text verb); TARGET a position target."""

    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"
    CANCEL = "cancel"
    ADD = "add"
    TARGET = "target"
    ORDER = "order"


class Sentiment(StrEnum):
    """The position after the trade (TradersPost ``sentiment``)."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class AccountPick:
    """One PickMyTrade ``multiple_accounts`` entry (or an ``in ACCOUNT`` of a text alert)."""

    account: str
    multiplier: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """One parsed alert, independent of its payload form and of any account.

    ``ticker`` is as sent (``""``: every symbol, for ``flatten all`` / ``cancel all``). ``quantity``
    is per alert before each account's multiplier (None: not given). ``target`` is the signed
    position wanted (TARGET only). Take-profit and stop-loss come as a price, a price distance
    (``*_amount``), a percent of the entry price, a dollar amount per contract, or ticks.
    """

    form: str
    ticker: str
    action: Action
    quantity: int | None = None
    side: Side | None = None
    sentiment: Sentiment | None = None
    target: int | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    tp_price: Decimal | None = None
    sl_price: Decimal | None = None
    tp_amount: Decimal | None = None
    sl_amount: Decimal | None = None
    tp_percent: Decimal | None = None
    sl_percent: Decimal | None = None
    tp_dollars: Decimal | None = None
    sl_dollars: Decimal | None = None
    tp_ticks: int | None = None
    sl_ticks: int | None = None
    price: Decimal | None = None
    alert_time: datetime | None = None
    alert_id: str = ""
    cancel_first: bool = False
    close_only_on_reverse: bool = False
    allow_add: bool | None = None
    accounts: tuple[AccountPick, ...] = ()
    repaired: bool = False
    ignored: tuple[str, ...] = field(default=())

    @property
    def has_bracket(self) -> bool:
        return any(
            v is not None
            for v in (
                self.tp_price,
                self.sl_price,
                self.tp_amount,
                self.sl_amount,
                self.tp_percent,
                self.sl_percent,
                self.tp_dollars,
                self.sl_dollars,
                self.tp_ticks,
                self.sl_ticks,
            )
        )

    def describe(self) -> str:
        """The alert in plain words, before any account's sizing."""
        sym = self.ticker or "every symbol"
        qty = "" if self.quantity is None else f" {self.quantity}"
        if self.action is Action.TARGET:
            t = self.target or 0
            return f"TARGET {sym}: {'flat' if t == 0 else ('long ' if t > 0 else 'short ') + str(abs(t))}"
        if self.action is Action.EXIT:
            return f"EXIT{qty or ' all of'} {sym}"
        if self.action is Action.CANCEL:
            return f"CANCEL working orders in {sym}"
        words = [self.side.value.upper() if self.side else self.action.value.upper(), qty.strip() or "(default)", sym]
        if self.action is Action.ADD:
            words.insert(0, "ADD")
        words.append(self.order_type.value.replace("_", "-"))
        if self.limit_price is not None:
            words.append(f"limit {self.limit_price}")
        if self.stop_price is not None:
            words.append(f"stop {self.stop_price}")
        if self.sentiment is not None:
            words.append(f"(then {self.sentiment.value})")
        return " ".join(w for w in words if w)


# --------------------------------------------------------------------------- helpers


#: Body fields that carry the shared secret (TradersPost puts it in the path instead; PickMyTrade
#: calls it ``token``; robswc/tradingview-webhooks-bot ``key``).
SECRET_FIELDS = ("passphrase", "password", "secret", "token", "key")

_TEXT_SECRET = re.compile(r"(?i)\b(passphrase|password|secret|token|key)\s*[=:]\s*(\S+)")


_ORDER_TYPES = {
    "market": OrderType.MARKET,
    "mkt": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "lmt": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stp": OrderType.STOP,
    "stoplimit": OrderType.STOP_LIMIT,
    "stplmt": OrderType.STOP_LIMIT,
    "stoplmt": OrderType.STOP_LIMIT,
}
_TIFS = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}
_SENTIMENTS = {
    "bullish": Sentiment.LONG,
    "long": Sentiment.LONG,
    "bearish": Sentiment.SHORT,
    "short": Sentiment.SHORT,
    "flat": Sentiment.FLAT,
}


def _order_type(v: Any) -> OrderType:
    if v is None:
        return OrderType.MARKET
    text = norm_key(read_text(v, "orderType"))
    if text in _ORDER_TYPES:
        return _ORDER_TYPES[text]
    if text in ("trailingstop", "trail", "trailing"):
        raise WebhookError(ErrorCode.INVALID_ACTION, "orderType trailing_stop is not supported; use stop or stop_limit")
    raise WebhookError(ErrorCode.INVALID_ACTION, f"orderType {text!r} is not one of market, limit, stop, stop_limit")


def _tif(v: Any) -> TimeInForce:
    if v is None:
        return TimeInForce.DAY
    text = read_text(v, "timeInForce").lower()
    if text in _TIFS:
        return _TIFS[text]
    raise WebhookError(ErrorCode.INVALID_ACTION, f"timeInForce {text!r} is not supported (use day, gtc, ioc or fok)")


def _sentiment(v: Any) -> Sentiment | None:
    if v is None:
        return None
    text = read_text(v, "sentiment").lower()
    if text not in _SENTIMENTS:
        raise WebhookError(ErrorCode.INVALID_ACTION, f"sentiment {text!r} is not bullish/long, bearish/short or flat")
    return _SENTIMENTS[text]


def _bracket_leg(v: Any, which: str) -> dict[str, Any]:
    """TradersPost ``takeProfit`` / ``stopLoss``: an object, or a bare number taken as a price."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        return {"price": read_decimal(v, which)}
    f = Fields(v)
    kind = f.get("type")
    if kind is not None and norm_key(read_text(kind, f"{which}.type")) not in ("stop", "market"):
        raise WebhookError(
            ErrorCode.INVALID_ACTION, f"{which}.type {kind!r} is not supported (a stop-loss is a stop order)"
        )
    if f.has("trailAmount", "trailPercent"):
        raise WebhookError(ErrorCode.INVALID_ACTION, f"{which}: trailing stops are not supported")
    price = f.get("limitPrice") if which == "takeProfit" else f.get("stopPrice")
    out = {
        "price": read_decimal(price, f"{which}.{'limitPrice' if which == 'takeProfit' else 'stopPrice'}"),
        "amount": read_decimal(f.get("amount"), f"{which}.amount"),
        "percent": read_decimal(f.get("percent"), f"{which}.percent"),
    }
    given = [k for k, x in out.items() if x is not None]
    if len(given) > 1:
        raise WebhookError(ErrorCode.MALFORMED, f"{which}: give one of a price, an amount or a percent, not {given}")
    for k in ("amount", "percent"):
        value = out[k]
        if value is not None and value <= 0:
            raise WebhookError(ErrorCode.MALFORMED, f"{which}.{k} must be positive, got {value}")
    return out


def _check_order_prices(order_type: OrderType, limit: Decimal | None, stop: Decimal | None) -> None:
    if order_type.needs_stop and stop is None:
        raise WebhookError(ErrorCode.INVALID_ACTION, f"a {order_type.value.replace('_', '-')} order needs stopPrice")
    if order_type is OrderType.STOP_LIMIT and limit is None:
        raise WebhookError(ErrorCode.INVALID_ACTION, "a stop-limit order needs limitPrice")


# --------------------------------------------------------------------------- entry point


def extract_secret(body: str) -> str | None:
    """The shared secret carried in the body (a JSON field, or ``passphrase=...`` in a text alert)."""
    data = load_json(body)[0]
    if isinstance(data, dict):
        fields = Fields(data)
        v = fields.get(*SECRET_FIELDS)
        return None if v is None or isinstance(v, dict | list) else str(v)
    m = _TEXT_SECRET.search(body)
    return m.group(2) if m else None


def parse_body(body: str) -> Signal:
    """Parse one alert body; raises :class:`WebhookError` (``malformed``, ``invalid-action``...)."""
    if not body.strip():
        raise WebhookError(ErrorCode.MALFORMED, "empty body: the alert message is blank")
    data, repaired, json_error = load_json(body)
    if json_error:
        raise WebhookError(
            ErrorCode.MALFORMED,
            f"not valid JSON ({json_error}). An unquoted placeholder that renders empty (such as "
            f"{{{{strategy.order.contracts}}}} on an indicator alert) breaks the JSON; quote it or drop it",
        )
    if data is None:
        return _parse_text(body)
    if not isinstance(data, dict):
        raise WebhookError(ErrorCode.MALFORMED, "the JSON body must be one object {...}")
    fields = Fields(data)
    if fields.has("market_position", "marketposition", "position_size", "positionsize"):
        sig = _parse_target(fields)
    elif fields.has("data"):
        sig = _parse_pickmytrade(fields)
    elif fields.has("action"):
        sig = _parse_traderspost(fields)
    else:
        raise WebhookError(
            ErrorCode.MALFORMED,
            "unknown alert format: send ticker + action (TradersPost), symbol + data (PickMyTrade), "
            "ticker + market_position + market_position_size (position target), or a text command "
            "such as 'buy 2 MES mkt'",
        )
    fields.get(*SECRET_FIELDS)  # not an ignored field
    unused = fields.unused()
    ignored = tuple(k[:40] for k in unused[:MAX_IGNORED])
    if len(unused) > MAX_IGNORED:
        ignored += (f"... and {len(unused) - MAX_IGNORED} more",)
    return _with(sig, repaired=repaired, ignored=ignored)


def _with(sig: Signal, **changes: Any) -> Signal:
    return replace(sig, **changes)


def _common(f: Fields) -> dict[str, Any]:
    ticker = f.get("ticker", "symbol")
    if ticker is None:
        raise WebhookError(ErrorCode.MALFORMED, 'no ticker: add "ticker": "{{ticker}}"')
    alert_id = f.get("id", "alert_id", "alertid", "signal_id", "signalid")
    return {
        "ticker": read_text(ticker, "ticker").upper(),
        "alert_time": parse_time(f.get("time", "timenow", "date", "alert_time", "timestamp")),
        "alert_id": read_text(alert_id, "id")[:100] if alert_id is not None else "",
        "price": read_decimal(f.get("signalPrice", "price", "close"), "price"),
    }


def _exit_quantity(v: Any, action: Action, sentiment: Sentiment | None) -> int | None:
    """The quantity of a TradersPost alert. An exit, or a buy/sell with sentiment flat, means flat
    (None: the whole position) when its quantity is 0 or missing — templates send
    ``"quantity": 0`` (or ``{{strategy.order.contracts}}`` rendering 0) with a close. A positive
    quantity on an exit closes that many (TradersPost: "an exit without a quantity closes the
    full position"); sentiment flat always exits in full, whatever its quantity."""
    closing = action is Action.EXIT or sentiment is Sentiment.FLAT
    n = read_whole(v, "quantity", zero=closing)
    if closing and not n:
        return None
    return n


def _closed(f: Fields) -> None:
    """PickMyTrade ``close`` flattens whatever its quantity says (B.3: "Close flattens and
    cancels"); the quantity is still checked, so a hostile one is refused, not ignored."""
    read_whole(f.get("quantity", "qty"), "quantity", zero=True)
    return None


def _parse_traderspost(f: Fields) -> Signal:
    common = _common(f)
    action_text = read_text(f.get("action"), "action").lower()
    aliases = {"close": "exit", "long": "buy", "short": "sell"}
    action_text = aliases.get(action_text, action_text)
    if action_text not in ("buy", "sell", "exit", "cancel", "add"):
        raise WebhookError(
            ErrorCode.INVALID_ACTION, f"action {action_text!r} is not one of buy, sell, exit, cancel, add"
        )
    action = Action(action_text)
    sentiment = _sentiment(f.get("sentiment"))
    if sentiment is not None and action not in (Action.BUY, Action.SELL, Action.ADD):
        raise WebhookError(ErrorCode.INVALID_ACTION, f"sentiment is only valid with buy or sell, not {action_text}")
    if action is Action.ADD and sentiment is Sentiment.FLAT:
        raise WebhookError(ErrorCode.INVALID_ACTION, "add with sentiment flat makes no sense")
    qtype = f.get("quantityType")
    if qtype is not None and norm_key(read_text(qtype, "quantityType")) != "fixedquantity":
        raise WebhookError(ErrorCode.INVALID_ACTION, f"quantityType {qtype!r} is not supported (only fixed_quantity)")
    order_type = _order_type(f.get("orderType", "type"))
    limit = read_decimal(f.get("limitPrice"), "limitPrice")
    stop = read_decimal(f.get("stopPrice"), "stopPrice")
    _check_order_prices(order_type, limit, stop)
    tp = _bracket_leg(f.get("takeProfit"), "takeProfit")
    sl = _bracket_leg(f.get("stopLoss"), "stopLoss")
    if (tp or sl) and action in (Action.EXIT, Action.CANCEL):
        raise WebhookError(ErrorCode.INVALID_ACTION, f"takeProfit/stopLoss make no sense with {action_text}")
    side = {Action.BUY: Side.BUY, Action.SELL: Side.SELL}.get(action)
    return Signal(
        form="traderspost",
        action=action,
        side=side,
        sentiment=sentiment,
        quantity=_exit_quantity(f.get("quantity", "qty", "contracts"), action, sentiment),
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=_tif(f.get("timeInForce", "tif")),
        tp_price=tp.get("price"),
        tp_amount=tp.get("amount"),
        tp_percent=tp.get("percent"),
        sl_price=sl.get("price"),
        sl_amount=sl.get("amount"),
        sl_percent=sl.get("percent"),
        cancel_first=bool(read_bool(f.get("cancel"), "cancel")),
        **common,
    )


def _parse_pickmytrade(f: Fields) -> Signal:
    common = _common(f)
    data = read_text(f.get("data"), "data").lower()
    actions = {"buy": Action.BUY, "sell": Action.SELL, "close": Action.EXIT, "exit": Action.EXIT}
    if data not in actions:
        raise WebhookError(ErrorCode.INVALID_ACTION, f"data {data!r} is not one of buy, sell, close")
    action = actions[data]
    for name in ("risk_percentage", "trail", "update_tp", "update_sl"):
        v = f.get(name)
        if v is not None and read_decimal(v if not isinstance(v, bool) else int(v), name) not in (None, 0):
            raise WebhookError(ErrorCode.INVALID_ACTION, f"{name} is not supported by tterm; remove it or set it to 0")
    order_type = _order_type(f.get("order_type", "orderType"))
    price = common["price"]
    limit = read_decimal(f.get("limit_price", "limitPrice"), "limit_price")
    if order_type.needs_limit and limit is None:
        limit = price
    stop = read_decimal(f.get("stop_price", "stopPrice"), "stop_price")
    _check_order_prices(order_type, limit, stop)

    def nonzero(name: str) -> Decimal | None:
        v = read_decimal(f.get(name), name)
        return v if v else None  # PickMyTrade templates send 0 for "not used"

    accounts = []
    multi = f.get("multiple_accounts")
    if multi is not None:
        if not isinstance(multi, list):
            raise WebhookError(ErrorCode.MALFORMED, "multiple_accounts must be a list of objects")
        if len(multi) > MAX_ACCOUNTS:
            raise WebhookError(
                ErrorCode.MALFORMED, f"multiple_accounts lists {len(multi)} accounts (at most {MAX_ACCOUNTS})"
            )
        for i, entry in enumerate(multi):
            if not isinstance(entry, dict):
                raise WebhookError(ErrorCode.MALFORMED, f"multiple_accounts[{i}] must be an object")
            e = Fields(entry)
            acct = e.get("account_id", "account")
            if acct is None:
                raise WebhookError(ErrorCode.MALFORMED, f"multiple_accounts[{i}] has no account_id")
            acct_text = read_text(acct, f"multiple_accounts[{i}].account_id")
            conn = e.get("connection_name", "broker")
            if conn is not None and ":" not in acct_text:
                acct_text = f"{read_text(conn, 'connection_name')}:{acct_text}"
            where = f"multiple_accounts[{i}].quantity_multiplier"
            mult = read_decimal(e.get("quantity_multiplier", "multiplier"), where)
            if mult is not None and not 0 < mult <= MAX_MULTIPLIER:
                raise WebhookError(
                    ErrorCode.MALFORMED,
                    f"multiple_accounts[{i}].quantity_multiplier must be above 0 and at most {MAX_MULTIPLIER}",
                )
            e.get("risk_percentage")
            accounts.append(AccountPick(account=acct_text, multiplier=mult))
    side = {Action.BUY: Side.BUY, Action.SELL: Side.SELL}.get(action)
    # PickMyTrade's reversal and pyramiding flags: its documented truth table is not reproduced in
    # our reference (B.3), so both spellings are read and the default is tterm's own (reverse on
    # an opposite signal; add on a same-side one only with the strategy's pyramiding).
    reverse_close = read_bool(f.get("reverse_order_close"), "reverse_order_close")
    allow_add = read_bool(f.get("duplicate_position_allow"), "duplicate_position_allow")
    f.get("platform", "token")
    if action is Action.EXIT:
        _closed(f)
        quantity = None
    else:
        quantity = read_whole(f.get("quantity", "qty"), "quantity")
    return Signal(
        form="pickmytrade",
        action=action,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tp_price=nonzero("tp"),
        sl_price=nonzero("sl"),
        tp_dollars=nonzero("dollar_tp"),
        sl_dollars=nonzero("dollar_sl"),
        close_only_on_reverse=bool(reverse_close),
        allow_add=allow_add,
        accounts=tuple(accounts),
        cancel_first=action is not Action.EXIT,
        **common,
    )


def _parse_target(f: Fields) -> Signal:
    common = _common(f)
    position = f.get("market_position", "marketposition")
    signed = f.get("position_size", "positionsize")
    if position is not None:
        pos = read_text(position, "market_position").lower()
        if pos not in ("long", "short", "flat"):
            raise WebhookError(ErrorCode.INVALID_ACTION, f"market_position {pos!r} is not long, short or flat")
        if pos == "flat":
            target = 0
        else:
            size = read_whole(f.get("market_position_size", "marketpositionsize", "size"), "market_position_size")
            if size is None:
                size_signed = read_whole(signed, "position_size", signed=True)
                if size_signed is None:
                    raise WebhookError(
                        ErrorCode.MALFORMED,
                        f"market_position {pos} needs market_position_size ({{{{strategy.market_position_size}}}})",
                    )
                size = abs(size_signed)
            target = size if pos == "long" else -size
    else:
        given = read_whole(signed, "position_size", signed=True)
        assert given is not None
        target = given
    f.get("action", "prev_market_position", "prev_market_position_size", "quantity", "contracts")
    order_type = _order_type(f.get("orderType", "order_type"))
    limit = read_decimal(f.get("limitPrice", "limit_price"), "limitPrice")
    stop = read_decimal(f.get("stopPrice", "stop_price"), "stopPrice")
    _check_order_prices(order_type, limit, stop)
    tp = _bracket_leg(f.get("takeProfit"), "takeProfit")
    sl = _bracket_leg(f.get("stopLoss"), "stopLoss")
    return Signal(
        form="target",
        action=Action.TARGET,
        target=target,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=_tif(f.get("timeInForce", "tif")),
        tp_price=tp.get("price"),
        tp_amount=tp.get("amount"),
        tp_percent=tp.get("percent"),
        sl_price=sl.get("price"),
        sl_amount=sl.get("amount"),
        sl_percent=sl.get("percent"),
        **common,
    )


def _parse_text(body: str) -> Signal:
    """A palette verb: ``buy 2 MES mkt``, ``flatten MES``, ``exit MES``, ``cancel all``."""
    text = _TEXT_SECRET.sub(" ", body).strip()
    words = text.split()
    if words and words[0].lower() == "exit":  # "exit MES" reads as flatten in an alert (quit in the palette)
        text = " ".join(["flatten", *words[1:]])
    try:
        cmd = parse(text)
    except ParseError as exc:
        raise WebhookError(
            ErrorCode.MALFORMED,
            f"not JSON, and not a text command: {exc}",
        ) from None
    picks: tuple[AccountPick, ...] = ()
    if isinstance(cmd, OrderCommand):
        if cmd.account:
            picks = (AccountPick(cmd.account),)
        return Signal(
            form="text",
            ticker=cmd.symbol,
            action=Action.ORDER,
            side=cmd.side,
            quantity=cmd.quantity,
            order_type=cmd.order_type,
            limit_price=cmd.limit_price,
            stop_price=cmd.stop_price,
            tif=cmd.tif,
            tp_ticks=cmd.take_profit_ticks,
            sl_ticks=cmd.stop_loss_ticks,
            tp_price=cmd.take_profit_price,
            sl_price=cmd.stop_loss_price,
            accounts=picks,
        )
    if isinstance(cmd, FlattenCommand):
        return Signal(
            form="text",
            ticker=cmd.symbol or "",
            action=Action.EXIT,
            accounts=(AccountPick(cmd.account),) if cmd.account else (),
        )
    if isinstance(cmd, CancelCommand):
        return Signal(
            form="text",
            ticker=(cmd.target or "").upper(),
            action=Action.CANCEL,
            accounts=(AccountPick(cmd.account),) if cmd.account else (),
        )
    verb = words[0] if words else text
    raise WebhookError(
        ErrorCode.INVALID_ACTION,
        f"a text alert may buy, sell, flatten/exit or cancel; {verb!r} is a terminal command",
    )


def round_ticks(distance: Decimal, tick: Decimal) -> int:
    """A positive price distance as whole ticks (at least 1)."""
    return max(1, int((distance / tick).to_integral_value(rounding=ROUND_HALF_EVEN)))
