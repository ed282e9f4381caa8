"""The broker's dry run over the hub: an attached TUI asks the hub's Tastytrade account for a dry
run (``broker_preview``) on the strict fake; the OrderPreview crosses the wire exactly, a reject
comes back with the vendor's reason, nothing is placed, and paper says it has no previews."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.hub_support import TOKEN, hub_rig, hub_settings
from tests.integration.tastytrade_support import MARGIN, make_broker, start_engine, start_fake
from tterm.core.client import EngineError
from tterm.core.models import OrderPreview, OrderRequest, OrderSource, OrderType, Side
from tterm.hub import wire
from tterm.hub.remote import RemoteEngineClient
from tterm.hub.service import Hub

D = Decimal


def test_an_order_preview_crosses_the_wire_exactly() -> None:
    preview = OrderPreview(broker="tt", accepted=False, rejects=("not enough buying power",),
                           warnings=("market is closed",), order_value=D("663325.00"), commission=D("1.05"),
                           buying_power_after=D("-12.50"))  # fmt: skip
    assert wire.decode(wire.encode(preview)) == preview


async def test_broker_preview_over_the_hub_on_the_tastytrade_fake(tmp_path: Path) -> None:
    fake = await start_fake()
    fake.set_quote("/MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
    run = None
    hub = None
    client = None
    try:
        broker = make_broker(fake, tmp_path)
        run = await start_engine(broker, broker.master, tmp_path)
        await run.engine.watch(["MESZ6"])
        await run.until(lambda: run.engine.quote("MESZ6") is not None, "a quote")
        hub = Hub(run.engine, hub_settings(strategies={}), data_dir=tmp_path, webhook_secret=None, api_token=TOKEN)
        port = await hub.start("127.0.0.1", 0)
        client = RemoteEngineClient(f"ws://127.0.0.1:{port}", TOKEN)
        await client.connect()
        snap = await client.snapshot()
        assert {a.id: a.previews for a in snap.accounts}[MARGIN] is True
        ask = OrderRequest(account=MARGIN, symbol="MESZ6", side=Side.BUY, quantity=1, order_type=OrderType.LIMIT,
                           limit_price=D("6640.00"), source=OrderSource.TICKET)  # fmt: skip
        preview = await client.broker_preview(ask)
        assert isinstance(preview, OrderPreview)
        assert preview.accepted and preview.commission == D("1.05") and preview.buying_power_after is not None
        too_big = await client.broker_preview(OrderRequest(account=MARGIN, symbol="MESZ6", side=Side.BUY,
                                                           quantity=200, source=OrderSource.TICKET))  # fmt: skip
        assert not too_big.accepted and any("buying power" in r for r in too_big.rejects)
        assert not fake.book.orders, "a dry run placed an order"
        rows = run.engine.journal.entries(kind="broker_preview")
        assert len(rows) == 2 and rows[0].ref == ask.client_order_id and rows[1].data["accepted"] is False
        with pytest.raises(EngineError, match="unknown account"):
            await client.broker_preview(OrderRequest(account="tt:NOPE", symbol="MESZ6", side=Side.BUY, quantity=1))
    finally:
        if client is not None:
            await client.close()
        if hub is not None:
            await hub.stop()
        if run is not None:
            await run.engine.stop()
        await fake.stop()


async def test_paper_has_no_previews_over_the_hub(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        await client.connect()
        try:
            snap = await client.snapshot()
            assert not any(a.previews for a in snap.accounts)
            with pytest.raises(EngineError, match="order previews"):
                await client.broker_preview(OrderRequest(account="paper:A", symbol="MES1!", side=Side.BUY, quantity=1))
        finally:
            await client.close()
