"""The engine on the real paper broker: routing, validation, idempotency, journal, lock, flatten."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tterm.brokers.paper.broker import PaperBroker
from tterm.brokers.paper.ledger import PaperAccountSpec
from tterm.core.broker import BrokerError
from tterm.core.client import EngineClient, EngineError
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import AccountOptions, Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import (
    AccountKind,
    Bracket,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Order,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
)

D = Decimal
FUT = "paper:FUT50K"
CASH = "paper:CASH"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 09:00 CT, market open


class Harness:
    def __init__(self, tmp: Path, *, broker_cls: type[PaperBroker] = PaperBroker, **engine_kw) -> None:
        self.clock = CmeClock(default_calendar(), now=lambda: NOW)
        self.master = InstrumentMaster(calendar=self.clock.calendar, today=lambda: date(2026, 11, 24))
        self.broker = broker_cls(
            "paper",
            accounts=[
                PaperAccountSpec(id="FUT50K", name="Paper 50K", kind=AccountKind.FUTURES, balance=D(50000)),
                PaperAccountSpec(id="CASH", name="Paper Cash", kind=AccountKind.CASH, balance=D(100000)),
            ],
            instruments=self.master,
            clock=self.clock,
            seed=7,
            store_path=tmp / "paper.sqlite3",
            scripted=True,
        )
        self.journal = Journal(tmp / "journal.sqlite3")
        self.engine = Engine(
            brokers=[self.broker], instruments=self.master, journal=self.journal, clock=self.clock, **engine_kw
        )

    async def quote(self, symbol: str, bid: str, ask: str, size: int = 50) -> None:
        await self.engine.watch([symbol])
        await self.broker.push_quote(
            Quote(symbol=symbol, bid=D(bid), ask=D(ask), last=D(bid), bid_size=size, ask_size=size)
        )
        await self.engine.settle()


@pytest.fixture
async def h(tmp_path):
    harness = Harness(tmp_path)
    await harness.engine.start()
    await harness.quote("MES1!", "6800.00", "6800.25")
    yield harness
    await harness.engine.stop()


def req(**kw) -> OrderRequest:
    base = dict(account=FUT, symbol="MES", side=Side.BUY, quantity=1, source=OrderSource.PALETTE)
    base.update(kw)
    return OrderRequest(**base)


def test_engine_satisfies_the_client_seam(h):
    assert isinstance(h.engine, EngineClient)


async def test_start_loads_accounts_and_publishes_connection(tmp_path):
    harness = Harness(tmp_path)
    sub = harness.engine.events()
    await harness.engine.start()
    await harness.engine.settle()
    snap = await harness.engine.snapshot()
    assert {a.id for a in snap.accounts} == {FUT, CASH}
    assert not snap.is_live
    states = [e for e in sub.drain() if isinstance(e, ConnectionStatus)]
    assert states and states[-1].state is ConnectionState.CONNECTED
    await harness.engine.stop()


async def test_market_order_fills_and_position_follows_fill_on_the_bus(h):
    sub = h.engine.events()
    order = await h.engine.place(req(symbol="MES1!", quantity=2))
    await h.engine.settle()
    assert order.symbol == "MESZ6"  # continuous symbol resolved before routing
    events = sub.drain()
    kinds = [type(e) for e in events if isinstance(e, Order | Fill | Position)]
    fill_at = kinds.index(Fill)
    assert kinds[fill_at + 1] is Position  # the position a fill produced comes right behind it
    pos = h.engine.position(FUT, "MESZ6")
    assert pos.quantity == 2 and pos.avg_price == D("6800.25")
    fee = h.master.resolve("MESZ6").fee_per_side * 2
    assert pos.fees == fee and pos.realized_pnl == -fee


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(quantity=0), "quantity must be at least 1"),
        (dict(quantity=-3), "quantity must be at least 1"),
        (dict(order_type=OrderType.LIMIT, limit_price=D("6790.10")), "off the tick grid"),
        (dict(symbol="ZZTOP1!"), "unknown symbol"),
        (dict(account="paper:NOPE"), "unknown account 'paper:NOPE'"),
        (dict(order_type=OrderType.STOP, stop_price=D("6790.00")), "buy stop 6790.00 is at or below the market"),
        (dict(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6810.00")), "sell stop 6810.00 is at or above"),
        (dict(order_type=OrderType.LIMIT), "needs a limit price"),
        (dict(limit_price=D("6800")), "market order takes no limit price"),
        (
            dict(order_type=OrderType.LIMIT, limit_price=D("6790"), bracket=Bracket(take_profit_price=D("6780"))),
            "take-profit 6780.00 is on the wrong side of the entry (6790.00)",
        ),
        (dict(reduce_only=True), "would not reduce the position"),
    ],
)
async def test_malformed_requests_are_rejected_with_a_reason_journaled_and_never_sent(h, kw, reason):
    before = len(await h.broker.orders())
    request = req(**kw)
    order = await h.engine.place(request)
    assert order.status is OrderStatus.REJECTED
    assert reason in order.reject_reason, order.reject_reason
    assert len(await h.broker.orders()) == before
    journal = h.journal.entries(ref=request.client_order_id)
    assert [e.kind for e in journal][:2] == ["order_request", "risk_decision"]
    assert reason in journal[1].data["reasons"][0]


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(account=CASH, symbol="AAPL", side=Side.SELL, quantity=10), "short"),
        (dict(account=CASH, symbol="MES"), "not futures"),
    ],
)
async def test_broker_rejects_reach_the_journal_with_the_brokers_reason(h, kw, reason):
    await h.quote("AAPL", "270.00", "270.02")
    before = len(await h.broker.orders())
    request = req(**kw)
    # Account rules are the broker's: its preflight refuses the preview and the send alike, with its reason.
    assert reason in (await h.engine.preview(request)).reason
    order = await h.engine.place(request)
    assert order.status is OrderStatus.REJECTED
    assert reason in order.reject_reason
    assert len(await h.broker.orders()) == before  # refused before it went out
    (decision,) = h.journal.entries(kind="risk_decision", ref=order.client_order_id)
    assert reason in decision.data["reasons"][0]


async def test_machine_prices_are_rounded_people_prices_rejected(h):
    typed = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790.10")))
    assert typed.status is OrderStatus.REJECTED
    hook = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790.10"), source=OrderSource.WEBHOOK))
    assert hook.status is OrderStatus.WORKING
    assert hook.limit_price == D("6790.00")


async def test_same_client_order_id_never_makes_a_second_order(h):
    request = req(order_type=OrderType.LIMIT, limit_price=D("6790"))
    results = await asyncio.gather(*(h.engine.place(request) for _ in range(20)))
    assert len({o.order_id for o in results}) == 1
    again = await h.engine.place(request)
    assert again.order_id == results[0].order_id
    assert len([o for o in await h.broker.orders() if o.client_order_id == request.client_order_id]) == 1


class LostAckBroker(PaperBroker):
    """Places the order, then loses the answer: the kind of failure that makes duplicates."""

    lose_next = 0
    fail_before_next = 0
    places = 0

    async def place(self, request: OrderRequest) -> Order:
        self.places += 1
        if self.fail_before_next:
            self.fail_before_next -= 1
            raise BrokerError("connection reset before the request was sent")
        order = await super().place(request)
        if self.lose_next:
            self.lose_next -= 1
            raise BrokerError("connection reset while reading the acknowledgement")
        return order


async def test_lost_acknowledgement_is_looked_up_not_resent(tmp_path):
    harness = Harness(tmp_path, broker_cls=LostAckBroker)
    await harness.engine.start()
    await harness.quote("MES1!", "6800.00", "6800.25")
    harness.broker.lose_next = 1
    request = req(order_type=OrderType.LIMIT, limit_price=D("6790"))
    order = await harness.engine.place(request)
    assert order.status is OrderStatus.WORKING
    assert harness.broker.places == 1  # found by client order id; never sent a second time
    assert len(await harness.broker.orders()) == 1
    errors = harness.journal.entries(kind="error", ref=request.client_order_id)
    assert errors and "send failed" in errors[0].data["error"]
    # A failure before anything was sent: the lookup finds nothing, one retry goes out.
    harness.broker.fail_before_next = 1
    second = await harness.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6789")))
    assert second.status is OrderStatus.WORKING and harness.broker.places == 3
    assert len(await harness.broker.orders()) == 2
    await harness.engine.stop()


async def test_full_round_trip_is_journaled(h):
    request = req(
        order_type=OrderType.LIMIT, limit_price=D("6795"), bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4)
    )
    order = await h.engine.place(request)
    assert order.status is OrderStatus.WORKING
    await h.quote("MES1!", "6794.75", "6795.00")  # entry fills at 6795; TP 6797, SL 6794
    await h.quote("MES1!", "6797.00", "6797.25")  # take-profit fills, stop-loss cancelled
    await h.engine.settle()
    orders = {o.role: o for o in (await h.engine.snapshot()).orders if o.account == FUT}
    assert orders[OrderRole.TAKE_PROFIT].status is OrderStatus.FILLED
    assert orders[OrderRole.STOP_LOSS].status is OrderStatus.CANCELLED
    pos = h.engine.position(FUT, "MESZ6")
    fee = h.master.resolve("MESZ6").fee_per_side
    assert pos.quantity == 0 and pos.realized_pnl == D("10") - 2 * fee  # 8 ticks * $1.25
    kinds = [e.kind for e in h.journal.entries(account=FUT)]
    for kind in ("order_request", "risk_decision", "order_ack", "order_update", "fill"):
        assert kind in kinds
    assert kinds.index("order_request") < kinds.index("order_ack") < kinds.index("fill")
    assert len([k for k in kinds if k == "fill"]) == 2


async def test_modify_and_cancel(h):
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790"), quantity=2))
    modified = await h.engine.modify(FUT, order.order_id, quantity=3, limit_price=D("6791.25"))
    assert modified.quantity == 3 and modified.limit_price == D("6791.25")
    with pytest.raises(EngineError, match="off the tick grid"):
        await h.engine.modify(FUT, order.order_id, limit_price=D("6791.1"))
    with pytest.raises(EngineError, match="no stop price"):
        await h.engine.modify(FUT, order.order_id, stop_price=D("6791"))
    cancelled = await h.engine.cancel(FUT, order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(EngineError, match="already cancelled"):
        await h.engine.cancel(FUT, order.order_id)
    with pytest.raises(EngineError, match="no order nope"):
        await h.engine.cancel(FUT, "nope")
    assert h.journal.entries(kind="cancel_request") and h.journal.entries(kind="modify_request")


async def test_lock_blocks_new_risk_allows_exits_and_survives_restart(tmp_path):
    harness = Harness(tmp_path)
    await harness.engine.start()
    await harness.quote("MES1!", "6800.00", "6800.25")
    await harness.engine.place(req(quantity=2))
    await harness.engine.settle()
    locks = await harness.engine.lock(FUT, "done for today")
    assert locks[0].until == harness.clock.next_open(NOW)
    blocked = await harness.engine.place(req())
    assert blocked.status is OrderStatus.REJECTED and "is locked" in blocked.reject_reason
    exit_ = await harness.engine.place(req(side=Side.SELL, quantity=1, reduce_only=True))
    assert exit_.status is OrderStatus.FILLED
    await harness.engine.stop()

    again = Harness(tmp_path)  # same data dir: journal state and paper store persist
    await again.engine.start()
    await again.quote("MES1!", "6800.00", "6800.25")
    still = await again.engine.place(req())
    assert still.status is OrderStatus.REJECTED and "is locked" in still.reject_reason
    assert again.engine.position(FUT, "MESZ6").quantity == 1
    await again.engine.stop()


async def test_kill_switch_cancels_and_flattens_every_account(h):
    await h.quote("AAPL", "270.00", "270.02")
    await h.engine.place(req(quantity=3))
    await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6700")))
    await h.engine.place(req(account=CASH, symbol="AAPL", quantity=10))
    await h.engine.place(req(account=CASH, symbol="AAPL", quantity=5, order_type=OrderType.LIMIT, limit_price=D("250")))
    await h.engine.settle()
    assert h.engine.open_orders()
    await h.engine.flatten()  # account None: everything
    await h.engine.settle()
    assert h.engine.open_orders() == []
    assert h.engine.book.open_positions() == []
    assert [p for p in await h.broker.positions() if p.quantity] == []
    entry = h.journal.entries(kind="flatten")[-1]
    assert entry.data["scope"] == "ALL" and len(entry.data["positions"]) == 2


async def test_max_order_qty_from_account_options(tmp_path):
    harness = Harness(tmp_path, account_options={FUT: AccountOptions(max_order_qty=5)})
    await harness.engine.start()
    await harness.quote("MES1!", "6800.00", "6800.25")
    order = await harness.engine.place(req(quantity=6))
    assert order.status is OrderStatus.REJECTED and "maximum order size of 5" in order.reject_reason
    await harness.engine.stop()


async def test_restart_replays_todays_fills_into_the_book(tmp_path):
    harness = Harness(tmp_path)
    await harness.engine.start()
    await harness.quote("MES1!", "6800.00", "6800.25")
    await harness.engine.place(req(quantity=2))
    await harness.engine.place(req(side=Side.SELL, quantity=1))
    await harness.engine.settle()
    before = harness.engine.position(FUT, "MESZ6")
    await harness.engine.stop()
    again = Harness(tmp_path)
    await again.engine.start()
    after = again.engine.position(FUT, "MESZ6")
    assert (after.quantity, after.avg_price, after.realized_pnl, after.fees) == (
        before.quantity,
        before.avg_price,
        before.realized_pnl,
        before.fees,
    )
    await again.engine.stop()


async def test_reconcile_adopts_a_persistent_broker_disagreement(h):
    h.engine._reconcile_after = 0.0
    await h.engine.place(req(quantity=1))
    await h.engine.settle()
    h.engine.book.seed(FUT, "MESZ6", 4, D("6800"))  # the book drifts from the broker
    sub = h.engine.events()
    h.engine.reconcile()
    assert h.engine.position(FUT, "MESZ6").quantity == 1
    notices = [e.text for e in sub.drain() if hasattr(e, "text")]
    assert any("position mismatch" in t for t in notices)


async def test_subscribe_resolves_and_counts_references(h):
    resolved = await h.engine.subscribe(["MES1!", "AAPL"])
    assert resolved == ["MESZ6", "AAPL"]
    await h.engine.subscribe(["MESZ6"])
    await h.engine.unsubscribe(["MES1!"])
    # MESZ6 is also engine-watched (the fixture traded on it), AAPL only by this client.
    assert h.engine.subscriptions() == {"MESZ6": 2, "AAPL": 1}
    await h.engine.unsubscribe(["AAPL"])
    assert "AAPL" not in h.engine.subscriptions()


async def test_order_states_never_go_backwards(h):
    """A command's result (final) followed by the stream's older updates keeps the final state."""
    sub = h.engine.events()
    order = await h.engine.place(req(quantity=1))
    final = order.evolve(status=OrderStatus.FILLED, filled_quantity=1)
    h.engine.ingest(final)
    h.engine.ingest(order.evolve(status=OrderStatus.WORKING))  # late, older
    h.engine.ingest(order.evolve(status=OrderStatus.PENDING))  # late, older
    await h.engine.settle()
    held = {o.order_id: o for o in (await h.engine.snapshot()).orders}[order.order_id]
    assert held.status is OrderStatus.FILLED
    statuses = [e.status for e in sub.drain() if isinstance(e, Order) and e.order_id == order.order_id]
    assert statuses[-1] is OrderStatus.FILLED
    assert OrderStatus.PENDING not in statuses[statuses.index(OrderStatus.FILLED) :]


async def test_a_modify_while_working_is_not_mistaken_for_a_late_update(h):
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790")))
    moved = await h.engine.modify(FUT, order.order_id, limit_price=D("6791"))
    await h.engine.settle()
    held = {o.order_id: o for o in (await h.engine.snapshot()).orders}[order.order_id]
    assert held.limit_price == moved.limit_price == D("6791.00")


def _shape(positions: list[Position]) -> list[tuple]:
    return [(p.symbol, p.quantity, p.avg_price, p.mark, p.realized_pnl, p.unrealized_pnl, p.fees) for p in positions]


async def test_open_positions_per_account_match_the_book(h):
    """engine.positions(account) (what every pre-trade check reads) is the book's open positions
    of that account, in the book's order, through fills, closes, a new day and a restart."""
    await h.quote("MNQ1!", "21000.00", "21000.25")

    def check() -> None:
        for account in (FUT, CASH):
            assert _shape(h.engine.positions(account)) == _shape(h.engine.book.open_positions(account))

    check()
    await h.engine.place(req(symbol="MNQ1!", quantity=2))
    await h.engine.place(req(quantity=1))
    await h.engine.settle()
    check()
    assert [p.symbol for p in h.engine.positions(FUT)] == ["MNQZ6", "MESZ6"]
    await h.engine.place(req(symbol="MNQ1!", side=Side.SELL, quantity=2))  # flat again
    await h.engine.settle()
    check()
    assert [p.symbol for p in h.engine.positions(FUT)] == ["MESZ6"]
    h.engine.new_trading_day()
    await h.engine.place(req(symbol="MNQ1!", quantity=1))  # the flat lot was dropped: it comes back last
    await h.engine.settle()
    check()
    assert [p.symbol for p in h.engine.positions(FUT)] == ["MESZ6", "MNQZ6"]
