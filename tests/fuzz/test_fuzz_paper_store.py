"""The paper store's JSON rows (tterm/brokers/paper/store.py) fuzzed: saved orders, fills, working
orders and instruments, damaged; each decodes to a valid object or raises one of store.DAMAGE,
which load() turns into a StoreError naming the file (never another exception, never a NaN price
or a negative quantity loaded into the matching engine). And end to end: a damaged row in a real
state file is a StoreError on load."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from tests.fuzz.budget import FUZZ
from tests.fuzz.vendor_json import damaged
from tterm.brokers.paper import store as s
from tterm.brokers.paper.matching import Working
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Bracket, Fill, Order, OrderRole, OrderSource, OrderStatus, OrderType, Side

MASTER = InstrumentMaster()
MES = MASTER.resolve("MES")
AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ORDER = Order(
    order_id="order-7",
    client_order_id="tt-7",
    account="paper:FUT50K",
    symbol=MES.symbol,
    side=Side.BUY,
    quantity=2,
    order_type=OrderType.LIMIT,
    status=OrderStatus.WORKING,
    limit_price=Decimal("6650.25"),
    role=OrderRole.ENTRY,
    source=OrderSource.TICKET,
    broker="paper",
    created_at=AT,
    updated_at=AT,
)
FILL = Fill(
    fill_id="fill-3",
    order_id="order-7",
    client_order_id="tt-7",
    account="paper:FUT50K",
    symbol=MES.symbol,
    side=Side.BUY,
    quantity=2,
    price=Decimal("6650.25"),
    fee=Decimal("1.24"),
    broker="paper",
    ts=AT,
)
WORKING = Working(
    order=ORDER,
    instrument=MES,
    trade_date=date(2026, 11, 24),
    seq=4,
    bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4),
    notional=Decimal("66502.5"),
)
ROWS: dict[str, Any] = {
    "order": s.order_to_json(ORDER),
    "fill": s.fill_to_json(FILL),
    "working": s.working_to_json(WORKING),
    "instrument": s.instrument_to_json(MES),
}
DECODE = {
    "order": s.order_from_json,
    "fill": s.fill_from_json,
    "working": s.working_from_json,
    "instrument": s.instrument_from_json,
}


def _valid(obj: Any) -> None:
    order = obj.order if isinstance(obj, Working) else obj
    if isinstance(order, Order):
        assert order.quantity >= 0 and order.filled_quantity >= 0
        for p in (order.limit_price, order.stop_price, order.avg_fill_price, order.trail_amount):
            assert p is None or p.is_finite()
    if isinstance(obj, Fill):
        assert obj.quantity >= 0 and obj.price.is_finite() and obj.fee.is_finite()
    if isinstance(obj, Working):
        assert obj.notional.is_finite() and obj.instrument.tick_size.is_finite()


@FUZZ
@given(damaged([("order", ROWS["order"]), ("fill", ROWS["fill"]), ("working", ROWS["working"]),
                ("instrument", ROWS["instrument"])], most=5))  # fmt: skip
def test_a_damaged_saved_row_decodes_or_is_damage_load_reports(item: Any) -> None:
    if not (isinstance(item, tuple | list) and len(item) == 2 and item[0] in DECODE):
        return  # the kind itself was damaged: nothing to decode
    kind, row = item
    try:
        obj = DECODE[kind](row)
    except s.DAMAGE:
        return
    _valid(obj)


def test_the_rows_round_trip() -> None:
    assert s.order_from_json(ROWS["order"]) == ORDER
    assert s.fill_from_json(ROWS["fill"]) == FILL
    assert s.working_from_json(json.loads(json.dumps(ROWS["working"]))).order == ORDER


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit_price", "abc"), ("limit_price", "NaN"), ("quantity", -3), ("created_at", 5), ("legs", [["MES"]])],
)
def test_a_damaged_row_in_a_real_file_is_a_store_error(tmp_path: Path, field: str, value: Any) -> None:
    path = tmp_path / "paper.sqlite3"
    s.PaperStore(path).close()
    row = {"order": {**ROWS["order"], field: value}}
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO orders (order_id, is_open, data) VALUES (?, 0, ?)", ("order-7", json.dumps(row)))
    store = s.PaperStore(path)
    try:
        with pytest.raises(s.StoreError, match="paper state file is damaged"):
            store.load()
    finally:
        store.close()
