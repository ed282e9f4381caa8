"""The trade-verb parser: every verb form, exact error messages, and the parse/format round trip."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OrderSource, OrderType, Side, TimeInForce
from tterm.tui.parse import (
    AccountCommand,
    CancelCommand,
    FlattenCommand,
    FocusCommand,
    HelpCommand,
    KillCommand,
    ListCommand,
    LockCommand,
    LoginCommand,
    OrderCommand,
    ParseError,
    QuitCommand,
    SortCommand,
    ThemeCommand,
    UnwatchCommand,
    WatchCommand,
    build_order,
    describe,
    format_order,
    parse,
)

D = Decimal


@pytest.fixture
def master() -> InstrumentMaster:
    return InstrumentMaster(today=lambda: date(2026, 11, 24))


# --------------------------------------------------------------------------- orders


def test_market_order() -> None:
    cmd = parse("buy 2 MES mkt")
    assert cmd == OrderCommand(side=Side.BUY, quantity=2, symbol="MES", order_type=OrderType.MARKET)


def test_limit_with_trailing_type_word() -> None:
    cmd = parse("sell 1 ES 5000.25 lmt")
    assert isinstance(cmd, OrderCommand)
    assert (cmd.side, cmd.quantity, cmd.symbol, cmd.order_type, cmd.limit_price) == (
        Side.SELL,
        1,
        "ES",
        OrderType.LIMIT,
        D("5000.25"),
    )


@pytest.mark.parametrize(
    "text", ["b 100 aapl @187.5", "b 100 aapl @ 187.5", "b 100 AAPL 187.5", "buy aapl 100 lmt 187.5"]
)
def test_limit_forms(text: str) -> None:
    cmd = parse(text)
    assert isinstance(cmd, OrderCommand)
    assert (cmd.side, cmd.quantity, cmd.symbol, cmd.order_type, cmd.limit_price, cmd.stop_price) == (
        Side.BUY,
        100,
        "AAPL",
        OrderType.LIMIT,
        D("187.5"),
        None,
    )


def test_bracket_in_ticks() -> None:
    cmd = parse("buy 1 NQ mkt tp 40 sl 20")
    assert isinstance(cmd, OrderCommand)
    assert cmd.order_type is OrderType.MARKET
    assert (cmd.take_profit_ticks, cmd.stop_loss_ticks) == (40, 20)
    bracket = cmd.bracket()
    assert bracket is not None and bracket.take_profit_ticks == 40 and bracket.stop_loss_ticks == 20


@pytest.mark.parametrize("text", ["buy 1 NQ mkt tp 40t sl 20 ticks", "buy 1 NQ mkt target 40 stoploss 20t"])
def test_bracket_tick_spellings(text: str) -> None:
    cmd = parse(text)
    assert isinstance(cmd, OrderCommand)
    assert (cmd.take_profit_ticks, cmd.stop_loss_ticks) == (40, 20)


def test_bracket_at_prices() -> None:
    cmd = parse("buy 1 ES 5000 lmt tp @5010.25 sl 4990.50")
    assert isinstance(cmd, OrderCommand)
    assert (cmd.take_profit_price, cmd.stop_loss_price) == (D("5010.25"), D("4990.50"))
    assert cmd.take_profit_ticks is None and cmd.stop_loss_ticks is None


@pytest.mark.parametrize(
    ("text", "stop", "limit", "otype"),
    [
        ("buy 1 ES stp 5010", D(5010), None, OrderType.STOP),
        ("buy 1 ES 5010 stop", D(5010), None, OrderType.STOP),
        ("buy 1 ES stp 5010 lmt 5011", D(5010), D(5011), OrderType.STOP_LIMIT),
        ("buy 1 ES 5011 stp 5010", D(5010), D(5011), OrderType.STOP_LIMIT),
        ("buy 1 ES stl 5010 5011", D(5010), D(5011), OrderType.STOP_LIMIT),
        ("sell 1 ES stop-limit 4990 4989.75", D(4990), D("4989.75"), OrderType.STOP_LIMIT),
    ],
)
def test_stop_forms(text: str, stop: Decimal, limit: Decimal | None, otype: OrderType) -> None:
    cmd = parse(text)
    assert isinstance(cmd, OrderCommand)
    assert (cmd.stop_price, cmd.limit_price, cmd.order_type) == (stop, limit, otype)


@pytest.mark.parametrize("tif", ["day", "gtc", "ioc", "fok", "GTC"])
def test_time_in_force(tif: str) -> None:
    cmd = parse(f"sell 3 MNQ 21000 {tif}")
    assert isinstance(cmd, OrderCommand)
    assert cmd.tif is TimeInForce(tif.lower())


def test_account_suffix_and_colon_prefix() -> None:
    cmd = parse(":buy 2 MES mkt in CASH")
    assert isinstance(cmd, OrderCommand) and cmd.account == "CASH"


def test_symbol_forms_kept_for_the_resolver() -> None:
    cmd = parse("buy 1 mes1! mkt")
    assert isinstance(cmd, OrderCommand) and cmd.symbol == "MES1!"


# --------------------------------------------------------------------------- order errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("buy", "buy: missing quantity and symbol, e.g. 'buy 2 MES mkt'"),
        ("buy 2", "buy: missing symbol after the quantity, e.g. 'buy 2 MES mkt'"),
        ("buy MES", "buy: missing quantity, e.g. 'buy 2 MES mkt'"),
        ("buy 0 MES mkt", "buy: quantity must be at least 1"),
        ("buy 1.5 MES mkt", "buy: quantity '1.5' must be a whole number"),
        (
            "buy 2 MES",
            "buy: say how to execute: 'mkt' for market, a price or @price for a limit, 'stp PRICE' for a stop",
        ),
        ("buy 2 MES mkt 5000", "buy: a market order takes no price (got 5000); drop 'mkt' for a limit order"),
        ("buy 2 MES 5000 5001", "buy: two bare prices (5000 and 5001); mark them with lmt and stp"),
        ("buy 2 MES @5000 lmt 5001", "buy: two limit prices (5000 and 5001)"),
        ("buy 2 MES mkt tp", "buy: missing take-profit (ticks, or @price)"),
        ("buy 2 MES mkt tp 0", "buy: take-profit must be at least 1 tick"),
        ("buy 2 MES mkt tp 4 tp 5", "buy: two take-profits"),
        ("buy 2 MES mkt sl abc", "buy: stop-loss 'abc' is neither a number of ticks nor @price"),
        ("buy 2 MES mkt day gtc", "buy: two times in force (day and gtc)"),
        ("buy 2 MES mkt banana", "buy: do not understand 'banana'"),
        ("buy 2 MES @", "buy: missing price after '@'"),
        ("buy 2 MES @abc", "buy: limit price: 'abc' is not a price"),
        ("buy 2 MES mkt in", "buy: missing account name after 'in'"),
    ],
)
def test_order_errors_are_specific(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value).startswith(message), str(info.value)


# --------------------------------------------------------------------------- other verbs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flatten MES", FlattenCommand("MES")),
        ("flatten all", FlattenCommand(None)),
        ("flat all in CASH", FlattenCommand(None, "CASH")),
        ("cancel all", CancelCommand(None)),
        ("cxl MES", CancelCommand("MES")),
        ("cancel P-000042 in paper:FUT50K", CancelCommand("P-000042", "paper:FUT50K")),
        ("watch NVDA", WatchCommand(("NVDA",))),
        ("watch nvda, amd tsla", WatchCommand(("NVDA", "AMD", "TSLA"))),
        ("unwatch TSLA", UnwatchCommand(("TSLA",))),
        ("theme tterm-light", ThemeCommand("tterm-light")),
        ("account Paper 50K", AccountCommand("Paper 50K")),
        ("list stocks", ListCommand("stocks")),
        ("list", ListCommand(None)),
        ("sort vol", SortCommand("volume", True)),
        ("sort symbol", SortCommand("symbol", False)),
        ("sort pct asc", SortCommand("change_pct", False)),
        ("go blotter", FocusCommand("blotter")),
        ("positions", FocusCommand("positions")),
        ("fills", FocusCommand("fills")),
        ("kill", KillCommand()),
        ("lock", LockCommand("locked from the command bar")),
        ("lock done for the day in CASH", LockCommand("done for the day", "CASH")),
        ("help", HelpCommand()),
        ("quit", QuitCommand()),
        ("login Schwab", LoginCommand("schwab")),
    ],
)
def test_other_verbs(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "type a command"),
        ("   ", "type a command"),
        ("frobnicate 3", "unknown command 'frobnicate'"),
        ("flatten", "flatten: flatten what? Write 'flatten MES' for one symbol or 'flatten all'"),
        ("cancel", "cancel: cancel what?"),
        ("watch", "watch: missing symbol to watch"),
        ("unwatch", "unwatch: missing symbol to remove"),
        ("theme", "theme: missing theme name"),
        ("account", "account: missing account name or alias"),
        ("sort", "sort: missing column"),
        ("sort colour", "sort: no column 'colour'"),
        ("sort last sideways", "sort: 'sideways' is not a direction"),
        ("go nowhere", "go: no pane 'nowhere'"),
        ("kill now", "kill: unexpected 'now'"),
        ("login", "login: missing broker name, e.g. 'login schwab'"),
        ("login sw now", "login: unexpected 'now'"),
        ("watch 123", "'123' is not a symbol"),
    ],
)
def test_other_verb_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value).startswith(message), str(info.value)


def test_describe_every_command() -> None:
    assert describe(FlattenCommand(None)).startswith("FLATTEN everything in the current account")
    assert describe(KillCommand()).startswith("KILL SWITCH")
    assert describe(LoginCommand("sw")).startswith("log in to sw: open the address it shows in a browser")
    assert describe(SortCommand("change_pct", True)) == "sort the watchlist by change pct descending"
    assert describe(parse("buy 2 MES mkt")) == "buy 2 MES mkt"


# --------------------------------------------------------------------------- build_order


def test_build_order_resolves_contract_and_source(master: InstrumentMaster) -> None:
    cmd = parse("buy 2 MES 5000.25 lmt gtc tp 8 sl 4")
    assert isinstance(cmd, OrderCommand)
    inst = master.resolve(cmd.symbol)
    req = build_order(cmd, account="paper:FUT50K", instrument=inst, source=OrderSource.PALETTE)
    assert req.symbol == inst.symbol == "MESZ6"
    assert req.source is OrderSource.PALETTE
    assert req.limit_price == D("5000.25") and req.tif is TimeInForce.GTC
    assert req.bracket is not None and (req.bracket.take_profit_ticks, req.bracket.stop_loss_ticks) == (8, 4)
    assert req.describe() == ("BUY 2 MESZ6 limit 5000.25 GTC take-profit 8 ticks stop-loss 4 ticks in paper:FUT50K")


def test_build_order_rejects_off_tick_price(master: InstrumentMaster) -> None:
    cmd = parse("buy 1 ES 5000.10 lmt")
    assert isinstance(cmd, OrderCommand)
    with pytest.raises(ParseError) as info:
        build_order(cmd, account="paper:FUT50K", instrument=master.resolve("ES"), source=OrderSource.PALETTE)
    assert "off the tick grid" in str(info.value)
    assert "5000.00" in str(info.value) and "5000.25" in str(info.value)


def test_build_order_rejects_negative_equity_price(master: InstrumentMaster) -> None:
    cmd = parse("buy 1 AAPL -5 lmt")
    assert isinstance(cmd, OrderCommand)
    with pytest.raises(ParseError, match="limit price must be positive"):
        build_order(cmd, account="paper:CASH", instrument=master.resolve("AAPL"), source=OrderSource.COMMAND_BAR)


# --------------------------------------------------------------------------- round trip (a law)

prices = st.decimals(min_value=D("0.25"), max_value=D("99999"), places=2, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(["MES", "ES", "NQ", "MNQ1!", "AAPL", "MESZ6", "BRK.B"])


@st.composite
def order_commands(draw: st.DrawFn) -> OrderCommand:
    otype = draw(st.sampled_from(list(OrderType)))
    limit = draw(prices) if otype.needs_limit else None
    stop = draw(prices) if otype.needs_stop else None
    tp_kind = draw(st.sampled_from(["none", "ticks", "price"]))
    sl_kind = draw(st.sampled_from(["none", "ticks", "price"]))
    trail_kind = draw(st.sampled_from(["ticks", "price"])) if otype.needs_trail else "none"
    return OrderCommand(
        side=draw(st.sampled_from(list(Side))),
        quantity=draw(st.integers(min_value=1, max_value=10_000)),
        symbol=draw(symbols),
        order_type=otype,
        limit_price=limit,
        stop_price=stop,
        tif=draw(st.sampled_from(list(TimeInForce))),
        take_profit_ticks=draw(st.integers(1, 500)) if tp_kind == "ticks" else None,
        take_profit_price=draw(prices) if tp_kind == "price" else None,
        stop_loss_ticks=draw(st.integers(1, 500)) if sl_kind == "ticks" else None,
        stop_loss_price=draw(prices) if sl_kind == "price" else None,
        account=draw(st.sampled_from([None, "CASH", "paper:FUT50K"])),
        trail_ticks=draw(st.integers(1, 500)) if trail_kind == "ticks" else None,
        trail_amount=draw(prices) if trail_kind == "price" else None,
    )


@given(order_commands())
def test_format_then_parse_is_identity(cmd: OrderCommand) -> None:
    assert parse(format_order(cmd)) == cmd


@given(st.text(max_size=40))
def test_parse_never_fails_with_anything_but_parse_error(text: str) -> None:
    try:
        parse(text)
    except ParseError as exc:
        assert str(exc)


def test_trailing_stop_in_ticks_or_price() -> None:
    cmd = parse("sell 2 MES trail 8t")
    assert isinstance(cmd, OrderCommand)
    assert (cmd.order_type, cmd.trail_ticks, cmd.trail_amount) == (OrderType.TRAILING_STOP, 8, None)
    cmd = parse("sell 2 MES trail @2.50")
    assert isinstance(cmd, OrderCommand)
    assert (cmd.trail_ticks, cmd.trail_amount) == (None, D("2.50"))
    with pytest.raises(ParseError, match="trailing stop takes only its distance"):
        parse("sell 2 MES trail 8 mkt")
    with pytest.raises(ParseError, match="two trailing distances"):
        parse("sell 2 MES trail 8 trail 9")
