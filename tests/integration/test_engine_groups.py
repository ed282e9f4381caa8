"""Contract v2 in the engine and router: multi-leg checks, OCO/OTOCO and brackets (native and
emulated), the retry rules the router owns, capability refusals and market-data routing.

Runs on the real paper broker; subclasses take capabilities away to prove emulation and refusal.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.integration.test_engine_paper import CASH, FUT, NOW, Harness, req
from tterm.brokers.paper.broker import PaperBroker
from tterm.core.broker import BrokerError, Capabilities, NotSupported, RateLimited
from tterm.core.client import EngineError
from tterm.core.emulation import HELD_PREFIX
from tterm.core.models import (
    AssetClass,
    Bracket,
    GroupKind,
    Instrument,
    InstrumentAdded,
    Order,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    Timeframe,
)

D = Decimal
PLAIN = Capabilities(
    brackets=False,
    oco=False,
    otoco=False,
    multi_leg=False,
    futures=True,
    equities=True,
    options=True,
)


class PlainPaper(PaperBroker):
    """A paper broker with no native brackets or groups: the engine must link orders itself."""

    capabilities = PLAIN


class SpreadPaper(PaperBroker):
    """Takes multi-leg orders (the router's checks are what is under test here)."""

    capabilities = PLAIN.with_changes(multi_leg=True)
    sent: list[OrderRequest]

    def preflight(self, request: OrderRequest) -> str:
        return "" if request.legs else super().preflight(request)  # what place() below takes

    async def place(self, request: OrderRequest) -> Order:
        if request.legs:
            self.sent = [*getattr(self, "sent", []), request]
            return Order.from_request(request, order_id=f"spread-{len(self.sent)}", status=OrderStatus.WORKING)
        return await super().place(request)


async def _start(tmp_path, cls=PlainPaper) -> Harness:
    h = Harness(tmp_path, broker_cls=cls)
    await h.engine.start()
    await h.quote("MES1!", "6800.00", "6800.25")
    return h


async def _settle(h: Harness) -> None:
    await h.engine.settle()
    await h.engine.emulator.settle()
    await h.engine.settle()


def _open(h: Harness) -> list[Order]:
    return h.engine.open_orders(FUT)


async def _by_client_id(h: Harness) -> dict[str, Order]:
    return {o.client_order_id: o for o in (await h.engine.snapshot()).orders}


# --------------------------------------------------------------------------- emulated groups


async def test_emulated_oco_cancels_the_other_side_when_one_fills(tmp_path):
    h = await _start(tmp_path)
    await h.engine.place(req(quantity=2))  # long 2 at the ask
    await _settle(h)
    tp = req(side=Side.SELL, quantity=2, order_type=OrderType.LIMIT, limit_price=D("6810.00"), reduce_only=True)
    sl = req(side=Side.SELL, quantity=2, order_type=OrderType.STOP, stop_price=D("6790.00"), reduce_only=True)
    orders = await h.engine.place_group(OrderGroup(kind=GroupKind.OCO, orders=(tp, sl)))
    assert [o.status for o in orders] == [OrderStatus.WORKING, OrderStatus.WORKING]
    assert h.engine.emulator.links == 1
    await h.quote("MES1!", "6810.25", "6810.50")  # through the take-profit
    await _settle(h)
    state = await _by_client_id(h)
    assert state[tp.client_order_id].status is OrderStatus.FILLED
    assert state[sl.client_order_id].status is OrderStatus.CANCELLED
    assert h.engine.position(FUT, "MESZ6").quantity == 0
    texts = [e.data["text"] for e in h.journal.entries(kind="emulation")]
    assert any("OCO linked by tterm" in t for t in texts) and any("cancelled" in t for t in texts)
    assert h.engine.emulator.links == 0
    await h.engine.stop()


async def test_emulated_bracket_holds_exits_until_the_entry_fills_then_prices_them_from_the_fill(tmp_path):
    h = await _start(tmp_path)
    entry = req(
        quantity=1,
        order_type=OrderType.LIMIT,
        limit_price=D("6795.00"),
        bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4),
    )
    first = await h.engine.place(entry)
    assert first.status is OrderStatus.WORKING
    held = [o for o in _open(h) if o.order_id.startswith(HELD_PREFIX)]
    assert {o.role for o in held} == {OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS}
    assert all(o.emulated and o.status is OrderStatus.PENDING for o in held)
    with pytest.raises(EngineError, match="tterm holds until its entry fills"):
        await h.engine.modify(FUT, held[0].order_id, quantity=2)
    await h.quote("MES1!", "6794.75", "6795.00")  # the entry fills at 6795.00
    await _settle(h)
    tp = next(o for o in _open(h) if o.order_type is OrderType.LIMIT and o.side is Side.SELL)
    sl = next(o for o in _open(h) if o.order_type is OrderType.STOP)
    assert tp.limit_price == D("6797.00") and sl.stop_price == D("6794.00")  # 8 and 4 ticks from the fill
    assert not any(o.order_id.startswith(HELD_PREFIX) for o in _open(h))
    await h.quote("MES1!", "6793.50", "6793.75")  # through the stop
    await _settle(h)
    assert h.engine.position(FUT, "MESZ6").quantity == 0
    assert not _open(h)  # the take-profit was cancelled by the emulated OCO
    await h.engine.stop()


async def test_otoco_trigger_cancelled_unfilled_cancels_its_held_exits(tmp_path):
    h = await _start(tmp_path)
    trigger = req(order_type=OrderType.LIMIT, limit_price=D("6790.00"))
    tp = req(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=D("6800.00"))
    sl = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6785.00"))
    orders = await h.engine.place_group(OrderGroup(kind=GroupKind.OTOCO, orders=(trigger, tp, sl)))
    assert orders[0].status is OrderStatus.WORKING and len(orders) == 3
    await h.engine.cancel(FUT, orders[0].order_id)
    await _settle(h)
    assert not _open(h)
    last = await _by_client_id(h)
    assert last[tp.client_order_id].status is OrderStatus.CANCELLED
    assert "trigger cancelled" in last[tp.client_order_id].reject_reason
    await h.engine.stop()


async def test_a_held_exit_can_be_cancelled_before_it_is_sent(tmp_path):
    h = await _start(tmp_path)
    trigger = req(order_type=OrderType.LIMIT, limit_price=D("6790.00"))
    tp = req(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=D("6800.00"))
    sl = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6785.00"))
    orders = await h.engine.place_group(OrderGroup(kind=GroupKind.OTOCO, orders=(trigger, tp, sl)))
    held_sl = next(o for o in orders if o.client_order_id == sl.client_order_id)
    done = await h.engine.cancel(FUT, held_sl.order_id)
    assert done.status is OrderStatus.CANCELLED
    await h.quote("MES1!", "6789.75", "6790.00")  # the trigger fills: only the take-profit goes out
    await _settle(h)
    sent = [o for o in _open(h) if not o.order_id.startswith(HELD_PREFIX)]
    assert [(o.order_type, o.limit_price) for o in sent] == [(OrderType.LIMIT, D("6800.00"))]
    await h.engine.stop()


async def test_emulated_links_survive_a_restart(tmp_path):
    h = await _start(tmp_path)
    await h.engine.place(req(quantity=1))
    await _settle(h)
    tp = req(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=D("6810.00"), reduce_only=True)
    sl = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6790.00"), reduce_only=True)
    await h.engine.place_group(OrderGroup(kind=GroupKind.OCO, orders=(tp, sl)))
    await h.engine.stop()
    h.journal.close()
    again = Harness(tmp_path, broker_cls=PlainPaper)
    await again.engine.start()
    assert again.engine.emulator.links == 1
    await again.quote("MES1!", "6810.25", "6810.50")
    await _settle(again)
    assert not again.engine.open_orders(FUT)
    assert again.engine.position(FUT, "MESZ6").quantity == 0
    await again.engine.stop()


async def test_native_groups_go_to_the_broker_in_one_call(tmp_path):
    calls: list[OrderGroup] = []

    class NativeOco(PaperBroker):
        capabilities = PLAIN.with_changes(oco=True)

        async def place_group(self, group: OrderGroup) -> list[Order]:
            calls.append(group)
            return [await self.place(o) for o in group.orders]

    h = await _start(tmp_path, NativeOco)
    a = req(order_type=OrderType.STOP, stop_price=D("6810.00"))
    b = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6790.00"))
    orders = await h.engine.place_group(OrderGroup(kind=GroupKind.OCO, orders=(a, b)))
    assert len(calls) == 1 and [o.status for o in orders] == [OrderStatus.WORKING] * 2
    assert h.engine.emulator.links == 0
    assert h.journal.entries(kind="group_request")
    await h.engine.stop()


@pytest.mark.parametrize(
    ("orders", "reason"),
    [
        (lambda: (req(order_type=OrderType.LIMIT, limit_price=D("6790")),), "takes two orders"),
        (
            lambda: (
                req(order_type=OrderType.LIMIT, limit_price=D("6790")),
                req(account=CASH, symbol="AAPL", order_type=OrderType.LIMIT, limit_price=D("100")),
            ),
            "must be in one account",
        ),
        (
            lambda: (
                req(order_type=OrderType.LIMIT, limit_price=D("6790"), bracket=Bracket(stop_loss_ticks=4)),
                req(order_type=OrderType.LIMIT, limit_price=D("6789")),
            ),
            "cannot carry its own bracket",
        ),
        (
            lambda: (
                req(order_type=OrderType.LIMIT, limit_price=D("6790.10")),
                req(order_type=OrderType.LIMIT, limit_price=D("6789")),
            ),
            "off the tick grid",
        ),
    ],
)
async def test_bad_oco_groups_are_refused_whole_and_nothing_is_sent(tmp_path, orders, reason):
    h = await _start(tmp_path)
    result = await h.engine.place_group(OrderGroup(kind=GroupKind.OCO, orders=orders()))
    assert all(o.status is OrderStatus.REJECTED for o in result)
    assert reason in result[0].reject_reason
    assert not await h.broker.orders()
    await h.engine.stop()


async def test_otoco_exits_must_close_the_trigger(tmp_path):
    h = await _start(tmp_path)
    trigger = req(order_type=OrderType.LIMIT, limit_price=D("6790.00"))
    same_side = req(order_type=OrderType.LIMIT, limit_price=D("6780.00"))
    sl = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6785.00"))
    result = await h.engine.place_group(OrderGroup(kind=GroupKind.OTOCO, orders=(trigger, same_side, sl)))
    assert "other side of the trigger" in result[0].reject_reason
    bigger = req(side=Side.SELL, quantity=3, order_type=OrderType.LIMIT, limit_price=D("6800.00"))
    result = await h.engine.place_group(OrderGroup(kind=GroupKind.OTOCO, orders=(trigger, bigger, sl)))
    assert "differs from the trigger's 1" in result[0].reject_reason
    assert not await h.broker.orders()
    await h.engine.stop()


# --------------------------------------------------------------------------- multi-leg orders


def _opt(expiry: date, right: str, strike: int) -> str:
    return f"AAPL  {expiry:%y%m%d}{right}{strike * 1000:08d}"


EXP = date(2026, 12, 18)


def vertical(**kw) -> OrderRequest:
    base = dict(
        account=CASH,
        symbol="",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.LIMIT,
        limit_price=D("2.15"),
        price_effect=PriceEffect.DEBIT,
        legs=(
            OrderLeg(symbol=_opt(EXP, "C", 190), side=Side.BUY, effect=PositionEffect.OPEN),
            OrderLeg(symbol=_opt(EXP, "C", 195), side=Side.SELL, effect=PositionEffect.OPEN),
        ),
        source=OrderSource.TICKET,
    )
    base.update(kw)
    return OrderRequest(**base)


async def test_a_vertical_is_routed_as_one_order_on_its_strategy_instrument(tmp_path):
    h = await _start(tmp_path, SpreadPaper)
    order = await h.engine.place(vertical())
    assert order.status is OrderStatus.WORKING, order.reject_reason
    (sent,) = h.broker.sent
    assert [leg.symbol for leg in sent.legs] == [_opt(EXP, "C", 190), _opt(EXP, "C", 195)]
    assert sent.symbol.startswith("+1 AAPL") and sent.price_effect is PriceEffect.DEBIT
    await h.engine.stop()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {
                "legs": (
                    OrderLeg(symbol=_opt(EXP, "C", 190), side=Side.BUY),
                    OrderLeg(symbol="MSFT  261218C00400000", side=Side.SELL),
                )
            },
            "different underlyings",
        ),
        (
            {
                "legs": (
                    OrderLeg(symbol=_opt(EXP, "C", 190), side=Side.BUY, ratio=0),
                    OrderLeg(symbol=_opt(EXP, "C", 195), side=Side.SELL),
                )
            },
            "ratio must be a whole number of at least 1",
        ),
        (
            {
                "legs": (
                    OrderLeg(symbol=_opt(EXP, "C", 190), side=Side.BUY),
                    OrderLeg(symbol=_opt(EXP, "C", 195), side=Side.SELL, account=FUT),
                )
            },
            "a multi-leg order trades one account",
        ),
        (
            {
                "legs": (
                    OrderLeg(symbol=_opt(date(2026, 11, 20), "C", 190), side=Side.BUY),
                    OrderLeg(symbol=_opt(EXP, "C", 195), side=Side.SELL),
                )
            },
            "expired on 2026-11-20",
        ),
        ({"limit_price": D("2.155")}, "off the tick grid"),
        ({"price_effect": None}, "marked debit or credit"),
        ({"side": Side.SELL}, "a net debit order is a buy"),
        ({"limit_price": D("-1.00")}, "must be positive"),
        ({"order_type": OrderType.STOP, "limit_price": None, "stop_price": D("2.00")}, "market or limit"),
        ({"legs": (OrderLeg(symbol=_opt(EXP, "C", 190), side=Side.BUY),)}, "at least two legs"),
    ],
)
async def test_malformed_multi_leg_orders_are_refused_with_the_reason(tmp_path, changes, reason):
    h = await _start(tmp_path, SpreadPaper)
    order = await h.engine.place(vertical(**changes))
    assert order.status is OrderStatus.REJECTED
    assert reason in order.reject_reason
    assert not getattr(h.broker, "sent", [])
    await h.engine.stop()


async def test_a_broker_without_multi_leg_refuses_plainly(tmp_path):
    h = await _start(tmp_path)
    order = await h.engine.place(vertical())
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "broker paper does not take multi-leg orders"
    await h.engine.stop()


# --------------------------------------------------------------------------- capabilities and retry


async def test_an_order_type_the_broker_lacks_is_refused(tmp_path):
    class NoTrail(PaperBroker):
        capabilities = PLAIN

    h = await _start(tmp_path, NoTrail)
    order = await h.engine.place(req(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_amount=D("2.00")))
    assert order.reject_reason == "broker paper does not take trailing-stop orders"
    bad = await h.engine.place(req(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_amount=D("0.10")))
    assert "not a whole number of ticks" in bad.reject_reason
    await h.engine.stop()


class FlakyPaper(PaperBroker):
    """Fails ``place`` in chosen ways; counts what reached it and what was looked up."""

    capabilities = PLAIN
    failures: list[Exception]
    places = 0
    lookups = 0

    async def place(self, request: OrderRequest) -> Order:
        self.places += 1
        if self.failures:
            exc = self.failures.pop(0)
            if getattr(exc, "after_send", False):
                await super().place(request)
            raise exc
        return await super().place(request)

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        self.lookups += 1
        return await super().find_order(account, client_order_id)


def _after_send(exc: Exception) -> Exception:
    exc.after_send = True  # type: ignore[attr-defined]
    return exc


async def test_a_failure_known_not_to_have_left_is_resent_without_a_lookup(tmp_path):
    h = await _start(tmp_path, FlakyPaper)
    h.broker.failures = [BrokerError("local limiter: not sent", sent=False)]
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790")))
    assert order.status is OrderStatus.WORKING
    assert (h.broker.places, h.broker.lookups) == (2, 0)
    await h.engine.stop()


async def test_a_rate_limit_is_looked_up_and_never_answered_with_a_resend(tmp_path):
    h = await _start(tmp_path, FlakyPaper)
    h.broker.failures = [RateLimited("429 too many requests", retry_after=60)]
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790")))
    assert order.status is OrderStatus.REJECTED
    assert "rate-limited" in order.reject_reason and "wait 60 s" in order.reject_reason
    assert (h.broker.places, h.broker.lookups) == (1, 1)
    # ...and when the order did arrive before the 429, the lookup finds it: one order, no resend.
    h.broker.failures = [_after_send(RateLimited("429 too many requests"))]
    second = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6789")))
    assert second.status is OrderStatus.WORKING and h.broker.places == 2
    assert len([o for o in await h.broker.orders() if o.is_open]) == 1
    await h.engine.stop()


async def test_without_client_order_id_lookup_a_miss_is_not_proof_and_nothing_is_resent(tmp_path):
    class NoLookup(FlakyPaper):
        capabilities = PLAIN.with_changes(client_order_id_lookup=False)

        async def find_order(self, account: str, client_order_id: str) -> Order | None:
            self.lookups += 1
            return None  # a field match that found nothing

    h = await _start(tmp_path, NoLookup)
    h.broker.failures = [TimeoutError()]
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790")))
    assert order.status is OrderStatus.REJECTED
    assert "cannot look orders up by tterm's id; not re-sent" in order.reject_reason
    assert (h.broker.places, h.broker.lookups) == (1, 1)
    await h.engine.stop()


async def test_not_supported_from_the_adapter_becomes_a_plain_reject(tmp_path):
    h = await _start(tmp_path, FlakyPaper)
    h.broker.failures = [NotSupported("paper", "stop-limit orders on this exchange")]
    order = await h.engine.place(req(order_type=OrderType.LIMIT, limit_price=D("6790")))
    assert order.reject_reason == "not supported by paper: stop-limit orders on this exchange"
    assert h.broker.lookups == 0
    await h.engine.stop()


# --------------------------------------------------------------------------- market-data verbs and instruments


class NoMarketData(PaperBroker):
    capabilities = PLAIN  # no bars, depth, trades, chains or search


async def test_market_data_verbs_a_broker_lacks_answer_not_supported_and_change_nothing(tmp_path):
    h = await _start(tmp_path, NoMarketData)
    start = NOW - timedelta(hours=1)
    with pytest.raises(EngineError, match=r"^not supported by paper: bars$"):
        await h.engine.bars("MES", Timeframe.M1, start)
    with pytest.raises(EngineError, match=r"^not supported by paper: depth$"):
        await h.engine.subscribe_depth(["MES"])
    with pytest.raises(EngineError, match=r"^not supported by paper: trades$"):
        await h.engine.subscribe_trades(["MES"])
    with pytest.raises(EngineError, match=r"^not supported by paper: option chains$"):
        await h.engine.option_chain("AAPL")
    assert h.engine.subscriptions("depth") == {} and h.engine.subscriptions("trades") == {}
    with pytest.raises(EngineError, match="needs no interactive login"):
        await h.engine.login_start("paper")
    await h.engine.stop()


async def test_depth_and_trade_feeds_are_reference_counted_per_contract(tmp_path):
    calls: list[tuple[str, list[str]]] = []

    class Feeds(PaperBroker):
        capabilities = PLAIN.with_changes(depth=True, trades=True)

        async def subscribe_depth(self, symbols) -> None:
            calls.append(("depth+", list(symbols)))

        async def unsubscribe_depth(self, symbols) -> None:
            calls.append(("depth-", list(symbols)))

        async def subscribe_trades(self, symbols) -> None:
            calls.append(("trades+", list(symbols)))

        async def unsubscribe_trades(self, symbols) -> None:
            calls.append(("trades-", list(symbols)))

    h = await _start(tmp_path, Feeds)
    assert await h.engine.subscribe_depth(["MES1!"]) == ["MESZ6"]
    await h.engine.subscribe_depth(["MESZ6"])
    await h.engine.subscribe_trades(["MES"])
    assert h.engine.subscriptions("depth") == {"MESZ6": 2} and h.engine.feed_source("MESZ6", "depth") == "paper"
    await h.engine.unsubscribe_depth(["MES"])
    await h.engine.unsubscribe_depth(["MES"])
    await h.engine.unsubscribe_trades(["MES"])
    assert calls == [("depth+", ["MESZ6"]), ("trades+", ["MESZ6"]), ("depth-", ["MESZ6"]), ("trades-", ["MESZ6"])]
    with pytest.raises(EngineError, match="unknown symbol 'NOPE'"):
        await h.engine.subscribe_depth(["NOPE"])
    await h.engine.stop()


async def test_an_instrument_a_broker_looks_up_is_learned_and_published(tmp_path):
    learned = Instrument(
        symbol="ZZTOP",
        asset_class=AssetClass.EQUITY,
        tick_size=D("0.01"),
        tick_value=D("0.01"),
        description="A stock only the broker knows",
    )

    class Knows(PaperBroker):
        capabilities = PLAIN.with_changes(search=True)

        async def lookup_instrument(self, symbol: str) -> Instrument | None:
            return learned if symbol.upper() == "ZZTOP" else None

        async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
            return [learned] if "TOP" in text.upper() else []

    h = await _start(tmp_path, Knows)
    sub = h.engine.events("test")
    inst = await h.engine.find_instrument("zztop")
    assert inst == learned and h.engine.instrument("ZZTOP") == learned
    assert any(isinstance(e, InstrumentAdded) and e.instrument == learned for e in sub.drain())
    assert learned in (await h.engine.snapshot()).instruments
    hits = await h.engine.search_instruments("top")
    assert learned in hits
    assert next(i.symbol for i in await h.engine.search_instruments("MES")) == "MESZ6"
    with pytest.raises(EngineError, match="give some text"):
        await h.engine.search_instruments("  ")
    await h.engine.stop()
