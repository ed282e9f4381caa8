"""The Tradovate broker against the strict fake server, over real loopback sockets.

Vendor time (token expiry, penalty waits, rate-limit backoff) runs on a FakeClock shared by the
broker and the fake; tests move it forward. Socket liveness uses short real intervals (tens of
milliseconds), and every wait is on an event or condition with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import FakeClock
from tests.fakes.tradovate import FakeTradovate
from tterm.brokers.common.settings import BrokerConfigError
from tterm.brokers.common.token_store import TokenStore
from tterm.brokers.tradovate import TradovateBroker, build
from tterm.brokers.tradovate.mapping import failure_words
from tterm.brokers.tradovate.stream import FrameError, encode_request, parse_frame
from tterm.core.broker import AuthError, BrokerError, NotSupported, RateLimited
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AccountSnapshot,
    Bracket,
    ConnectionState,
    ConnectionStatus,
    Fill,
    GroupKind,
    InstrumentAdded,
    Notice,
    Order,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
)

ACCT = "tv:DEMO123456"
#: The fake's socket timing for tests: tens of milliseconds (its defaults are the vendor's 2.5 s).
FAST_FAKE = {"heartbeat_interval": 0.05, "client_timeout": 3.0}
FAST = {
    "heartbeat_interval": 0.05,
    "stale_after": 0.6,
    "watchdog_interval": 0.05,
    "reconnect_base": 0.01,
    "reconnect_cap": 0.05,
    "connect_timeout": 1,
    "close_timeout": 0.2,
    "socket_request_timeout": 3,
    "request_timeout": 2,
    "ack_wait": 1,
}


class Collector:
    """Reads a broker's event stream in the background; tests wait on what arrived."""

    def __init__(self, broker: TradovateBroker) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(broker))

    async def _run(self, broker: TradovateBroker) -> None:
        async for event in broker.events():
            self.items.append(event)
            self._changed.set()

    def mark(self) -> int:
        return len(self.items)

    def of(self, kind: type, since: int = 0) -> list[Any]:
        return [e for e in self.items[since:] if isinstance(e, kind)]

    async def wait_for(
        self, kind: type, pred: Callable[[Any], bool] = lambda e: True, *, since: int = 0, within: float = 5
    ) -> Any:
        async def _wait() -> Any:
            while True:
                for e in self.items[since:]:
                    if isinstance(e, kind) and pred(e):
                        return e
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), within)

    async def stop(self) -> None:
        self._task.cancel()


def order_is(order_id: str, status: OrderStatus) -> Callable[[Any], bool]:
    return lambda o: o.order_id == order_id and o.status is status


def make(fake: FakeTradovate, instruments: InstrumentMaster, tmp_path: Any, **options: Any) -> TradovateBroker:
    return build(
        "tv",
        fake.options(**{**FAST, **options}),
        fake.secrets(),
        instruments=instruments,
        clock=fake.clock,
        data_dir=tmp_path,
    )


@pytest.fixture
async def fake():
    server = FakeTradovate(clock=FakeClock(), **FAST_FAKE)
    await server.start()
    server.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.25")
    server.set_quote("MNQZ6", bid="21000.00", ask="21000.25", last="21000.00")
    yield server
    await server.stop()


@pytest.fixture
def instruments(fake: FakeTradovate) -> InstrumentMaster:
    return InstrumentMaster(today=lambda: fake.clock.now().date())


@pytest.fixture
async def connected(fake, instruments, tmp_path):
    broker = make(fake, instruments, tmp_path)
    events = Collector(broker)
    await broker.connect()
    yield broker, events
    await broker.close()
    await events.stop()


async def market(broker: TradovateBroker, side: Side, qty: int, symbol: str = "MESZ6", **kw: Any) -> Order:
    return await broker.place(OrderRequest(account=ACCT, symbol=symbol, side=side, quantity=qty, **kw))


# =========================================================================== protocol pieces


def test_frames_parse_as_the_reference_says():
    assert parse_frame("o") == ("o", None)
    assert parse_frame("h") == ("h", None)
    assert parse_frame('a[{"s":200,"i":0}]') == ("a", [{"s": 200, "i": 0}])
    assert parse_frame('c[1000,"bye"]') == ("c", (1000, "bye"))
    for bad in ("", "x", "a{", 'a{"s":1}', "oo"):
        with pytest.raises(FrameError):
            parse_frame(bad)
    assert encode_request("authorize", 0, "TOKEN") == "authorize\n0\n\nTOKEN"
    assert encode_request("order/list", 5) == "order/list\n5\n\n"
    assert encode_request("md/subscribeQuote", 3, {"symbol": "MESZ6"}) == 'md/subscribeQuote\n3\n\n{"symbol":"MESZ6"}'


def test_failure_reasons_read_as_plain_words():
    assert failure_words("MaxPosLimitReached", "") == "the order would go over the account's position limit"
    assert failure_words("SessionClosed", "CME closed") == "the market is closed (Tradovate: CME closed)"
    assert failure_words("SomethingNew", "") == "refused (SomethingNew)"
    assert failure_words(None, "plain text") == "plain text"
    assert failure_words(None, None) == "refused by Tradovate without a reason"


def test_build_refuses_bad_options_and_missing_secrets(fake, instruments, tmp_path):
    with pytest.raises(BrokerConfigError, match="unknown option 'colour'"):
        build("tv", {"colour": "red"}, fake.secrets(), instruments=instruments, data_dir=tmp_path)
    with pytest.raises(BrokerConfigError, match="option 'environment'"):
        build("tv", {"environment": "paper"}, fake.secrets(), instruments=instruments, data_dir=tmp_path)
    with pytest.raises(BrokerConfigError, match="must start with ws:// or wss://") as err:
        build("tv", {"ws_url": "http://x"}, fake.secrets(), instruments=instruments, data_dir=tmp_path)
    secrets = fake.secrets()
    del secrets["sec"]
    with pytest.raises(BrokerConfigError, match="TTERM_TV_SEC") as err:
        build("tv", {}, secrets, instruments=instruments, data_dir=tmp_path)
    assert fake.password not in str(err.value)
    broker = build("tv", {"environment": "live"}, fake.secrets(), instruments=instruments, data_dir=tmp_path)
    assert broker.is_live and broker.settings.rest_base == "https://live.tradovateapi.com/v1"
    assert fake.password not in repr(broker._creds) and fake.sec not in repr(broker._creds)


# =========================================================================== login, sync, quotes


async def test_login_sync_and_quotes(fake, connected, tmp_path):
    broker, events = connected
    assert [a.id for a in await broker.accounts()] == ["tv:DEMO123456", "tv:DEMO654321"]
    snaps = {s.account: s for s in await broker.snapshots()}
    assert snaps[ACCT].balance == Decimal("50000") and snaps[ACCT].equity == Decimal("50000")
    status = await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED)
    # The session's expiry is structured (the status bar counts it down); tterm renews it itself.
    assert status.auth_expires_at == fake.clock.now() + timedelta(minutes=90)
    assert (status.auth_label, status.auth_needs_person) == ("session", False)
    assert broker.token_expires_in() == timedelta(minutes=90)

    await broker.subscribe_quotes(["MES1!"])  # continuous symbol -> MESZ6
    first = await events.wait_for(Quote, lambda q: q.symbol == "MESZ6")
    assert (first.bid, first.ask, first.last) == (Decimal("6650.00"), Decimal("6650.25"), Decimal("6650.25"))
    fake.set_quote("MESZ6", bid="6650.25", bid_size=3)
    moved = await events.wait_for(Quote, lambda q: q.bid == Decimal("6650.25"))
    assert moved.ask == Decimal("6650.25") and moved.last == Decimal("6650.25") and moved.bid_size == 3

    # The device id is created once per install and reused.
    device_file = tmp_path / "tradovate-device-id"
    assert device_file.read_text().strip() == broker.device_id
    assert oct(device_file.stat().st_mode & 0o777) == "0o600"
    assert fake.device_ids == {broker.device_id}

    await broker.unsubscribe_quotes(["MESZ6"])
    mark = events.mark()
    fake.set_quote("MESZ6", bid="6649.00")
    await fake.until(lambda: fake.sockets("md") == 1)
    fake.set_quote("MNQZ6", bid="21001.00")  # not subscribed either
    await asyncio.sleep(0.05)
    assert events.of(Quote, mark) == []


async def test_an_absent_side_is_no_data_never_the_last_value(fake, connected):
    """example-api-js EX-08: "Any of entries may absent if no data available for them", and price
    or size may be missing inside an entry. An absent side is no bid (or offer), not the old one."""
    broker, events = connected
    await broker.subscribe_quotes(["MESZ6"])
    await events.wait_for(Quote, lambda q: q.ask == Decimal("6650.25"))
    mark = events.mark()
    fake.clear_side("MESZ6", "Offer")  # the offer side of the book is empty
    one_sided = await events.wait_for(Quote, lambda q: q.ask is None, since=mark)
    assert one_sided.bid == Decimal("6650.00") and one_sided.ask_size == 0
    assert broker.last_quote("MESZ6").ask is None
    # A bracket in ticks from a market entry cannot be priced from a side that is not there.
    bracket = Bracket(take_profit_ticks=8, stop_loss_ticks=4)
    refused = await market(broker, Side.BUY, 1, bracket=bracket)
    assert refused.status is OrderStatus.REJECTED and "no offer" in refused.reject_reason
    assert not any(b.get("clOrdId") == refused.client_order_id for b in fake.order_bodies)
    # An entry without its price is no price either (its size alone says nothing).
    mark = events.mark()
    fake.push_entries("MESZ6", {"Bid": {"size": 4}, "Offer": {"price": 6650.5, "size": 2}})
    q = await events.wait_for(Quote, lambda q: q.ask == Decimal("6650.50"), since=mark)
    assert q.bid is None and q.bid_size == 0 and q.last is None


async def test_unknown_symbol_for_quotes_is_a_clear_error(connected):
    broker, _ = connected
    with pytest.raises(BrokerError, match="Tradovate has no contract named ESZ6"):
        await broker.subscribe_quotes(["ESZ6"])
    with pytest.raises(BrokerError, match="unknown symbol"):
        await broker.subscribe_quotes(["NOPE"])


async def test_search_and_lookup_learn_contracts_the_master_does_not_list(instruments, tmp_path):
    contracts = (("MESZ6", "MES"), ("ZNZ6", "ZN"), ("ZNH7", "ZN"))
    server = FakeTradovate(clock=FakeClock(), contracts=contracts, **FAST_FAKE)
    await server.start()
    broker = make(server, instruments, tmp_path)
    events = Collector(broker)
    try:
        await broker.connect()
        assert broker.capabilities.search and not broker.capabilities.option_chain
        found = await broker.search_instruments("ZN")
        assert [i.symbol for i in found] == ["ZNZ6", "ZNH7"]
        assert found[0].tick_size == Decimal("0.25") and found[0].point_value == Decimal("5")
        learned = await events.wait_for(InstrumentAdded, lambda e: e.instrument.symbol == "ZNZ6")
        assert learned.broker == "tv" and instruments.resolve("ZNZ6") == found[0]
        assert await broker.lookup_instrument("MES1!") == instruments.resolve("MESZ6")  # the master's own
        assert await broker.lookup_instrument("NOPE9") is None
        assert await broker.search_instruments("   ") == []
        with pytest.raises(NotSupported, match="not supported by tv: option chains"):
            await broker.option_chain("ZNZ6")
    finally:
        await broker.close()
        await events.stop()
        await server.stop()


async def test_heartbeats_flow_both_ways(fake, connected):
    broker, _ = connected
    await fake.until(lambda: fake.heartbeats["trading"] >= 3 and fake.heartbeats["md"] >= 3)
    sock = broker._trading.socket
    assert sock is not None and sock.heartbeats_sent >= 3 and sock.frames_received > 3
    assert fake.dropped_for_silence == 0


async def test_wrong_password_is_a_clear_auth_error(fake, instruments, tmp_path):
    broker = build(
        "tv",
        fake.options(**FAST),
        fake.secrets(password="wrong-password-123"),
        instruments=instruments,
        clock=fake.clock,
        data_dir=tmp_path,
    )
    with pytest.raises(AuthError, match="Incorrect username or password") as err:
        await broker.connect()
    assert "wrong-password-123" not in str(err.value)
    assert fake.failed_logins == 1 and fake.logins == 0
    await broker.close()


# =========================================================================== orders, fills, P&L


async def test_market_limit_and_stop_orders_fill_with_pnl(fake, connected):
    broker, events = connected
    await broker.subscribe_quotes(["MESZ6"])

    buy = await market(broker, Side.BUY, 2)
    assert buy.order_id.isdigit() and buy.status in (OrderStatus.WORKING, OrderStatus.FILLED)
    fill = await events.wait_for(Fill, lambda f: f.order_id == buy.order_id)
    assert (fill.side, fill.quantity, fill.price) == (Side.BUY, 2, Decimal("6650.25"))
    assert fill.client_order_id.startswith("tt") and fill.fee == Decimal("1.24")
    await events.wait_for(Order, order_is(buy.order_id, OrderStatus.FILLED))
    pos = await events.wait_for(Position, lambda p: p.quantity == 2)
    assert pos.avg_price == Decimal("6650.25")

    target = await market(broker, Side.SELL, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6655.00"))
    assert target.status is OrderStatus.WORKING and target.limit_price == Decimal("6655.00")
    stop = await market(broker, Side.SELL, 1, order_type=OrderType.STOP, stop_price=Decimal("6645.00"))
    assert stop.status is OrderStatus.WORKING

    fake.set_quote("MESZ6", bid="6655.00", ask="6655.25", last="6655.00")
    await events.wait_for(Order, order_is(target.order_id, OrderStatus.FILLED))
    fake.set_quote("MESZ6", bid="6644.75", ask="6645.00", last="6644.75")
    await events.wait_for(Order, order_is(stop.order_id, OrderStatus.FILLED))
    flat = await events.wait_for(Position, lambda p: p.quantity == 0)
    # (6655.00 - 6650.25) * 5 + (6644.75 - 6650.25) * 5 = 23.75 - 27.50, less 4 sides * 0.62
    assert flat.realized_pnl == Decimal("-3.75") - Decimal("2.48")
    snap = await events.wait_for(AccountSnapshot, lambda s: s.day_realized_pnl == Decimal("-3.75"))
    assert snap.balance == Decimal("49996.25")
    assert await broker.positions(ACCT) == []
    assert {f.order_id for f in await broker.fills(ACCT)} == {buy.order_id, target.order_id, stop.order_id}
    sent = [b for b in fake.order_bodies if b.get("clOrdId")]
    assert all(b["isAutomated"] is True and b["accountSpec"] == "DEMO123456" for b in sent)


async def test_stop_limit_triggers_then_fills_as_a_limit(fake, connected):
    broker, events = connected
    order = await market(
        broker,
        Side.SELL,
        1,
        order_type=OrderType.STOP_LIMIT,
        stop_price=Decimal("6645.00"),
        limit_price=Decimal("6644.50"),
    )
    body = fake.order_bodies[-1]
    assert (body["orderType"], body["stopPrice"], body["price"]) == ("StopLimit", 6645, 6644.5)
    assert (order.stop_price, order.limit_price) == (Decimal("6645.00"), Decimal("6644.50"))
    fake.set_quote("MESZ6", bid="6644.00", ask="6644.25")  # triggers, but the bid is below the limit
    await fake.until(lambda: int(order.order_id) in fake._stop_triggered)
    assert fake.entities["order"][int(order.order_id)]["ordStatus"] == "Working"
    fake.set_quote("MESZ6", bid="6644.75", ask="6645.00")
    filled = await events.wait_for(Order, order_is(order.order_id, OrderStatus.FILLED))
    assert filled.avg_fill_price == Decimal("6644.75")


async def test_partial_fills_show_as_partially_filled(fake, connected):
    broker, events = connected
    fake.set_quote("MESZ6", bid="6650.00", ask="6650.25", ask_size=2)
    order = await market(broker, Side.BUY, 5, order_type=OrderType.LIMIT, limit_price=Decimal("6650.25"))
    part = await events.wait_for(Order, order_is(order.order_id, OrderStatus.PARTIALLY_FILLED))
    assert (part.filled_quantity, part.remaining) == (2, 3)
    fake.set_quote("MESZ6", ask="6650.00", ask_size=10)
    done = await events.wait_for(Order, order_is(order.order_id, OrderStatus.FILLED))
    assert done.filled_quantity == 5 and done.avg_fill_price == Decimal("6650.1")
    assert [f.quantity for f in events.of(Fill) if f.order_id == order.order_id] == [2, 3]


async def test_open_pnl_follows_the_quote_stream(fake, connected):
    broker, events = connected
    await broker.subscribe_quotes(["MESZ6"])
    await market(broker, Side.BUY, 1)
    await events.wait_for(Position, lambda p: p.quantity == 1)
    fake.set_quote("MESZ6", bid="6660.00", ask="6660.25", last="6660.00")
    await events.wait_for(Quote, lambda q: q.last == Decimal("6660.00"))
    (pos,) = await broker.positions(ACCT)
    assert pos.mark == Decimal("6660.00") and pos.unrealized_pnl == Decimal("48.75")
    snap = next(s for s in await broker.snapshots() if s.account == ACCT)
    assert snap.open_pnl == Decimal("48.75") and snap.equity == Decimal("50048.75")


async def test_bracket_as_oso_then_take_profit_cancels_the_stop(fake, connected):
    broker, events = connected
    entry = await market(
        broker,
        Side.BUY,
        1,
        order_type=OrderType.LIMIT,
        limit_price=Decimal("6648.00"),
        bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4),
    )
    assert entry.status is OrderStatus.WORKING and entry.role is OrderRole.ENTRY
    body = fake.order_bodies[-1]
    assert body["bracket1"] == {
        "action": "Sell",
        "clOrdId": f"{entry.client_order_id}-tp",
        "orderType": "Limit",
        "price": 6650,
        "timeInForce": "Day",
    }
    assert body["bracket2"]["orderType"] == "Stop" and body["bracket2"]["stopPrice"] == 6647
    for role in (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS):
        await events.wait_for(Order, lambda o, role=role: o.parent_id == entry.order_id and o.role is role)
    children = [o for o in await broker.orders(ACCT) if o.parent_id == entry.order_id]
    roles = {o.role: o for o in children}
    assert set(roles) == {OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS}
    assert all(o.status is OrderStatus.PENDING for o in children)  # held until the entry fills
    tp, sl = roles[OrderRole.TAKE_PROFIT], roles[OrderRole.STOP_LOSS]
    assert tp.limit_price == Decimal("6650.00") and sl.stop_price == Decimal("6647.00")
    assert tp.oco_group == sl.oco_group is not None

    fake.set_quote("MESZ6", bid="6647.75", ask="6648.00", last="6648.00")
    await events.wait_for(Order, order_is(entry.order_id, OrderStatus.FILLED))
    await events.wait_for(Order, order_is(tp.order_id, OrderStatus.WORKING))
    fake.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
    await events.wait_for(Order, order_is(tp.order_id, OrderStatus.FILLED))
    await events.wait_for(Order, order_is(sl.order_id, OrderStatus.CANCELLED))
    flat = await events.wait_for(Position, lambda p: p.quantity == 0)
    assert flat.realized_pnl == Decimal("10.00") - Decimal("1.24")


async def test_bracket_on_a_market_entry_is_priced_from_the_quote(fake, connected):
    broker, events = connected
    refused = await market(broker, Side.SELL, 1, bracket=Bracket(take_profit_ticks=4, stop_loss_ticks=4))
    assert refused.status is OrderStatus.REJECTED and "no MESZ6 quote" in refused.reject_reason
    await broker.subscribe_quotes(["MESZ6"])
    await events.wait_for(Quote)
    entry = await market(broker, Side.SELL, 1, bracket=Bracket(take_profit_ticks=4, stop_loss_ticks=4))
    body = fake.order_bodies[-1]
    assert body["bracket1"]["price"] == 6649 and body["bracket2"]["stopPrice"] == 6651
    await events.wait_for(Order, order_is(entry.order_id, OrderStatus.FILLED))


async def test_modify_then_cancel(fake, connected):
    broker, _ = connected
    order = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6640.00"))
    modified = await broker.modify(ACCT, order.order_id, quantity=3, limit_price=Decimal("6641.25"))
    assert (modified.quantity, modified.limit_price, modified.status) == (3, Decimal("6641.25"), OrderStatus.WORKING)
    body = fake.order_bodies[-1]
    # A change by a person is not automated: isAutomated is left out (it defaults to false).
    assert body == {"orderId": int(order.order_id), "orderQty": 3, "orderType": "Limit",
                    "price": 6641.25, "timeInForce": "Day"}  # fmt: skip
    off_tick = await broker.modify(ACCT, order.order_id, limit_price=Decimal("6641.30"))
    assert "off the tick grid" in off_tick.reject_reason and off_tick.limit_price == Decimal("6641.25")
    cancelled = await broker.cancel(ACCT, order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    again = await broker.cancel(ACCT, order.order_id)
    assert again.status is OrderStatus.CANCELLED
    with pytest.raises(BrokerError, match="no order 999"):
        await broker.cancel(ACCT, "999")


async def test_rejects_come_back_with_their_reason(fake, connected):
    broker, _ = connected
    fake.reject_next("MaxPosLimitReached", "Max position 5 reached for MES")
    order = await market(broker, Side.BUY, 6)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == (
        "the order would go over the account's position limit (Tradovate: Max position 5 reached for MES)"
    )
    assert order.order_id == f"rejected-{order.client_order_id}"

    sent = len(fake.order_bodies)
    off = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6650.10"))
    assert off.status is OrderStatus.REJECTED and "off the tick grid" in off.reject_reason
    unknown = await market(broker, Side.BUY, 1, symbol="ESZ6")
    assert unknown.reject_reason == "Tradovate has no contract named ESZ6"
    other = await broker.place(OrderRequest(account="tv:NOPE", symbol="MESZ6", side=Side.BUY, quantity=1))
    assert "unknown Tradovate account 'tv:NOPE'" in other.reject_reason
    reduce = await market(broker, Side.SELL, 1, reduce_only=True)
    assert "reduce-only" in reduce.reject_reason
    assert len(fake.order_bodies) == sent  # none of those reached Tradovate

    fake.max_position = 1
    await market(broker, Side.BUY, 1)
    over = await market(broker, Side.BUY, 1)
    assert over.reject_reason.startswith("the order would go over the account's position limit")


async def test_is_automated_only_for_orders_no_person_placed(fake, connected):
    """Partner best-practices page: isAutomated marks orders not placed directly by a person."""
    broker, _ = connected
    by_hand = await market(broker, Side.BUY, 1, source=OrderSource.TICKET)
    assert by_hand.order_id.isdigit()
    assert fake.order_bodies[-1]["isAutomated"] is False
    bracket = Bracket(take_profit_ticks=8, stop_loss_ticks=4)
    limit = {"order_type": OrderType.LIMIT, "limit_price": Decimal("6640.00")}
    hotkey = await market(broker, Side.BUY, 1, source=OrderSource.HOTKEY, bracket=bracket, **limit)
    assert hotkey.order_id.isdigit(), hotkey.reject_reason
    assert fake.order_bodies[-1]["isAutomated"] is False
    webhook = await market(broker, Side.SELL, 1, source=OrderSource.WEBHOOK)
    assert webhook.order_id.isdigit()
    assert fake.order_bodies[-1]["isAutomated"] is True
    risk = await market(broker, Side.SELL, 1, source=OrderSource.RISK)
    assert risk.order_id.isdigit()
    assert fake.order_bodies[-1]["isAutomated"] is True


async def test_an_async_reject_arrives_on_command_report_with_its_reason(fake, connected):
    """C# sample Trading.cs: a command accepted at once can be rejected later, on commandReport
    (RiskRejected / ExecutionRejected with rejectReason and text), not only on executionReport."""
    broker, events = connected
    fake.reject_after_accept("RiskRejected", "MaxPosLimitReached", "Max position 5 reached for MES")
    order = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6640.00"))
    assert order.order_id.isdigit()  # accepted first
    reason = "the order would go over the account's position limit (Tradovate: Max position 5 reached for MES)"
    # U8: the order's Rejected status and the report with the reason come in either order; the
    # order ends rejected with the report's reason.
    await events.wait_for(Order, lambda o: o.order_id == order.order_id and o.reject_reason == reason)
    (final,) = [o for o in await broker.orders(ACCT) if o.order_id == order.order_id]
    assert final.status is OrderStatus.REJECTED and final.reject_reason == reason
    working = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6641.00"))
    fake.reject_after_accept("ExecutionRejected", "SessionClosed", "")
    mark = events.mark()
    await broker.modify(ACCT, working.order_id, limit_price=Decimal("6642.00"))
    notice = await events.wait_for(Notice, lambda n: "modify" in n.text and "rejected" in n.text, since=mark)
    assert working.order_id in notice.text and "the market is closed" in notice.text


async def test_props_with_an_array_of_entities(fake, connected):
    """WebSocketClient.cs in example-api-csharp-trading reads ``entity`` as an object or an array."""
    broker, events = connected
    fake.props_as_arrays = True
    buy = await market(broker, Side.BUY, 2)
    await events.wait_for(Order, order_is(buy.order_id, OrderStatus.FILLED))
    fill = await events.wait_for(Fill, lambda f: f.order_id == buy.order_id)
    assert fill.quantity == 2
    await events.wait_for(Position, lambda p: p.quantity == 2)


async def test_flatten_cancels_working_orders_and_liquidates(fake, connected):
    broker, events = connected
    buy = await market(broker, Side.BUY, 2)
    await events.wait_for(Order, order_is(buy.order_id, OrderStatus.FILLED))
    resting = await market(broker, Side.SELL, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6700.00"))
    mnq = await market(broker, Side.SELL, 1, symbol="MNQZ6")
    await events.wait_for(Order, order_is(mnq.order_id, OrderStatus.FILLED))

    results = await broker.flatten(ACCT, "MES1!")
    by_id = {o.order_id: o for o in results}
    assert by_id[resting.order_id].status is OrderStatus.CANCELLED
    liquidation = next(o for o in results if o.order_id != resting.order_id)
    assert liquidation.side is Side.SELL and liquidation.quantity == 2
    liquidate = fake.order_bodies[-1]
    # The documented fields only (C# services-api LiquidatePosition model): no isAutomated.
    assert set(liquidate) == {"accountId", "contractId", "admin"} and liquidate["admin"] is False
    await events.wait_for(Order, order_is(liquidation.order_id, OrderStatus.FILLED))
    await events.wait_for(Position, lambda p: p.symbol == "MESZ6" and p.quantity == 0)
    assert {p.symbol: p.quantity for p in await broker.positions(ACCT)} == {"MNQZ6": -1}

    await broker.flatten(ACCT)
    await events.wait_for(Position, lambda p: p.symbol == "MNQZ6" and p.quantity == 0)
    assert await broker.positions(ACCT) == []


async def test_oco_pair_on_an_open_position(fake, connected):
    broker, events = connected
    buy = await market(broker, Side.BUY, 1)
    await events.wait_for(Order, order_is(buy.order_id, OrderStatus.FILLED))
    tp = OrderRequest(ACCT, "MESZ6", Side.SELL, 1, OrderType.LIMIT, limit_price=Decimal("6660.00"))
    sl = OrderRequest(ACCT, "MESZ6", Side.SELL, 1, OrderType.STOP, stop_price=Decimal("6640.00"))
    first, second = await broker.place_group(OrderGroup(GroupKind.OCO, (tp, sl)))
    assert first.status is second.status is OrderStatus.WORKING
    assert (first.client_order_id, second.client_order_id) == (tp.client_order_id, sl.client_order_id)
    body = fake.order_bodies[-1]
    assert body["other"] == {"action": "Sell", "clOrdId": sl.client_order_id, "orderType": "Stop",
                             "stopPrice": 6640, "timeInForce": "Day"}  # fmt: skip
    fake.set_quote("MESZ6", bid="6639.75", ask="6640.00", last="6639.75")
    await events.wait_for(Order, order_is(second.order_id, OrderStatus.FILLED))
    await events.wait_for(Order, order_is(first.order_id, OrderStatus.CANCELLED))


async def test_otoco_is_one_oso_whose_exits_cancel_each_other(fake, connected):
    broker, events = connected
    entry = OrderRequest(ACCT, "MESZ6", Side.BUY, 2, OrderType.LIMIT, limit_price=Decimal("6648.00"))
    target = OrderRequest(ACCT, "MESZ6", Side.SELL, 2, OrderType.LIMIT, limit_price=Decimal("6652.00"))
    stop = OrderRequest(ACCT, "MESZ6", Side.SELL, 2, OrderType.STOP, stop_price=Decimal("6645.00"))
    placed = await broker.place_group(OrderGroup(GroupKind.OTOCO, (entry, target, stop)))
    assert [o.client_order_id for o in placed] == [r.client_order_id for r in (entry, target, stop)]
    first, tp, sl = placed
    assert first.role is OrderRole.ENTRY and first.status is OrderStatus.WORKING
    assert (tp.role, sl.role) == (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)
    assert tp.parent_id == sl.parent_id == first.order_id
    body = fake.order_bodies[-1]
    assert [p for _, p in fake.requests if p.startswith("order/")][-1] == "order/placeoso"
    assert body["bracket1"]["clOrdId"] == target.client_order_id and body["bracket1"]["price"] == 6652
    assert body["bracket2"]["orderType"] == "Stop" and body["bracket2"]["stopPrice"] == 6645
    # The exits wait for the entry, then work as an OCO pair.
    await events.wait_for(Order, lambda o: o.order_id == tp.order_id and o.status is OrderStatus.PENDING)
    fake.set_quote("MESZ6", bid="6647.75", ask="6648.00", last="6648.00")
    await events.wait_for(Order, order_is(first.order_id, OrderStatus.FILLED))
    fake.set_quote("MESZ6", bid="6644.75", ask="6645.00", last="6644.75")
    await events.wait_for(Order, order_is(sl.order_id, OrderStatus.FILLED))
    await events.wait_for(Order, order_is(tp.order_id, OrderStatus.CANCELLED))
    await events.wait_for(Position, lambda p: p.quantity == 0)


async def test_groups_tradovate_cannot_carry_are_refused_and_nothing_is_sent(fake, connected):
    broker, _ = connected
    sent = len(fake.order_bodies)
    tp = OrderRequest(ACCT, "MESZ6", Side.SELL, 1, OrderType.LIMIT, limit_price=Decimal("6660.00"))
    other_qty = OrderRequest(ACCT, "MESZ6", Side.SELL, 2, OrderType.STOP, stop_price=Decimal("6640.00"))
    other_symbol = OrderRequest(ACCT, "MNQZ6", Side.SELL, 1, OrderType.STOP, stop_price=Decimal("20990.00"))
    same_side = OrderRequest(ACCT, "MESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("6640.00"))
    market_exit = OrderRequest(ACCT, "MESZ6", Side.BUY, 1)
    cases = [
        (GroupKind.OCO, (tp, other_qty), "first order's quantity"),
        (GroupKind.OCO, (tp, other_symbol), "same account and symbol"),
        (GroupKind.OCO, (tp,), "exactly two orders"),
        (GroupKind.OTOCO, (same_side, tp, same_side), "other side of the entry"),
        (GroupKind.OTOCO, (tp, market_exit), "limit or a stop"),
    ]
    for kind, orders, reason in cases:
        results = await broker.place_group(OrderGroup(kind, orders))
        assert len(results) == len(orders)
        assert all(o.status is OrderStatus.REJECTED and reason in o.reject_reason for o in results), reason
    off_tick = OrderRequest(ACCT, "MESZ6", Side.SELL, 1, OrderType.STOP, stop_price=Decimal("6640.10"))
    results = await broker.place_group(OrderGroup(GroupKind.OCO, (tp, off_tick)))
    assert all("off the tick grid" in o.reject_reason for o in results)
    assert len(fake.order_bodies) == sent


async def test_events_in_any_order_give_the_same_result(fake, connected):
    broker, events = connected
    fake.scramble_props = True  # every batch arrives reversed: fills and positions before orders
    order = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6651.00"))
    done = await events.wait_for(
        Order, lambda o: o.order_id == order.order_id and o.status is OrderStatus.FILLED and o.avg_fill_price
    )
    assert done.filled_quantity == 1 and done.avg_fill_price == Decimal("6650.25")
    filled = [o for o in events.of(Order) if o.order_id == order.order_id and o.status is OrderStatus.FILLED]
    assert all(o.filled_quantity == 1 for o in filled)
    await events.wait_for(Fill, lambda f: f.order_id == order.order_id)
    await events.wait_for(Position, lambda p: p.quantity == 1)


# =========================================================================== tokens and penalties


async def test_token_is_renewed_before_expiry_with_no_failed_request(fake, connected):
    broker, events = connected
    first_expiry = broker.session_expires_at
    assert first_expiry is not None
    fake.clock.advance(timedelta(minutes=76))  # inside the 15-minute renewal window
    await fake.until(lambda: fake.renewals == 1)
    renewed = await events.wait_for(ConnectionStatus, lambda s: s.auth_expires_at != first_expiry, since=1)
    assert broker.session_expires_at == first_expiry + timedelta(minutes=76) == renewed.auth_expires_at
    assert renewed.state is ConnectionState.CONNECTED and renewed.auth_needs_person is False
    fake.clock.advance(timedelta(minutes=20))  # the first token has now expired
    assert broker.token_expires_in() == timedelta(minutes=70)
    order = await market(broker, Side.BUY, 1)
    assert order.status is not OrderStatus.REJECTED
    assert fake.unauthorized == 0 and fake.logins == 1


async def test_a_renewed_session_is_stored_and_a_restart_reuses_it(fake, instruments, tmp_path):
    first = make(fake, instruments, tmp_path)
    events = Collector(first)
    await first.connect()
    initial = first.session_expires_at
    fake.clock.advance(timedelta(minutes=76))
    await events.wait_for(ConnectionStatus, lambda s: s.auth_expires_at not in (None, initial))
    path = tmp_path / "tokens" / "tv.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    renewed = first._tokens.token  # type: ignore[union-attr]
    stored = TokenStore(path, owner=f"{fake.username}@{fake.rest_url}").load()
    assert renewed is not None and stored == renewed
    assert renewed.value not in path.parent.joinpath("tv.json.lock").read_text()
    await first.close()
    await events.stop()

    second = make(fake, instruments, tmp_path)
    await second.connect()
    try:
        assert fake.logins == 1 and second.session_expires_at == renewed.expires_at  # no new session
        order = await market(second, Side.BUY, 1)
        assert order.order_id.isdigit()
    finally:
        await second.close()


async def test_an_expired_token_gets_a_new_session_and_the_request_succeeds(fake, connected):
    broker, events = connected
    fake.expire_tokens()
    order = await market(broker, Side.BUY, 1)
    assert order.order_id.isdigit()
    # The 401 is checked by a renewal first; only its refusal (the token is really gone) logs in.
    assert fake.unauthorized == 2 and fake.logins == 2 and fake.renewals == 0
    await events.wait_for(Order, order_is(order.order_id, OrderStatus.FILLED))


async def test_a_401_on_a_live_session_is_not_a_new_login(fake, connected):
    broker, _ = connected
    await market(broker, Side.BUY, 1)  # looks the contract up once
    fake.deny_401("order/placeorder", times=2)  # e.g. a live device not approved yet
    request = OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1)
    order = await broker.place(request)
    assert order.status is OrderStatus.REJECTED and "HTTP 401" in order.reject_reason
    assert "session is valid" in order.reject_reason
    # The session was checked by renewing it (it is alive), the order tried once more, no login.
    assert fake.logins == 1 and fake.renewals == 1 and fake.most_sessions == 1
    assert fake.clord_ids[request.client_order_id] == 0
    fake.deny_401("order/placeorder")
    again = await market(broker, Side.BUY, 1)  # the session was confirmed a moment ago: no renewal
    assert again.status is OrderStatus.REJECTED and "HTTP 401" in again.reject_reason
    assert fake.renewals == 1 and fake.logins == 1


async def test_a_refused_authorize_renews_and_does_not_open_a_session(fake, connected):
    _, events = connected
    fake.refuse_authorize()
    mark = events.mark()
    await fake.drop_sockets("trading")
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)
    assert fake.logins == 1 and fake.renewals == 1 and fake.most_sessions == 1


async def test_a_session_closed_by_two_logins_elsewhere_logs_in_once_more(fake, connected):
    broker, events = connected
    mark = events.mark()
    fake.login_elsewhere()
    fake.login_elsewhere()  # a third session: Tradovate closes tterm's, the oldest
    assert fake.sessions_closed == 1 and len(fake.sessions) == 2
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.RECONNECTING, since=mark)
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)
    await fake.until(lambda: fake.sockets("md") == 1 and fake.sockets("trading") == 1)
    order = await market(broker, Side.BUY, 1)
    assert order.order_id.isdigit(), order.reject_reason
    # Exactly one new login for tterm (its token was really gone), never a login per 401.
    assert fake.logins == 2 and fake.most_sessions == 2


async def test_an_order_whose_session_cannot_be_renewed_raises_unsent(fake, connected):
    broker, _ = connected
    fake.expire_tokens()
    fake.password = "changed-on-the-website"  # the new session is refused too
    request = OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1)
    with pytest.raises(AuthError, match="Incorrect username or password") as err:
        await broker.place(request)
    assert err.value.sent is False  # refused with 401, then no session: it never reached the order book
    assert fake.clord_ids[request.client_order_id] == 0


async def test_login_penalty_is_waited_out_then_resent_with_the_ticket(fake, instruments, tmp_path):
    fake.penalize("auth/accesstokenrequest", p_time=30)
    broker = make(fake, instruments, tmp_path)
    connecting = asyncio.create_task(broker.connect())
    waiting = await fake.clock.wait_for_sleeper(longer_than=29, shorter_than=31)
    assert waiting == 30 and fake.logins == 0 and not connecting.done()
    fake.clock.advance(29)
    await asyncio.sleep(0.05)
    assert not connecting.done() and fake.tickets_honoured == 0
    fake.clock.advance(1)
    await asyncio.wait_for(connecting, 5)
    assert fake.logins == 1 and fake.tickets_honoured == 1 and fake.early_resends == 0
    await broker.close()


async def test_captcha_penalty_is_a_clear_error(fake, instruments, tmp_path):
    fake.penalize("auth/accesstokenrequest", p_time=3600, captcha=True)
    broker = make(fake, instruments, tmp_path)
    with pytest.raises(AuthError, match=r"captcha.*Log in once in a web browser"):
        await broker.connect()
    assert fake.logins == 0
    await broker.close()


async def _run_clock(fake: FakeTradovate, minutes: int, step: float = 30) -> None:
    """Move the shared clock ``minutes`` forward in steps, letting every waiting task run."""
    for _ in range(int(minutes * 60 / step)):
        fake.clock.advance(step)
        await asyncio.sleep(0.01)


async def test_a_revoked_password_stops_the_logins_and_asks_for_a_person(fake, connected):
    broker, events = connected
    fake.expire_tokens()  # the session is gone at Tradovate...
    fake.password = "changed-on-the-website"  # ...and the stored password no longer works
    await _run_clock(fake, 85)  # past the renewal time, then ten more minutes of retries
    # One refused login, then no more: the vendor allows about 5 failed logins an hour.
    assert fake.failed_logins == 1 and fake.logins == 1
    status = await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.NEEDS_LOGIN)
    assert "Incorrect username or password" in status.detail and "secrets.toml" in status.detail
    assert broker.connection_state is ConnectionState.NEEDS_LOGIN
    notices = [n for n in events.of(Notice) if "Incorrect username" in n.text]
    assert len(notices) == 1 and notices[0].level == "error"
    renewals = fake.renewals
    await _run_clock(fake, 30)
    assert fake.failed_logins == 1 and fake.renewals == renewals  # nothing more is tried alone
    sent = len(fake.requests)
    held = await market(broker, Side.BUY, 1, reduce_only=True)
    assert held.status is OrderStatus.REJECTED and "login is stopped" in held.reject_reason
    assert len(fake.requests) == sent


async def test_a_captcha_on_a_background_login_waits_the_hour_then_tries_once(fake, connected):
    broker, events = connected
    fake.expire_tokens()
    fake.penalize("auth/accesstokenrequest", p_time=3600, captcha=True, times=5)
    await _run_clock(fake, 80)
    assert fake.penalties_issued == 1  # one login met the captcha; none was sent after it
    status = await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.NEEDS_LOGIN)
    assert "captcha" in status.detail and "hour" in status.detail
    fake._penalties.clear()
    await _run_clock(fake, 61)  # the vendor's hour is over: one login, and it works
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED and s.detail != "")
    assert fake.penalties_issued == 1 and fake.logins == 2
    order = await market(broker, Side.BUY, 1)
    assert order.order_id.isdigit(), order.reject_reason


async def test_failed_logins_are_budgeted_per_hour(fake, instruments, tmp_path):
    """Logins that fail for a reason tterm cannot see (no errorText: a broken answer) are
    retried, but never more than the budget an hour (the vendor counts failed logins only)."""
    from tterm.brokers.tradovate.auth import LoginGuard

    guard = LoginGuard(fake.clock, failures_per_hour=3)
    for _ in range(3):
        guard.before()
        guard.failed("no answer")
    with pytest.raises(AuthError, match="3 failed Tradovate logins in the last hour") as err:
        guard.before()
    assert err.value.sent is False
    fake.clock.advance(3601)
    guard.before()  # the oldest failure aged out of the hour


async def test_order_penalty_is_obeyed_and_the_order_sent_once(fake, connected):
    broker, _ = connected
    fake.penalize("order/placeorder", p_time=5)
    placing = asyncio.create_task(market(broker, Side.BUY, 1))
    assert await fake.clock.wait_for_sleeper(longer_than=4, shorter_than=6) == 5
    fake.clock.advance(5)
    order = await asyncio.wait_for(placing, 5)
    assert order.order_id.isdigit()
    assert fake.tickets_honoured == 1 and fake.early_resends == 0
    assert fake.clord_ids[order.client_order_id] == 1
    assert "p-ticket" in fake.order_bodies[-1]


async def test_going_over_the_rate_earns_a_penalty_that_is_obeyed(fake, connected):
    broker, events = connected
    await market(broker, Side.BUY, 1)  # looks the contract up once; it is cached from here on
    fake.rate_limit = (2, 60)
    first = await asyncio.wait_for(market(broker, Side.BUY, 1), 5)
    second = await asyncio.wait_for(market(broker, Side.SELL, 1), 5)
    placing = asyncio.create_task(market(broker, Side.SELL, 1))
    assert await fake.clock.wait_for_sleeper(longer_than=59, shorter_than=61) == 60
    assert fake.penalties_issued == 1 and not placing.done()
    fake.clock.advance(60)
    third = await asyncio.wait_for(placing, 5)
    assert len({first.order_id, second.order_id, third.order_id}) == 3
    assert fake.tickets_honoured == 1 and fake.early_resends == 0
    await events.wait_for(Position, lambda p: p.quantity == 0)


async def test_a_429_locks_the_login_out_for_an_hour_and_nothing_is_sent(fake, connected):
    broker, events = connected
    await market(broker, Side.BUY, 1)  # looks the contract up once
    fake.fail_429("order/placeorder")  # the vendor's lockout starts here and extends on every request
    request = OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1)
    held = await broker.place(request)
    # A 429 was not processed: the order is refused with the reason, never resent, never looked up.
    assert held.status is OrderStatus.REJECTED and "locked this login out" in held.reject_reason
    assert fake.clord_ids[request.client_order_id] == 0
    until = fake.clock.now() + timedelta(hours=1)
    status = await events.wait_for(ConnectionStatus, lambda s: s.blocked_until is not None)
    assert status.blocked_until == until and broker.status().blocked_until == until
    notice = await events.wait_for(Notice, lambda n: "429" in n.text)
    assert notice.level == "error" and "sends nothing" in notice.text
    sent = len(fake.requests)
    # During the lockout nothing goes: orders are held, reads and subscriptions refused locally.
    again = await market(broker, Side.SELL, 1)
    assert again.status is OrderStatus.REJECTED and again.reject_reason.startswith("held: Tradovate will not accept")
    with pytest.raises(RateLimited, match="locked out") as err:
        await broker.subscribe_quotes(["MNQZ6"])
    assert err.value.sent is False
    with pytest.raises(BrokerError, match="will not accept the flatten yet") as err:
        await broker.flatten(ACCT)
    assert err.value.sent is False
    fake.clock.advance(1800)
    await fake.drop_sockets("md")  # a socket that drops during the lockout waits, it does not reconnect
    await asyncio.sleep(0.3)
    assert len(fake.requests) == sent and fake.requests_in_lockout == 0 and fake.sockets("md") == 0
    # Once the hour is over the status bar clears and requests go again.
    fake.clock.advance(1800)
    await events.wait_for(ConnectionStatus, lambda s: s.blocked_until is None and s.state is ConnectionState.CONNECTED)
    order = await market(broker, Side.SELL, 1)
    assert order.order_id.isdigit(), order.reject_reason
    await fake.until(lambda: fake.sockets("md") == 1)
    assert fake.requests_in_lockout == 0


async def test_a_lockout_that_outlasts_the_renewal_time_does_not_flood_notices(fake, connected):
    broker, events = connected
    fake.clock.advance(timedelta(minutes=20))
    fake.fail_429("contract/find")
    with pytest.raises(RateLimited):
        await broker.subscribe_quotes(["MNQZ6"])
    await _run_clock(fake, 58, step=60)  # the session's renewal (at 75 minutes) falls inside it
    assert fake.requests_in_lockout == 0 and fake.renewals == 0
    assert [n for n in events.of(Notice) if "renewal failed" in n.text] == []
    await _run_clock(fake, 4, step=60)  # over: the renewal goes through
    await fake.until(lambda: fake.renewals == 1)
    assert fake.logins == 1


async def test_a_socket_429_locks_out_rest_too(fake, connected):
    broker, events = connected
    fake.fail_429("md/subscribequote")
    with pytest.raises(RateLimited, match="locked this login out") as err:
        await broker.subscribe_quotes(["MESZ6"])
    assert err.value.sent is False
    await events.wait_for(ConnectionStatus, lambda s: s.blocked_until is not None)
    held = await market(broker, Side.BUY, 1)
    assert held.status is OrderStatus.REJECTED and "locked out" in held.reject_reason
    assert fake.requests_in_lockout == 0 and "order/placeorder" not in [p for _, p in fake.requests]


async def test_a_423_slows_down_and_is_not_resent(fake, connected):
    broker, events = connected
    fake.warn_423("contract/find")
    with pytest.raises(RateLimited, match="423") as err:
        await broker.subscribe_quotes(["MNQZ6"])
    assert err.value.sent is False and err.value.retry_after is not None and err.value.retry_after >= 15
    assert [p for _, p in fake.requests].count("contract/find") == 1  # the adapter never resends
    notice = await events.wait_for(Notice, lambda n: "423" in n.text)
    assert notice.level == "warning"
    # The next request waits out the pause on the shared limiter, then goes; no lockout.
    subscribing = asyncio.create_task(broker.subscribe_quotes(["MNQZ6"]))
    wait = await fake.clock.wait_for_sleeper(longer_than=10)
    assert not subscribing.done() and [p for _, p in fake.requests].count("contract/find") == 1
    fake.clock.advance(wait)
    await asyncio.wait_for(subscribing, 5)
    assert [p for _, p in fake.requests].count("contract/find") == 2
    assert broker.status().blocked_until is None


# =========================================================================== sockets: drops, silence


async def test_dropped_sockets_reconnect_resubscribe_and_resync(fake, connected):
    broker, events = connected
    await broker.subscribe_quotes(["MESZ6"])
    await events.wait_for(Quote)
    resting = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6645.00"))
    assert fake.connections == {"trading": 1, "md": 1}

    fake.refuse_sockets = True
    await fake.drop_sockets()
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.RECONNECTING)
    # While tterm is away the market trades through the resting order.
    fake.set_quote("MESZ6", bid="6644.75", ask="6645.00", last="6645.00")
    assert fake.entities["order"][int(resting.order_id)]["ordStatus"] == "Filled"
    mark = events.mark()
    fake.refuse_sockets = False
    fill = await events.wait_for(Fill, lambda f: f.order_id == resting.order_id, since=mark)
    assert fill.price == Decimal("6645.00")
    await events.wait_for(Order, order_is(resting.order_id, OrderStatus.FILLED), since=mark)
    await events.wait_for(Position, lambda p: p.quantity == 1, since=mark)
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)
    await fake.until(lambda: fake.sockets("md") == 1 and fake.subscribe_requests == 2)
    fake.set_quote("MESZ6", bid="6646.00")
    await events.wait_for(Quote, lambda q: q.bid == Decimal("6646.00"), since=mark)
    assert fake.sync_requests == 2
    assert [f.fill_id for f in events.of(Fill)].count(fill.fill_id) == 1  # no duplicate


async def test_a_sync_penalty_on_reconnect_is_obeyed(fake, connected):
    _, events = connected
    fake.penalize("user/syncrequest", p_time=3)
    mark = events.mark()
    await fake.drop_sockets("trading")
    assert await fake.clock.wait_for_sleeper(longer_than=2, shorter_than=4) == 3
    fake.clock.advance(3)
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)
    assert fake.sync_requests == 2 and fake.tickets_honoured == 1


async def test_a_silent_socket_is_marked_stale_and_orders_are_held(fake, connected):
    broker, events = connected
    fake.silent = True
    stale = await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.STALE)
    assert "no message for" in stale.detail
    sent = len(fake.order_bodies)
    held = await market(broker, Side.BUY, 1)
    assert held.status is OrderStatus.REJECTED and held.reject_reason.startswith("held: the Tradovate trading stream")
    assert len(fake.order_bodies) == sent
    mark = events.mark()
    fake.silent = False
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark, within=8)
    order = await market(broker, Side.BUY, 1)
    assert order.order_id.isdigit()


async def test_a_shutdown_event_is_reported_and_the_socket_comes_back(fake, connected):
    _, events = connected
    mark = events.mark()
    await fake.shutdown_sockets("Maintenance", kind="trading")
    notice = await events.wait_for(Notice, since=mark)
    assert notice.text == "Tradovate is closing the trading connection: Maintenance"
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.RECONNECTING, since=mark)
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)


async def test_without_the_trading_socket_state_comes_over_rest_and_orders_wait(fake, instruments, tmp_path):
    first = make(fake, instruments, tmp_path)
    await first.connect()
    opened = await market(first, Side.BUY, 2)
    await first.close()
    assert fake.entities["order"][int(opened.order_id)]["ordStatus"] == "Filled"

    fake.refuse_sockets = True
    broker = make(fake, instruments, tmp_path)
    events = Collector(broker)
    await broker.connect()
    try:
        assert broker.connection_state is ConnectionState.RECONNECTING
        notice = await events.wait_for(Notice)
        assert "did not connect" in notice.text and "held" in notice.text
        (pos,) = await broker.positions(ACCT)
        assert (pos.symbol, pos.quantity, pos.avg_price) == ("MESZ6", 2, Decimal("6650.25"))
        assert [o.order_id for o in await broker.orders(ACCT)] == [opened.order_id]
        assert {f.order_id for f in await broker.fills(ACCT)} == {opened.order_id}
        listed = {p for _, p in fake.requests if p.endswith("/list")}
        assert {"account/list", "position/list", "order/list", "orderversion/list", "fill/list"} <= listed
        held = await market(broker, Side.BUY, 1)
        assert held.reject_reason.startswith("held: the Tradovate trading stream is reconnecting")
        fake.refuse_sockets = False
        await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED)
        order = await market(broker, Side.SELL, 2)
        await events.wait_for(Order, order_is(order.order_id, OrderStatus.FILLED))
    finally:
        await broker.close()
        await events.stop()


# =========================================================================== retries never duplicate


async def test_a_lost_reply_raises_maybe_sent_and_is_never_resent_by_the_adapter(fake, connected):
    broker, _ = connected
    await market(broker, Side.BUY, 1)  # looks the contract up once
    # Processed at once, answered after the client gave up (a second's margin for a loaded machine).
    fake.slow("order/placeorder", 2.5)
    broker._http._client.timeout = httpx.Timeout(1.0)
    request = OrderRequest(ACCT, "MESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("6640.00"))
    with pytest.raises(BrokerError, match="no answer") as err:
        await broker.place(request)
    assert err.value.sent is None  # it may have arrived: look it up before anything else
    assert [p for _, p in fake.requests].count("order/placeorder") == 2
    found = await broker.find_order(ACCT, request.client_order_id)
    assert found is not None and found.status is OrderStatus.WORKING


async def test_through_the_router_a_lost_reply_is_looked_up_not_resent(fake, engine_setup):
    engine, _, journal = engine_setup
    broker = engine.brokers["tv"]
    await engine.place(OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1))
    fake.slow("order/placeorder", 2.5)
    broker._http._client.timeout = httpx.Timeout(1.0)  # type: ignore[attr-defined]
    request = OrderRequest(ACCT, "MESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("6640.00"))
    order = await engine.place(request)
    sent = [p for _, p in fake.requests].count("order/placeorder")
    assert order.order_id.isdigit() and order.status is OrderStatus.WORKING, (order.reject_reason, sent)
    assert fake.clord_ids[request.client_order_id] == 1
    assert [p for _, p in fake.requests].count("order/placeorder") == 2
    errors = journal.entries(kind="error", ref=request.client_order_id)
    assert len(errors) == 1 and "no answer" in errors[0].data["error"]


async def test_find_order_by_client_order_id_after_a_restart(fake, connected, instruments, tmp_path):
    broker, _ = connected
    order = await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6640.00"))
    fresh = make(fake, instruments, tmp_path)
    await fresh.connect()
    try:
        fresh._replica.order_by_clord.clear()  # as if the stream had not mentioned it
        found = await fresh.find_order(ACCT, order.client_order_id)
        assert found is not None and found.order_id == order.order_id
        assert found.client_order_id == order.client_order_id
        assert await fresh.find_order(ACCT, "tt-never-sent") is None
        assert await fresh.find_order("tv:DEMO654321", order.client_order_id) is None
    finally:
        await fresh.close()


async def test_find_order_goes_by_the_orders_own_ids_when_lists_are_capped(fake, connected):
    """example-api-faq (data size limits): a list answer is capped at a variable number of
    entities, so ``command/list`` can miss the order; its own commands (``command/deps``) do not."""
    broker, _ = connected
    orders = [
        await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal(f"66{30 + i}.00"))
        for i in range(3)
    ]
    fake.list_cap = 2  # the oldest two entities of any list
    broker._replica.order_by_clord.clear()  # as if the stream had not said which client id is which
    broker._replica.clord_by_order.clear()
    last = orders[-1]
    found = await broker.find_order(ACCT, last.client_order_id)
    assert found is not None and found.order_id == last.order_id
    assert ("GET", "command/list") not in fake.requests


async def test_a_miss_that_may_be_truncation_is_not_proof_of_absence(fake, connected):
    broker, events = connected
    await market(broker, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=Decimal("6630.00"))
    fake.list_cap = 1
    fake.refuse_sockets = True
    mark = events.mark()
    await fake.drop_sockets("trading")  # no stream to say every command of the account
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.RECONNECTING, since=mark)
    with pytest.raises(BrokerError, match="cannot tell") as err:
        await broker.find_order(ACCT, "tt-lost-reply")
    assert err.value.sent is None
    fake.refuse_sockets = False
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=mark)
    assert await broker.find_order(ACCT, "tt-lost-reply") is None  # the stream is whole again


# =========================================================================== the fake is strict


async def test_fake_rejects_malformed_requests_like_the_vendor(fake):
    async with httpx.AsyncClient(base_url=fake.rest_url) as http:
        assert (await http.get("/account/list")).status_code == 401
        grant = (
            await http.post(
                "/auth/AccessTokenRequest",
                json={
                    "name": fake.username,
                    "password": fake.password,
                    "appId": "x",
                    "appVersion": "1",
                    "cid": str(fake.cid),
                    "sec": fake.sec,
                },
            )
        ).json()
        auth = {"Authorization": f"Bearer {grant['accessToken']}"}
        acct = next(a for a in (await http.get("/account/list", headers=auth)).json() if a["name"] == "DEMO123456")
        base = {"accountSpec": "DEMO123456", "accountId": acct["id"], "action": "Buy", "symbol": "MESZ6",
                "orderQty": 1, "orderType": "Limit", "price": 6640.0, "isAutomated": True}  # fmt: skip

        async def place(**changes: Any) -> httpx.Response:
            body = {k: v for k, v in {**base, **changes}.items() if v is not None}
            return await http.post("/order/placeOrder", json=body, headers=auth)

        assert (await place(orderQty=None)).status_code == 400
        assert (await place(orderQty=0)).status_code == 400
        assert (await place(action="Long")).status_code == 400
        assert (await place(orderType="Limitt")).status_code == 400
        assert (await place(orderQuantity=1)).status_code == 400
        assert (await place(price=6640.1)).json()["failureReason"] == "InvalidPrice"
        assert (await place(price=None)).json()["failureReason"] == "InvalidPrice"
        assert (await place(symbol="ZZZ9")).json()["failureReason"] == "InvalidContract"
        assert (await place(accountSpec="SOMEONE")).json()["failureReason"] == "Unauthorized"
        assert "orderId" in (await place()).json()
        assert (await http.get("/contract/find", params={"name": "NOPE"}, headers=auth)).status_code == 404
        assert (await http.get("/contract/find", params={"name": "mesz6"}, headers=auth)).json()["name"] == "MESZ6"
        fake.expire_tokens()
        assert (await http.get("/account/list", headers=auth)).status_code == 401


async def test_fake_socket_rejects_bad_frames_and_unauthorised_requests(fake):
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send("order/list\n1\n\n")
        assert parse_frame(await _next_data(ws)) == ("a", [{"s": 401, "i": 1, "d": "Not authorized"}])
        await ws.send("authorize\n2\n\nnot-a-token")
        assert parse_frame(await _next_data(ws))[1][0]["s"] == 401
        await ws.send("this is not a request")
        kind, items = parse_frame(await _next_data(ws))
        assert kind == "a" and items[0]["s"] == 400  # answered, and the socket stays open
    assert fake.bad_frames == 1


async def _next_data(ws: Any) -> str:
    while True:
        frame = await asyncio.wait_for(ws.recv(), 5)
        if frame != "h":
            return frame


# =========================================================================== secrets


async def test_no_secret_in_any_log_line(fake, instruments, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    broker = make(fake, instruments, tmp_path)
    events = Collector(broker)
    await broker.connect()
    await broker.subscribe_quotes(["MESZ6"])
    await market(broker, Side.BUY, 1)
    fake.clock.advance(timedelta(minutes=80))
    await fake.until(lambda: fake.renewals == 1)
    fake.expire_tokens()
    await market(broker, Side.SELL, 1)
    await fake.drop_sockets()
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.RECONNECTING)
    await events.wait_for(ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, since=events.mark())
    await broker.close()
    await events.stop()
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "tradovate" in text.lower()  # logging really was captured
    assert "> TEXT 'authorize\\n0\\n\\n***" in text  # the wire log ran, with the token masked
    secrets = [fake.password, fake.sec, *fake.tokens]
    assert len(fake.tokens) >= 6
    for secret in secrets:
        assert secret not in text
        for i in range(0, len(secret) - 12, 4):
            assert secret[i : i + 12] not in text, "a fragment of a secret was logged"
    events_text = "\n".join(repr(e) for e in events.items)
    for secret in secrets:
        assert secret not in events_text


# =========================================================================== through the engine


async def _next(sub: Any, kind: type, pred: Callable[[Any], bool] = lambda e: True, within: float = 5) -> Any:
    async def _wait() -> Any:
        while True:
            event = await sub.get()
            if isinstance(event, kind) and pred(event):
                return event

    return await asyncio.wait_for(_wait(), within)


@pytest.fixture
async def engine_setup(fake, instruments, tmp_path, caplog):
    from tterm.core.clock import CmeClock
    from tterm.core.engine import Engine
    from tterm.core.journal import Journal
    from tterm.risk.pretrade import StaleDataCheck
    from tterm.risk.settings import RiskSettings

    caplog.set_level(logging.DEBUG)
    broker = make(fake, instruments, tmp_path)
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(
        brokers=[broker],
        instruments=instruments,
        journal=journal,
        clock=CmeClock(now=fake.clock.now),
        checks=[StaleDataCheck(RiskSettings(stale_after_seconds=5))],
    )
    await engine.start()
    sub = engine.events("test")
    yield engine, sub, journal
    await engine.stop()
    journal.close()


async def test_quotes_fills_pnl_and_flatten_flow_through_the_engine(fake, engine_setup, caplog):
    engine, sub, journal = engine_setup
    assert [a.id for a in engine.accounts] == [ACCT, "tv:DEMO654321"]
    assert await engine.subscribe(["MES1!"]) == ["MESZ6"]
    await _next(sub, Quote, lambda q: q.symbol == "MESZ6")

    order = await engine.place(OrderRequest(account=ACCT, symbol="MES1!", side=Side.BUY, quantity=2))
    assert order.order_id.isdigit(), order.reject_reason
    fill = await _next(sub, Fill, lambda f: f.order_id == order.order_id)
    assert fill.price == Decimal("6650.25") and fill.broker == "tv"
    await _next(sub, Position, lambda p: p.quantity == 2)
    fake.set_quote("MESZ6", bid="6652.00", ask="6652.25", last="6652.00")
    marked = await _next(sub, Position, lambda p: p.quantity == 2 and p.unrealized_pnl > 0)
    assert marked.unrealized_pnl == Decimal("17.50")

    flattened = await engine.flatten(ACCT)
    assert any(o.side is Side.SELL and o.quantity == 2 for o in flattened)
    flat = await _next(sub, Position, lambda p: p.quantity == 0)
    assert flat.realized_pnl < Decimal("17.50")  # 17.50 gross, less fees
    kinds = {e.kind for e in journal.entries()}
    assert {"order_request", "order_ack", "fill", "connection"} <= kinds

    await engine.stop()
    rows = "\n".join(repr(e.data) for e in journal.entries())
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in [fake.password, fake.sec, *fake.tokens]:
        assert secret not in rows and secret not in logs


async def test_a_silent_feed_holds_orders_at_the_engine(fake, engine_setup):
    engine, sub, journal = engine_setup
    await engine.subscribe(["MESZ6"])
    await _next(sub, Quote)
    fake.silent = True
    fake.clock.advance(10)  # no quote for longer than the 5 s the stale check allows
    await _next(sub, ConnectionStatus, lambda s: s.state is ConnectionState.STALE)
    held = await engine.place(OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1))
    assert held.status is OrderStatus.REJECTED
    assert held.reject_reason.startswith("market data for MESZ6 is stale (last quote 10s ago")
    (decision,) = journal.entries(kind="risk_decision", ref=held.client_order_id)
    assert decision.data["check"] == "stale"
    assert not any(b.get("clOrdId") == held.client_order_id for b in fake.order_bodies)
    fake.silent = False
    await _next(sub, ConnectionStatus, lambda s: s.state is ConnectionState.CONNECTED, within=8)
    fake.set_quote("MESZ6", bid="6650.25", ask="6650.50")
    await _next(sub, Quote, lambda q: q.bid == Decimal("6650.25"))
    order = await engine.place(OrderRequest(account=ACCT, symbol="MESZ6", side=Side.BUY, quantity=1))
    assert order.order_id.isdigit(), order.reject_reason
