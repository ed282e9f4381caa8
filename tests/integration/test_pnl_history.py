"""P&L history end to end: fills from orders on the paper broker, read back from the journal by
the engine, over the hub's wire, and by ``tterm pnl``; the equity curve matches the fills."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.hub_support import TOKEN, hub_rig
from tests.integration.test_engine_alerts import Rig
from tterm import cli
from tterm.core.client import EngineError
from tterm.core.journal import Journal
from tterm.core.models import Fill, OrderRequest, OrderSource, OrderType, Side
from tterm.hub.remote import RemoteEngineClient

D = Decimal
FUT = "paper:FUT50K"


def cash(fills: list[Fill], point_value: D) -> D:
    return sum((-f.signed_quantity * f.price * point_value - f.fee for f in fills), D(0))


async def trade(rig: Rig, side: Side, qty: int) -> None:
    req = OrderRequest(account=FUT, symbol="MES", side=side, quantity=qty, order_type=OrderType.MARKET,
                       source=OrderSource.PALETTE)  # fmt: skip
    await rig.engine.place(req)
    await rig.engine.settle()


async def test_engine_pnl_history_matches_the_fills_and_the_book(tmp_path: Path) -> None:
    rig = await Rig(tmp_path).start()
    try:
        await rig.engine.watch(["MES"])
        await rig.last("MES", "6800.00")
        await trade(rig, Side.BUY, 2)
        await rig.last("MES", "6804.00")
        await trade(rig, Side.SELL, 3)  # closes 2, opens 1 short
        await rig.last("MES", "6801.00")
        await trade(rig, Side.BUY, 1)
        fills = (await rig.engine.snapshot()).fills
        assert len(fills) == 3 and all(f.fee > 0 for f in fills)
        report = await rig.engine.pnl_history(days=1)
        pv = rig.engine.instrument("MES").point_value
        assert report.open_lots == ()
        assert report.curve[-1].equity == report.net == cash(list(fills), pv)
        assert sum(t.net for t in report.trips) == report.net
        assert [(t.side, t.quantity) for t in report.trips] == [(Side.BUY, 2), (Side.SELL, 1)]
        # The book's realized P&L net of fees says the same.
        assert rig.engine.position(FUT, rig.engine.instrument("MES").symbol).realized_pnl == report.net
        [day] = report.days
        assert day.fills == 3 and day.contracts == 6 and day.trades == 2
        with pytest.raises(EngineError, match="days must be a whole number from 1"):
            await rig.engine.pnl_history(days=0)
        with pytest.raises(EngineError, match="unknown account 'paper:NOPE'"):
            await rig.engine.pnl_history(account="paper:NOPE")
        assert (await rig.engine.pnl_history(account=FUT)).net == report.net
    finally:
        await rig.stop()


async def test_pnl_history_over_the_hub_wire(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        await client.connect()
        try:
            for side in (Side.BUY, Side.SELL):
                await client.place(OrderRequest(account="paper:A", symbol="MES1!", side=side, quantity=1,
                                                source=OrderSource.PALETTE))  # fmt: skip
                await rig.settle()
            remote = await client.pnl_history(days=2)
            local = await rig.engine.pnl_history(days=2)
            assert remote.net == local.net and remote.trips == local.trips and remote.curve == local.curve
            with pytest.raises(EngineError, match="days must be"):
                await client.pnl_history(days=100_000)
        finally:
            await client.close()


def test_tterm_pnl_text_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf, data = tmp_path / "conf", tmp_path / "data"
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    monkeypatch.setenv("TTERM_DATA_DIR", str(data))
    for var in list(os.environ):
        if var.startswith("TTERM_") and var not in ("TTERM_CONFIG_DIR", "TTERM_DATA_DIR"):
            monkeypatch.delenv(var)
    data.mkdir(parents=True)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    journal = Journal(data / "journal.sqlite3")
    for i, (side, qty, price) in enumerate([(Side.BUY, 2, "187.50"), (Side.SELL, 2, "188.25")]):
        at = now + timedelta(minutes=i * 5)
        f = Fill(fill_id=f"f{i}", order_id="o", client_order_id="c", account="paper:CASH", symbol="AAPL", side=side,
                 quantity=qty, price=D(price), fee=D("0.10"), broker="paper", ts=at)  # fmt: skip
        journal.record("fill", f, account=f.account, ref=f.client_order_id)
    journal.close()

    assert cli.main(["pnl", "--days", "2"]) == 0
    text = capsys.readouterr().out
    assert "Net +1.30" in text and "round trips 1 (1 won, 0 lost)" in text
    assert "AAPL" in text and "long" in text and "5m00s" in text and "Equity curve (2 fills)" in text

    assert cli.main(["pnl", "--days", "2", "--json", "--account", "paper:CASH"]) == 0
    data_json = json.loads(capsys.readouterr().out)
    assert data_json["net"] == "1.30" and data_json["accounts"] == ["paper:CASH"]
    assert data_json["trips"][0]["duration_seconds"] == 300 and data_json["curve"][-1]["equity"] == "1.30"

    assert cli.main(["pnl", "--account", "paper:NOPE"]) == 2
    assert "no fills of account 'paper:NOPE'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["pnl", "--days", "0"])
