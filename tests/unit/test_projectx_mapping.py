"""ProjectX mapping: enums, signed bracket ticks, partial quotes, the depth book, wrapped events,
timestamps and contract names (pure functions, no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tterm.brokers.projectx import mapping as m
from tterm.brokers.projectx import market as mk
from tterm.brokers.projectx.auth import jwt_expiry
from tterm.brokers.projectx.instruments import _pick
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Bracket, OrderRequest, OrderStatus, OrderType, Side

D = Decimal
MES = InstrumentMaster(today=lambda: datetime(2026, 11, 24).date()).resolve("MESZ6")


def body(**kw):
    base = dict(account="px:536", symbol="MESZ6", side=Side.BUY, quantity=2)
    base.update(kw)
    return m.order_body(OrderRequest(**base), 536, "CON.F.US.MES.Z26", MES, last=D("6650.00"), reference=D("6650.25"))


def test_order_bodies_use_the_gateways_integers_and_signed_bracket_ticks() -> None:
    b = body()
    assert (b["type"], b["side"], b["size"], b["contractId"]) == (2, 0, 2, "CON.F.US.MES.Z26")
    assert body(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=D("6651.00"))["side"] == 1
    assert body(order_type=OrderType.STOP, stop_price=D("6655.00"))["type"] == 4
    sl = body(order_type=OrderType.STOP_LIMIT, stop_price=D("6655.00"), limit_price=D("6655.50"))
    assert (sl["type"], sl["stopPrice"], sl["limitPrice"]) == (3, 6655, 6655.5)
    long = body(bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4))
    assert long["stopLossBracket"] == {"ticks": -4, "type": 4} and long["takeProfitBracket"] == {"ticks": 8, "type": 1}
    short = body(side=Side.SELL, bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4))
    assert short["stopLossBracket"]["ticks"] == 4 and short["takeProfitBracket"]["ticks"] == -8
    # Prices become ticks from the reference (6650.25): 6648.25 is 8 ticks under it.
    priced = body(bracket=Bracket(stop_loss_price=D("6648.25"), take_profit_price=D("6651.25")))
    assert priced["stopLossBracket"]["ticks"] == -8 and priced["takeProfitBracket"]["ticks"] == 4
    with pytest.raises(m.Refused, match=r"take-profit 6649\.00 must be above the entry"):
        body(bracket=Bracket(take_profit_price=D("6649.00")))
    with pytest.raises(m.Refused, match=r"stop-loss 6649\.00 must be above the entry .* for a short entry"):
        body(side=Side.SELL, bracket=Bracket(stop_loss_price=D("6649.00")))
    trail = body(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_amount=D("3.00"))
    assert (trail["type"], trail["trailPrice"]) == (5, 6647)  # a level: last 6650.00 less 3.00
    request = OrderRequest(account="px:536", symbol="MESZ6", side=Side.SELL, quantity=1,
                           order_type=OrderType.TRAILING_STOP, trail_amount=D("3.00"))  # fmt: skip
    distance = m.order_body(request, 536, "C", MES, last=None, reference=None, trail_as="distance")
    assert distance["trailPrice"] == 3
    with pytest.raises(m.Refused, match="off MESZ6's tick grid"):
        body(order_type=OrderType.LIMIT, limit_price=D("6650.13"))
    with pytest.raises(m.Refused, match="IOC"):
        from tterm.core.models import TimeInForce

        body(order_type=OrderType.LIMIT, limit_price=D("6650.00"), tif=TimeInForce.IOC)


def test_order_rows_map_statuses_sides_and_trail_distances() -> None:
    row = {"id": 9056, "accountId": 536, "contractId": "CON.F.US.MES.Z26", "status": 1, "type": 1, "side": 1,
           "size": 3, "limitPrice": 6652.5, "stopPrice": None, "fillVolume": 1, "filledPrice": 6652.5,
           "customTag": "tt123", "creationTimestamp": "2026-11-24T15:00:00.1234567+00:00"}  # fmt: skip
    o = m.order_of(row, account="px:536", symbol="MESZ6", broker="px", known=None)
    assert (o.status, o.side, o.order_type, o.client_order_id) == (
        OrderStatus.PARTIALLY_FILLED, Side.SELL, OrderType.LIMIT, "tt123")  # fmt: skip
    assert o.created_at == datetime(2026, 11, 24, 15, 0, 0, 123456, tzinfo=UTC)
    assert {k: m.STATUSES[k] for k in (2, 3, 4, 5, 8)} == {
        2: OrderStatus.FILLED, 3: OrderStatus.CANCELLED, 4: OrderStatus.EXPIRED, 5: OrderStatus.REJECTED,
        8: OrderStatus.PENDING}  # fmt: skip
    trailing = m.order_of({**row, "type": 5, "status": 1, "fillVolume": 0, "stopPrice": 6648.0, "trailPrice": 2.0},
                          account="px:536", symbol="MESZ6", broker="px", known=None)  # fmt: skip
    assert trailing.order_type is OrderType.TRAILING_STOP and trailing.trail_amount == D("2.0")
    assert trailing.stop_price == D("6648.0")
    assert m.signed_size({"type": 2, "size": 3}) == -3 and m.signed_size({"type": 1, "size": 3}) == 3


def test_wrapped_and_bare_user_events_unwrap_alike() -> None:
    entity = {"id": 1, "size": 0}
    assert m.unwrap(entity) == (entity, None)
    assert m.unwrap({"action": 2, "data": entity}) == (entity, 2)
    assert m.unwrap(None) == (None, None)


def test_partial_quotes_merge_into_the_last_full_one() -> None:
    book = mk.QuoteBook()
    full = {"symbol": "F.US.MES", "lastPrice": 6650.0, "bestBid": 6650.0, "bestAsk": 6650.25, "change": 10.0,
            "volume": 100, "timestamp": "2026-11-24T15:00:00.000+00:00"}  # fmt: skip
    q = book.merge("C", full, "MESZ6")
    assert (q.bid, q.ask, q.last, q.prev_close, q.volume) == (D("6650.0"), D("6650.25"), D("6650.0"), D("6640.0"), 100)
    q = book.merge("C", {"symbol": "F.US.MES", "bestBid": 6650.25, "timestamp": "2026-11-24T15:00:01Z"}, "MESZ6")
    assert (q.bid, q.ask, q.last) == (D("6650.25"), D("6650.25"), D("6650.0"))  # the rest kept
    assert q.ts == datetime(2026, 11, 24, 15, 0, 1, tzinfo=UTC)


def test_the_depth_book_resets_updates_and_drops_levels() -> None:
    book = mk.DepthBook(levels=3)
    e = [None, {"type": 6, "price": 0, "volume": 0}, {"type": 2, "price": 10.0, "volume": 5},
         {"type": 2, "price": 9.75, "volume": 7}, {"type": 1, "price": 10.25, "volume": 4},
         {"type": 5, "price": 10.25, "volume": 1}]  # fmt: skip
    d = book.apply("C", e, "X")
    assert [(lv.price, lv.size) for lv in d.bids] == [(D("10.0"), 5), (D("9.75"), 7)]
    assert [(lv.price, lv.size) for lv in d.asks] == [(D("10.25"), 4)]
    d = book.apply("C", [{"type": 2, "price": 10.0, "volume": 0}, {"type": 9, "price": 10.25, "volume": 3}], "X")
    assert [lv.price for lv in d.bids] == [D("10.25"), D("9.75")] and d.asks == ()  # the crossed ask went


def test_contract_names_match_with_one_or_two_year_digits_and_jwt_expiry() -> None:
    rows = [{"id": "CON.F.US.MES.Z26", "name": "MESZ6"}, {"id": "CON.F.US.MES.H27", "name": "MESH27"}]
    assert _pick(rows, "MESZ6")["id"] == "CON.F.US.MES.Z26"
    assert _pick(rows, "MESH7")["id"] == "CON.F.US.MES.H27"
    assert _pick(rows, "CON.F.US.MES.Z26")["name"] == "MESZ6"
    assert _pick(rows, "MESM7") is None
    import base64
    import json

    claims = base64.urlsafe_b64encode(json.dumps({"exp": 1795618800}).encode()).decode().rstrip("=")
    assert jwt_expiry(f"h.{claims}.s") == datetime.fromtimestamp(1795618800, UTC)
    assert jwt_expiry("opaque") is None
