"""The paper broker end to end: orders, fills, balances, events, persistence, replay, laws."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tterm.brokers.paper import DEFAULT_ACCOUNTS, ModifyRejected, PaperAccountSpec, PaperBroker
from tterm.core.broker import BrokerError, UnknownOrder
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AccountKind,
    AccountSnapshot,
    Bracket,
    ConnectionState,
    ConnectionStatus,
    Fill,
    ModelError,
    Notice,
    Order,
    OrderLeg,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "replay"
FUT = "paper:FUT50K"
CASH = "paper:CASH"
MES = "MESZ5"  # the front MES contract on 2025-11-03
ES = "ESZ5"


class FakeClock:
    """The two clock methods the paper broker uses, with a trade date the test moves."""

    def __init__(self) -> None:
        self.day = date(2025, 11, 3)
        self.at = datetime(2025, 11, 3, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def trade_date(self, at: datetime | None = None) -> date:
        return self.day

    def next_day(self) -> None:
        self.day += timedelta(days=1)
        self.at += timedelta(days=1)


def make(clock: FakeClock | None = None, **kw: Any) -> PaperBroker:
    clock = clock or FakeClock()
    master = InstrumentMaster(today=lambda: clock.day)
    kw.setdefault("scripted", True)
    kw.setdefault("seed", 1)
    return PaperBroker("paper", accounts=DEFAULT_ACCOUNTS, instruments=master, clock=clock, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def broker() -> AsyncIterator[PaperBroker]:
    b = make()
    await b.connect()
    drain(b)
    yield b
    await b.close()


def drain(b: PaperBroker) -> list[Any]:
    """Everything on the broker's event stream so far (the engine is its only consumer)."""
    out = []
    while not b._events.empty():
        ev = b._events.get_nowait()
        if isinstance(ev, Quote | Order | Fill | Position | AccountSnapshot | ConnectionStatus | Notice):
            out.append(ev)
    return out


async def mkt(b: PaperBroker, symbol: str, bid: str, ask: str, bid_size: int = 0, ask_size: int = 0) -> None:
    await b.push_quote(Quote(symbol, bid=D(bid), ask=D(ask), last=D(bid), bid_size=bid_size, ask_size=ask_size))


def req(**kw: Any) -> OrderRequest:
    base: dict[str, Any] = {"account": FUT, "symbol": "MES1!", "side": Side.BUY, "quantity": 1}
    base.update(kw)
    for k in ("limit_price", "stop_price"):
        if isinstance(base.get(k), str):
            base[k] = D(base[k])
    return OrderRequest(**base)


async def snap(b: PaperBroker, account: str) -> AccountSnapshot:
    return next(s for s in await b.snapshots() if s.account == account)


async def order(b: PaperBroker, order_id: str) -> Order:
    return next(o for o in await b.orders() if o.order_id == order_id)


# --------------------------------------------------------------------------- accounts and connection


async def test_accounts_connection_and_close_events() -> None:
    b = make()
    await b.connect()
    accts = {a.id: a for a in await b.accounts()}
    assert set(accts) == {CASH, FUT}
    assert accts[FUT].kind is AccountKind.FUTURES and accts[FUT].profile == "topstep-50k-combine"
    assert accts[CASH].kind is AccountKind.CASH and accts[FUT].vendor_id == "FUT50K"
    assert not accts[FUT].is_live and accts[FUT].broker == "paper"
    evs = drain(b)
    assert any(isinstance(e, ConnectionStatus) and e.state is ConnectionState.CONNECTED for e in evs)
    balances = {e.account: e.balance for e in evs if isinstance(e, AccountSnapshot)}
    assert balances == {CASH: D(100000), FUT: D(50000)}
    await b.close()
    rest = [e async for e in b.events()]
    assert isinstance(rest[-1], ConnectionStatus) and rest[-1].state is ConnectionState.DOWN
    with pytest.raises(BrokerError, match="closed"):
        await b.place(req())


def test_account_specs_are_validated() -> None:
    with pytest.raises(ModelError, match="cash' or 'futures"):
        PaperAccountSpec(id="M", name="M", kind=AccountKind.MARGIN, balance=D(1))
    with pytest.raises(ModelError, match="must be a Decimal >= 0"):
        PaperAccountSpec(id="X", name="X", kind=AccountKind.CASH, balance=D(-1))
    with pytest.raises(ModelError, match="without ':'"):
        PaperAccountSpec(id="a:b", name="X", kind=AccountKind.CASH, balance=D(1))
    with pytest.raises(ValueError, match="unknown symbol"):
        make(symbols=["NOPE1!"])


# --------------------------------------------------------------------------- lifecycles


async def test_market_order_lifecycle_events_fee_and_balance(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(quantity=2))
    assert o.symbol == MES and o.status is OrderStatus.FILLED and o.avg_fill_price == D("6800.25")
    evs = drain(broker)
    kinds = [(type(e).__name__, getattr(e, "status", None)) for e in evs]
    assert kinds == [
        ("Order", OrderStatus.PENDING),
        ("Order", OrderStatus.WORKING),
        ("Fill", None),
        ("Order", OrderStatus.FILLED),
        ("Position", None),
        ("AccountSnapshot", None),
    ]
    fill = evs[2]
    assert (fill.quantity, fill.price, fill.fee, fill.account) == (2, D("6800.25"), D("1.24"), FUT)
    pos = evs[4]
    assert (pos.quantity, pos.avg_price, pos.fees) == (2, D("6800.25"), D("1.24"))
    s = evs[5]
    assert s.balance == D("49998.76") and s.fees_today == D("1.24")
    assert s.equity == s.balance + s.open_pnl
    assert broker.last_message_at is not None


@pytest.mark.parametrize(("symbol", "gross", "fees"), [("ES1!", D(100), D("4.28")), ("MES1!", D(10), D("1.24"))])
async def test_round_trip_pnl_net_of_fees_mini_vs_micro(broker: PaperBroker, symbol: str, gross: D, fees: D) -> None:
    await mkt(broker, symbol, "6800.00", "6800.25")
    await broker.place(req(symbol=symbol))
    await mkt(broker, symbol, "6802.25", "6802.50")
    await broker.place(req(symbol=symbol, side=Side.SELL))
    s = await snap(broker, FUT)
    assert s.day_realized_pnl == gross - fees and s.fees_today == fees
    assert s.balance == D(50000) + gross - fees and s.open_pnl == 0
    assert await broker.positions(FUT) == []


async def test_resting_limit_then_filled(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(order_type=OrderType.LIMIT, limit_price="6798.00"))
    assert o.status is OrderStatus.WORKING
    await mkt(broker, "MES1!", "6797.50", "6797.75")
    done = await order(broker, o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("6798.00")


async def test_marketable_limit_fills_at_the_touch(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(order_type=OrderType.LIMIT, limit_price="6805.00"))
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == D("6800.25")


async def test_stop_triggers_and_fills_at_market(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(side=Side.SELL, order_type=OrderType.STOP, stop_price="6795.00"))
    assert o.status is OrderStatus.WORKING
    await mkt(broker, "MES1!", "6794.50", "6794.75")
    done = await order(broker, o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("6794.50")


async def test_stop_limit_triggers_rests_then_fills(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(
        req(order_type=OrderType.STOP_LIMIT, stop_price="6802.00", limit_price="6802.00", tif=TimeInForce.GTC)
    )
    await mkt(broker, "MES1!", "6803.00", "6803.25")  # triggered, above the limit: rests
    assert (await order(broker, o.order_id)).status is OrderStatus.WORKING
    await mkt(broker, "MES1!", "6801.75", "6802.00")
    done = await order(broker, o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("6802.00")


async def test_partial_fill_against_displayed_size(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25", 10, 10)
    o = await broker.place(req(quantity=20, order_type=OrderType.LIMIT, limit_price="6799.00"))
    drain(broker)
    await mkt(broker, "MES1!", "6798.75", "6799.00", 10, 5)
    part = await order(broker, o.order_id)
    assert part.status is OrderStatus.PARTIALLY_FILLED and part.filled_quantity == 5
    assert [e.status for e in drain(broker) if isinstance(e, Order)] == [OrderStatus.PARTIALLY_FILLED]
    [pos] = await broker.positions(FUT)
    assert pos.quantity == 5


async def test_ioc_and_fok(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25", 10, 3)
    ioc = await broker.place(req(quantity=5, order_type=OrderType.LIMIT, limit_price="6800.25", tif=TimeInForce.IOC))
    assert ioc.status is OrderStatus.CANCELLED and ioc.filled_quantity == 3
    await mkt(broker, "MES1!", "6800.00", "6800.25", 10, 3)
    fok = await broker.place(req(quantity=5, order_type=OrderType.LIMIT, limit_price="6800.25", tif=TimeInForce.FOK))
    assert fok.status is OrderStatus.CANCELLED and fok.filled_quantity == 0
    [pos] = await broker.positions(FUT)
    assert pos.quantity == 3


async def test_day_orders_expire_at_the_end_of_the_trade_date() -> None:
    clock = FakeClock()
    b = make(clock)
    await b.connect()
    await mkt(b, "MES1!", "6800.00", "6800.25")
    await b.place(req())  # a fill today
    day = await b.place(req(order_type=OrderType.LIMIT, limit_price="6790.00"))
    gtc = await b.place(req(order_type=OrderType.LIMIT, limit_price="6790.00", tif=TimeInForce.GTC))
    before = await snap(b, FUT)
    drain(b)
    clock.next_day()
    await mkt(b, "MES1!", "6800.00", "6800.25")
    evs = drain(b)
    expired = [e for e in evs if isinstance(e, Order) and e.status is OrderStatus.EXPIRED]
    assert [e.order_id for e in expired] == [day.order_id]
    assert "expired" in expired[0].reject_reason
    assert [o.order_id for o in await b.orders() if o.is_open] == [gtc.order_id]
    assert await b.fills() == []  # today's fills only
    after = await snap(b, FUT)
    assert after.start_of_day_balance == before.balance and after.fees_today == 0 and after.day_realized_pnl == 0
    assert b.trade_date == clock.day
    await b.close()


# --------------------------------------------------------------------------- brackets


async def test_bracket_take_profit_hit_cancels_the_stop(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    entry = await broker.place(req(quantity=2, bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=8)))
    kids = {o.role: o for o in await broker.orders() if o.parent_id == entry.order_id}
    assert kids[OrderRole.TAKE_PROFIT].limit_price == D("6802.25")
    assert kids[OrderRole.STOP_LOSS].stop_price == D("6798.25")
    await mkt(broker, "MES1!", "6802.25", "6802.50")
    tp = await order(broker, kids[OrderRole.TAKE_PROFIT].order_id)
    sl = await order(broker, kids[OrderRole.STOP_LOSS].order_id)
    assert tp.status is OrderStatus.FILLED and sl.status is OrderStatus.CANCELLED
    assert await broker.positions(FUT) == []
    s = await snap(broker, FUT)
    assert s.balance == D(50000) + D(2) * 2 * 5 - D("0.62") * 4


async def test_bracket_by_price_stop_hit_cancels_the_target(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    entry = await broker.place(
        req(side=Side.SELL, bracket=Bracket(take_profit_price=D("6790.00"), stop_loss_price=D("6805.00")))
    )
    kids = {o.role: o for o in await broker.orders() if o.parent_id == entry.order_id}
    await mkt(broker, "MES1!", "6804.75", "6805.00")
    assert (await order(broker, kids[OrderRole.STOP_LOSS].order_id)).status is OrderStatus.FILLED
    assert (await order(broker, kids[OrderRole.TAKE_PROFIT].order_id)).status is OrderStatus.CANCELLED
    s = await snap(broker, FUT)
    assert s.day_realized_pnl == (D("6800.00") - D("6805.00")) * 5 - D("1.24")


async def test_a_bracket_child_never_opens_a_reverse_position(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    entry = await broker.place(req(bracket=Bracket(take_profit_ticks=4)))
    await broker.place(req(side=Side.SELL))  # closed by hand; the target is still working
    await mkt(broker, "MES1!", "6801.25", "6801.50")
    tp = next(o for o in await broker.orders() if o.parent_id == entry.order_id)
    assert tp.status is OrderStatus.CANCELLED and "reduce-only" in tp.reject_reason
    assert await broker.positions(FUT) == []


async def test_flatten_cancels_everything_and_closes_positions(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    await broker.place(req(quantity=3, bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=8)))
    await broker.place(req(order_type=OrderType.LIMIT, limit_price="6790.00"))
    await mkt(broker, "ES1!", "6800.00", "6800.25")
    await broker.place(req(symbol="ES1!", side=Side.SELL))
    await broker.flatten(FUT)
    assert [o for o in await broker.orders(FUT) if o.is_open] == []
    assert await broker.positions(FUT) == []


# --------------------------------------------------------------------------- rejects


BAD = [
    (req(symbol="NOPE1!"), "unknown symbol"),
    (req(account="paper:NOPE"), "unknown account"),
    (req(quantity=0), "positive whole number"),
    (req(quantity=-2), "positive whole number"),
    (req(order_type=OrderType.LIMIT), "needs a limit price"),
    (req(order_type=OrderType.STOP), "needs a stop price"),
    (req(order_type=OrderType.STOP_LIMIT, stop_price="6805.00"), "needs a limit price"),
    (req(order_type=OrderType.LIMIT, limit_price="6799.10"), "off the tick grid"),
    (req(order_type=OrderType.STOP, stop_price="6805.10"), "off the tick grid"),
    (req(order_type=OrderType.STOP, stop_price="6800.25"), "must be above the market"),
    (req(order_type=OrderType.STOP, stop_price="6790.00"), "must be above the market"),
    (req(side=Side.SELL, order_type=OrderType.STOP, stop_price="6800.00"), "must be below the market"),
    (req(side=Side.SELL, order_type=OrderType.STOP, stop_price="6810.00"), "must be below the market"),
    (req(symbol="NQ1!"), "no market in NQZ5"),
    (req(limit_price="6800.00"), "takes no limit price"),
    (req(symbol="AAPL"), "futures account"),
    (req(account=CASH), "cash account"),
    (req(legs=(OrderLeg("MESZ5", Side.BUY),)), "multi-leg"),
    (req(symbol="MESU5"), "MESU5 expired on 2025-09-19"),
    (req(side=Side.SELL, reduce_only=True), "reduce-only"),
    (
        req(order_type=OrderType.LIMIT, limit_price="6790.00", bracket=Bracket(take_profit_price=D("6785.00"))),
        "take-profit 6785.00 must be above the entry limit 6790.00",
    ),
    (req(bracket=Bracket(stop_loss_price=D("6801.00"))), "stop-loss 6801.00 must be below the market"),
    (req(bracket=Bracket(stop_loss_price=D("6790.10"))), "off the tick grid"),
]


@pytest.mark.parametrize(("request_", "needle"), BAD, ids=[n for _, n in BAD])
async def test_every_reject_has_a_specific_reason_and_changes_nothing(
    broker: PaperBroker, request_: OrderRequest, needle: str
) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    drain(broker)
    o = await broker.place(request_)
    assert o.status is OrderStatus.REJECTED
    assert needle in o.reject_reason
    evs = drain(broker)
    assert [e.status for e in evs if isinstance(e, Order)] == [OrderStatus.PENDING, OrderStatus.REJECTED]
    assert not [e for e in evs if isinstance(e, Fill | Position)]
    assert await broker.positions() == [] and await broker.fills() == []
    assert (await snap(broker, FUT)).balance == D(50000)
    assert await broker.find_order(request_.account, request_.client_order_id) == o


async def test_a_limit_far_from_the_market_is_not_a_broker_reject(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(order_type=OrderType.LIMIT, limit_price="1000.00"))
    assert o.status is OrderStatus.WORKING


async def test_stop_without_a_market_is_accepted_and_waits(broker: PaperBroker) -> None:
    o = await broker.place(req(symbol="NQ1!", order_type=OrderType.STOP, stop_price="25100.00"))
    assert o.status is OrderStatus.WORKING
    await mkt(broker, "NQ1!", "25100.00", "25100.25")
    assert (await order(broker, o.order_id)).status is OrderStatus.FILLED


async def test_duplicate_client_order_id_returns_the_existing_order(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    first = await broker.place(req(client_order_id="abc123", order_type=OrderType.LIMIT, limit_price="6790.00"))
    drain(broker)
    again = await broker.place(req(client_order_id="abc123", quantity=5))
    assert again.order_id == first.order_id and again.quantity == 1
    assert drain(broker) == []
    assert len(await broker.orders()) == 1
    assert (await broker.find_order(FUT, "abc123")) == first
    assert await broker.find_order(CASH, "abc123") is None
    assert await broker.find_order(FUT, "nope") is None


# --------------------------------------------------------------------------- cancel and modify


async def test_cancel_and_modify(broker: PaperBroker) -> None:
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    o = await broker.place(req(order_type=OrderType.LIMIT, limit_price="6790.00"))
    drain(broker)
    m = await broker.modify(FUT, o.order_id, quantity=3, limit_price=D("6791.00"))
    assert (m.quantity, m.limit_price, m.status) == (3, D("6791.00"), OrderStatus.WORKING)
    assert [e for e in drain(broker) if isinstance(e, Order)] == [m]
    with pytest.raises(ModifyRejected, match="off the tick grid"):
        await broker.modify(FUT, o.order_id, limit_price=D("6791.01"))
    assert await order(broker, o.order_id) == m
    filled = await broker.modify(FUT, o.order_id, limit_price=D("6801.00"))
    assert filled.status is OrderStatus.FILLED and filled.avg_fill_price == D("6800.25")
    with pytest.raises(UnknownOrder, match="filled; it can no longer be modified"):
        await broker.modify(FUT, o.order_id, quantity=4)
    with pytest.raises(UnknownOrder, match="filled; it can no longer be cancelled"):
        await broker.cancel(FUT, o.order_id)
    with pytest.raises(UnknownOrder, match="no order"):
        await broker.cancel(FUT, "PO999999")
    other = await broker.place(req(order_type=OrderType.LIMIT, limit_price="6790.00"))
    with pytest.raises(UnknownOrder):
        await broker.cancel(CASH, other.order_id)
    c = await broker.cancel(FUT, other.order_id)
    assert c.status is OrderStatus.CANCELLED


# --------------------------------------------------------------------------- cash accounts


async def test_cash_account_cannot_short_or_overspend(broker: PaperBroker) -> None:
    await mkt(broker, "AAPL", "269.99", "270.00")
    buy = await broker.place(req(account=CASH, symbol="AAPL", quantity=100))
    assert buy.status is OrderStatus.FILLED
    s = await snap(broker, CASH)
    assert s.balance == D(100000) and s.buying_power == D(73000)  # equities: no fee by default
    big = await broker.place(req(account=CASH, symbol="AAPL", quantity=300))
    assert big.status is OrderStatus.REJECTED and "not enough cash" in big.reject_reason
    short = await broker.place(req(account=CASH, symbol="AAPL", side=Side.SELL, quantity=150))
    assert short.status is OrderStatus.REJECTED and "cannot sell short" in short.reject_reason
    # A working buy reserves its cash.
    rest = await broker.place(
        req(account=CASH, symbol="AAPL", quantity=260, order_type=OrderType.LIMIT, limit_price="260.00")
    )
    assert rest.status is OrderStatus.WORKING
    more = await broker.place(
        req(account=CASH, symbol="AAPL", quantity=30, order_type=OrderType.LIMIT, limit_price="260.00")
    )
    assert more.status is OrderStatus.REJECTED and "not enough cash" in more.reject_reason
    with pytest.raises(ModifyRejected, match="not enough cash"):
        await broker.modify(CASH, rest.order_id, quantity=300)
    # Shares offered in a working sell are not available to a second sell.
    offer = await broker.place(
        req(account=CASH, symbol="AAPL", side=Side.SELL, quantity=60, order_type=OrderType.LIMIT, limit_price="280.00")
    )
    assert offer.status is OrderStatus.WORKING
    second = await broker.place(req(account=CASH, symbol="AAPL", side=Side.SELL, quantity=50))
    assert second.status is OrderStatus.REJECTED and "60 already offered" in second.reject_reason
    sell = await broker.place(req(account=CASH, symbol="AAPL", side=Side.SELL, quantity=40))
    assert sell.status is OrderStatus.FILLED and sell.avg_fill_price == D("269.99")
    [pos] = await broker.positions(CASH)
    assert pos.quantity == 60


async def test_cash_account_trades_options_at_the_multiplier(broker: PaperBroker) -> None:
    sym = "AAPL  261218C00250000"
    await mkt(broker, sym, "24.90", "25.00")
    o = await broker.place(req(account=CASH, symbol=sym, quantity=2))
    assert o.status is OrderStatus.FILLED
    s = await snap(broker, CASH)
    assert s.buying_power == D(100000) - D("25.00") * 100 * 2


# --------------------------------------------------------------------------- quotes


async def test_quotes_only_for_subscribed_symbols_but_matching_for_all(broker: PaperBroker) -> None:
    await broker.subscribe_quotes(["MES1!"])
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    await mkt(broker, "AAPL", "269.99", "270.00")
    quotes = [e for e in drain(broker) if isinstance(e, Quote)]
    assert [q.symbol for q in quotes] == [MES]
    o = await broker.place(
        req(account=CASH, symbol="AAPL", quantity=10, order_type=OrderType.LIMIT, limit_price="269.00")
    )
    await mkt(broker, "AAPL", "268.50", "268.90")
    assert (await order(broker, o.order_id)).status is OrderStatus.FILLED
    assert not [e for e in drain(broker) if isinstance(e, Quote)]
    await broker.unsubscribe_quotes(["MES1!"])
    await mkt(broker, "MES1!", "6800.00", "6800.25")
    assert not [e for e in drain(broker) if isinstance(e, Quote)]
    with pytest.raises(BrokerError, match="unknown symbol"):
        await broker.subscribe_quotes(["NOPE1!"])


async def test_push_quote_refuses_bad_quotes(broker: PaperBroker) -> None:
    with pytest.raises(ValueError, match="off the tick grid"):
        await mkt(broker, "MES1!", "6800.10", "6800.25")
    with pytest.raises(ValueError, match="above ask"):
        await mkt(broker, "MES1!", "6800.50", "6800.25")
    with pytest.raises(ValueError, match="unknown symbol"):
        await mkt(broker, "NOPE1!", "1", "2")
    assert broker.quote("MES1!") is None


async def test_step_is_deterministic_under_a_seed() -> None:
    runs = []
    for _ in range(2):
        b = make(seed=99)
        await b.connect()
        await b.subscribe_quotes(["MES1!", "AAPL"])
        seq = []
        for _ in range(30):
            seq.extend((q.symbol, q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.volume) for q in await b.step())
        runs.append(seq)
        await b.close()
    assert runs[0] == runs[1] and len(runs[0]) > 30
    other = make(seed=100)
    await other.connect()
    first = [(q.symbol, q.bid) for q in await other.step()]
    assert first != [(s, bid) for s, bid, *_ in runs[0][: len(first)]]
    await other.close()


async def test_free_running_market_quotes_on_its_own() -> None:
    b = make(scripted=False, quote_hz=50)
    await b.connect()
    await b.subscribe_quotes(["MES1!"])
    seen: list[Quote] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for ev in b.events():
            if isinstance(ev, Quote):
                seen.append(ev)
                if len(seen) >= 5:
                    done.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(done.wait(), 5)
    assert {q.symbol for q in seen} == {MES}
    o = await b.place(req())  # the free-running market always has a quote
    assert o.status is OrderStatus.FILLED
    await b.close()
    await asyncio.wait_for(task, 5)
    assert b.connection_state is ConnectionState.DOWN


# --------------------------------------------------------------------------- replay


async def test_replay_of_the_example_bars_drives_matching() -> None:
    path = EXAMPLES / "mes_1m_bars.csv"
    rows = [r.split(",") for r in path.read_text().splitlines() if r and not r.startswith(("#", "ts"))]
    low = min(D(r[4]) for r in rows[10:])
    b = make(replay=path)
    await b.connect()
    await b.subscribe_quotes(["MES1!"])
    o = await b.place(req(order_type=OrderType.LIMIT, limit_price=str(low), tif=TimeInForce.GTC))
    assert o.status is OrderStatus.WORKING
    quotes = 0
    while True:
        stepped = await b.step()
        if not stepped:
            break
        quotes += len(stepped)
    assert quotes == 4 * len(rows)
    done = await order(b, o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == low
    evs = drain(b)
    assert any(isinstance(e, Notice) and "finished" in e.text for e in evs)
    assert sum(isinstance(e, Quote) for e in evs) == quotes
    await b.close()


async def test_replay_of_the_example_ticks() -> None:
    b = make(replay=EXAMPLES / "es_aapl_ticks.csv")
    await b.connect()
    for _ in range(4):
        await b.step()
    assert b.quote("ES1!") is not None and b.quote("AAPL") is not None
    o = await b.place(req(symbol="ES1!"))
    assert o.status is OrderStatus.FILLED
    await b.close()


# --------------------------------------------------------------------------- persistence


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = make(clock, store_path=store)
    await b.connect()
    await mkt(b, "MES1!", "6800.00", "6800.25")
    await b.place(req(quantity=2, bracket=Bracket(take_profit_ticks=20, stop_loss_ticks=8)))
    limit = await b.place(req(quantity=1, order_type=OrderType.LIMIT, limit_price="6799.00", tif=TimeInForce.GTC))
    await b.place(req(legs=(OrderLeg("MESZ5", Side.BUY), OrderLeg("MESH6", Side.SELL, 2))))
    orders_before = await b.orders()
    positions_before = await b.positions()
    snaps_before = await b.snapshots()
    fills_before = await b.fills()
    await b.close()

    again = make(clock, store_path=store)
    assert await again.orders() == orders_before
    assert [replace(p, ts=positions_before[0].ts) for p in await again.positions()] == positions_before
    assert [(s.balance, s.equity, s.fees_today) for s in await again.snapshots()] == [
        (s.balance, s.equity, s.fees_today) for s in snaps_before
    ]
    assert await again.fills() == fills_before
    await again.connect()
    # The resting limit still fills, and the bracket still behaves as OCO.
    await mkt(again, "MES1!", "6798.75", "6799.00")
    assert (await order(again, limit.order_id)).status is OrderStatus.FILLED
    [pos] = await again.positions(FUT)
    assert pos.quantity == 3
    await mkt(again, "MES1!", "6798.00", "6798.25")  # 8 ticks under the entry: the stop fires for 2
    kids = [o for o in await again.orders() if o.role is not OrderRole.ENTRY]
    assert {o.role: o.status for o in kids} == {
        OrderRole.STOP_LOSS: OrderStatus.FILLED,
        OrderRole.TAKE_PROFIT: OrderStatus.CANCELLED,
    }
    [pos] = await again.positions(FUT)
    assert pos.quantity == 1
    new = await again.place(req(quantity=1))
    assert new.order_id not in {o.order_id for o in orders_before}
    await again.close()


async def test_restart_on_a_new_day_expires_day_orders_and_keeps_positions(tmp_path: Path) -> None:
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = make(clock, store_path=store)
    await b.connect()
    await mkt(b, "MES1!", "6800.00", "6800.25")
    await b.place(req())
    day = await b.place(req(order_type=OrderType.LIMIT, limit_price="6790.00"))
    await b.close()
    clock.next_day()
    again = make(clock, store_path=store)
    await again.connect()
    assert (await again.positions(FUT))[0].quantity == 1
    assert [o.order_id for o in await again.orders()] == []
    assert (await again.fills()) == []
    assert day.order_id not in {o.order_id for o in await again.orders()}
    await again.close()
    third = make(clock, store_path=store)
    assert (await third.positions(FUT))[0].quantity == 1 and await third.orders() == []


# --------------------------------------------------------------------------- laws


moves = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 5), st.integers(-12, 12)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves, st.sampled_from(["MES1!", "ES1!", "CL1!"]))
def test_position_is_the_sum_of_fills_and_balance_is_start_minus_fees_plus_pnl(script: list, symbol: str) -> None:
    async def run() -> None:
        b = make()
        await b.connect()
        inst = b._instruments.resolve(symbol)
        tick = inst.tick_size
        base = {"MES1!": 27200, "ES1!": 27200, "CL1!": 6000}[symbol]
        price = base
        for side, qty, move in script:
            price += move
            await b.push_quote(Quote(symbol, bid=price * tick, ask=(price + 1) * tick, last=price * tick))
            await b.place(req(symbol=symbol, side=side, quantity=qty))
            fills = await b.fills(FUT)
            net = sum(f.signed_quantity for f in fills)
            positions = await b.positions(FUT)
            assert (positions[0].quantity if positions else 0) == net
            fees = sum((f.fee for f in fills), D(0))
            cash_flow = sum((-f.signed_quantity * f.price for f in fills), D(0))
            mark = b.quote(symbol).mark  # type: ignore[union-attr]
            s = await snap(b, FUT)
            expected_equity = D(50000) - fees + inst.point_value * (cash_flow + net * mark)
            assert s.equity == expected_equity
            assert s.fees_today == fees
        await b.flatten(FUT)
        fills = await b.fills(FUT)
        assert sum(f.signed_quantity for f in fills) == 0
        fees = sum((f.fee for f in fills), D(0))
        realized = inst.point_value * sum((-f.signed_quantity * f.price for f in fills), D(0))
        s = await snap(b, FUT)
        assert s.balance == D(50000) - fees + realized == s.equity
        assert s.day_realized_pnl == realized - fees
        await b.close()

    asyncio.run(run())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 400), st.integers(-500, 500)), max_size=25
    )
)
def test_a_cash_account_never_goes_short_or_overdrawn(script: list) -> None:
    async def run() -> None:
        b = make()
        await b.connect()
        price = 27000
        for side, qty, move in script:
            price = max(1000, price + move)
            await b.push_quote(Quote("AAPL", bid=D(price) / 100, ask=D(price + 2) / 100, bid_size=300, ask_size=300))
            await b.place(req(account=CASH, symbol="AAPL", side=side, quantity=qty))
            await b.place(
                req(
                    account=CASH,
                    symbol="AAPL",
                    side=side,
                    quantity=qty,
                    order_type=OrderType.LIMIT,
                    limit_price=D(price + (5 if side is Side.BUY else -3)) / 100,
                )
            )
            positions = await b.positions(CASH)
            assert all(p.quantity > 0 for p in positions)
            s = await snap(b, CASH)
            assert s.buying_power is not None and s.buying_power >= 0
        await b.close()

    asyncio.run(run())


async def test_ids_continue_after_a_crash_before_the_counter_was_saved(tmp_path: Path) -> None:
    """The id counter is saved with the market, not with every order; a process that dies in
    between still never hands out an id twice: the next run continues after the highest id in
    the file (orders, fills, bracket groups)."""
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = make(clock, store_path=store)
    await b.connect()
    await mkt(b, "MES1!", "6800.00", "6800.25")
    await b.close()  # the counter is saved here
    crashed = make(clock, store_path=store)
    await crashed.connect()
    seen: set[str] = set()
    for _ in range(3):
        o = await crashed.place(req(quantity=1, bracket=Bracket(take_profit_ticks=20, stop_loss_ticks=8)))
        seen.add(o.order_id)
    seen |= {o.order_id for o in await crashed.orders()} | {f.fill_id for f in await crashed.fills()}
    seen |= {o.oco_group for o in await crashed.orders() if o.oco_group}
    # No close(): as after a SIGKILL, the last save of the counter is from before these orders.
    again = make(clock, store_path=store)
    await again.connect()
    await mkt(again, "MES1!", "6801.00", "6801.25")
    new = await again.place(req(quantity=1, bracket=Bracket(take_profit_ticks=20, stop_loss_ticks=8)))
    fresh = {new.order_id} | {f.fill_id for f in await again.fills() if f.order_id == new.order_id}
    fresh |= {o.oco_group for o in await again.orders() if o.parent_id == new.order_id and o.oco_group}
    assert fresh and not fresh & seen
    await again.close()
