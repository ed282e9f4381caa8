"""End to end on the paper broker, built from the config like `tterm` builds it: a losing position
drives the account into tterm's buffer; tterm cancels, flattens and locks it before the firm's line,
the journal shows why with the numbers, and a restart changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tterm.config import validate_settings
from tterm.core.clock import CT, CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.models import OrderRequest, OrderSource, OrderStatus, OrderType, Quote, Side
from tterm.risk.monitor import RiskMonitor, monitor_of
from tterm.runtime import build_engine

D = Decimal
FUT = "paper:FUT50K"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=CT).astimezone(UTC)


class Rig:
    def __init__(self, root: Path, config: dict | None = None) -> None:
        self.now = NOW
        self.settings = validate_settings(config or {}, root / "config.toml")
        self.clock = CmeClock(default_calendar(), now=lambda: self.now)
        self.engine: Engine = build_engine(self.settings, scripted=True, clock=self.clock, root=root)
        monitor = monitor_of(self.engine)
        assert monitor is not None, "build_engine must attach the risk monitor"
        self.monitor: RiskMonitor = monitor
        self.broker = self.engine.brokers["paper"]

    async def start(self) -> Rig:
        await self.engine.start()
        await self.engine.watch(["MES1!"])
        await self.price("6800.00")
        return self

    async def price(self, px: str | D) -> None:
        p = D(px)
        await self.broker.push_quote(Quote("MES1!", bid=p, ask=p + D("0.25"), last=p, ts=self.now))  # type: ignore[attr-defined]
        await self.settle()

    async def settle(self) -> None:
        await self.engine.settle()
        await self.monitor.settle()
        await self.engine.settle()

    async def place(self, **kw: object):
        base: dict[str, object] = dict(
            account=FUT, symbol="MES1!", side=Side.BUY, quantity=1, source=OrderSource.HOTKEY
        )
        base.update(kw)
        order = await self.engine.place(OrderRequest(**base))  # type: ignore[arg-type]
        await self.settle()
        return order

    async def stop(self) -> None:
        await self.monitor.close()
        await self.engine.stop()
        self.engine.journal.close()


def risk_rows(engine: Engine) -> list[tuple[str, dict]]:
    """The journal rows about the auto-flatten, in order."""
    out = []
    for e in engine.journal.entries(account=FUT):
        if e.kind in ("flatten", "lock") or (e.kind == "notice" and e.data.get("source") == "risk"):
            out.append((e.kind, e.data))
    return out


async def test_losing_position_into_the_dll_buffer_is_flattened_and_locked(tmp_path: Path) -> None:
    rig = await Rig(tmp_path).start()  # paper:FUT50K runs topstep-50k-combine by default
    try:
        entry = await rig.place(quantity=4)
        assert entry.status is OrderStatus.FILLED
        working = await rig.place(order_type=OrderType.LIMIT, limit_price=D("6740.00"))  # 4 + 1 = the tier
        assert working.status is OrderStatus.WORKING
        price = D("6800.00")
        while not rig.engine.lock_for(FUT):
            price -= D("1.00")
            await rig.price(price)
            assert price > D("6700"), "tterm never flattened"
        status = rig.monitor.status(FUT)
        assert status is not None and status.locked
        # Flat, no working orders, and the firm's own DLL (-$1,000) was never touched.
        assert rig.engine.book.open_positions(FUT) == []
        assert rig.engine.open_orders(FUT) == []
        assert D(-1000) < status.day_pnl <= D(-900)
        # The journal shows why, with the numbers, then each step in order.
        rows = risk_rows(rig.engine)
        kinds = [(k, d.get("step") or d.get("event") or "") for k, d in rows]
        first = next(d for k, d in rows if d.get("event") == "auto_flatten")
        assert first["rule"] == "dll_buffer" and first["firm_line"] is False
        assert first["daily_loss_limit"] == "1000" and first["dll_flatten_level"] == "-900.00"
        assert D(first["day_pnl"]) <= D(-880) and first["positions"][0]["quantity"] == 4
        assert "reached tterm's flatten level -$900.00" in first["reason"]
        order = [k for k, _ in kinds]
        assert order.index("flatten") < order.index("lock")
        at = kinds.index(("notice", "auto_flatten"))
        assert kinds.index(("notice", "cancel_all")) > at and kinds.index(("notice", "flatten")) > at
        lock = next(d for k, d in rows if k == "lock")
        assert lock["by"] == "risk" and "daily loss limit" in lock["reason"]
        assert datetime.fromisoformat(lock["until"]) == datetime(2026, 11, 24, 17, 0, tzinfo=CT)
        # Only exits pass now, from any source.
        again = await rig.place(quantity=1, source=OrderSource.WEBHOOK)
        assert again.status is OrderStatus.REJECTED and "locked" in again.reject_reason
    finally:
        await rig.stop()

    # A restart changes nothing: still locked, the same levels, the reason kept.
    rig2 = await Rig(tmp_path).start()
    try:
        lock = rig2.engine.lock_for(FUT)
        assert lock is not None and lock.locked and lock.by == "risk"
        s = rig2.monitor.status(FUT)
        assert s is not None and s.locked and "flattened by tterm" in s.detail
        assert (await rig2.place()).status is OrderStatus.REJECTED
    finally:
        await rig2.stop()


async def test_intraday_trailing_floor_buffer_flattens_before_the_firm_floor(tmp_path: Path) -> None:
    config = {"accounts": {FUT: {"profile": "apex-legacy-50k-pa"}}, "risk": {"buffer_pct": 10}}
    rig = await Rig(tmp_path, config).start()
    try:
        await rig.place(quantity=5)
        await rig.price("6880.00")  # +$2,000 open: the floor trails up to about $49,500
        s = rig.monitor.status(FUT)
        assert s is not None and s.floor is not None and s.floor > D(49400)
        floor = s.floor
        price = D("6880.00")
        while not rig.engine.lock_for(FUT):
            price -= D("2.00")
            await rig.price(price)
        s = rig.monitor.status(FUT)
        assert s is not None and s.floor == floor  # never moved down
        assert rig.engine.book.open_positions(FUT) == []
        assert s.equity > floor  # flattened inside tterm's $250 buffer, above the firm's floor
        first = next(d for k, d in risk_rows(rig.engine) if d.get("event") == "auto_flatten")
        assert first["rule"] == "floor_buffer" and D(first["equity_net_of_fees"]) <= D(first["flatten_level"])
    finally:
        await rig.stop()


async def test_unknown_profile_in_the_config_is_refused_at_build(tmp_path: Path) -> None:
    import pytest

    from tterm.runtime import BuildError

    settings = validate_settings({"accounts": {FUT: {"profile": "apex-legacy-50k-pq"}}}, tmp_path / "c.toml")
    with pytest.raises(BuildError, match=r'accounts."paper:FUT50K".profile: no rule profile .*apex-legacy-50k-pa'):
        build_engine(settings, scripted=True, root=tmp_path)


async def test_a_profile_the_sources_cannot_complete_is_refused_at_build(tmp_path: Path) -> None:
    import pytest

    from tterm.runtime import BuildError

    # mffu-50k-funded ships without a drawdown amount (the reference gives none).
    settings = validate_settings({"accounts": {FUT: {"profile": "mffu-50k-funded"}}}, tmp_path / "c.toml")
    with pytest.raises(BuildError, match=r'accounts."paper:FUT50K".profile: rule profile mffu-50k-funded has no '):
        build_engine(settings, scripted=True, root=tmp_path)


async def test_a_bad_news_calendar_is_refused_at_build(tmp_path: Path, monkeypatch) -> None:
    import pytest

    from tterm.runtime import BuildError

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "news.toml").write_text('[[release]]\nkind = "CPI"\ndate = 2026-01-13\ntime = "31:00"\n')
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    settings = validate_settings({}, conf / "config.toml")
    with pytest.raises(BuildError, match=r"news calendar:\n.*news.toml: release\[0\] \(CPI 2026-01-13\).time"):
        build_engine(settings, scripted=True, root=tmp_path)
