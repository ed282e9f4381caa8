"""Round two on the live engine: your own limits on any account, news windows, the hedging rule
across accounts, hard-fail cutoffs, and rule files edited while tterm runs."""

from __future__ import annotations

import os
import time as _time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tterm.brokers.paper.broker import PaperBroker
from tterm.brokers.paper.ledger import PaperAccountSpec
from tterm.core.clock import CT, CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import AccountKind, Order, OrderRequest, OrderSource, OrderStatus, Quote, RiskStatus, Side
from tterm.risk.monitor import RiskMonitor
from tterm.risk.news import load_calendar
from tterm.risk.profiles import load_profiles
from tterm.risk.reload import RuleFiles
from tterm.risk.settings import RiskSettings

D = Decimal
A, B = "paper:A50K", "paper:B50K"
PROFILES = load_profiles(user=False)


def ct(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=CT).astimezone(UTC)


class Rig:
    """Engine + scripted paper broker with two accounts + monitor, on a clock the test moves."""

    def __init__(
        self,
        root: Path,
        *,
        at: datetime,
        profiles: tuple[str, str] = ("", ""),
        risk: RiskSettings | None = None,
        files: RuleFiles | None = None,
    ) -> None:
        self.now = at
        self.clock = CmeClock(default_calendar(), now=lambda: self.now)
        self.master = InstrumentMaster(calendar=self.clock.calendar, today=lambda: self.clock.trade_date())
        specs = [
            PaperAccountSpec(id=acct.split(":")[1], name=acct, kind=AccountKind.FUTURES, balance=D(50000), profile=p)
            for acct, p in zip((A, B), profiles, strict=True)
        ]
        self.broker = PaperBroker(
            "paper", accounts=specs, instruments=self.master, clock=self.clock, seed=3, scripted=True,
            store_path=root / "paper.sqlite3",
        )  # fmt: skip
        self.journal = Journal(root / "journal.sqlite3", clock=lambda: self.now)
        self.engine = Engine(brokers=[self.broker], instruments=self.master, journal=self.journal, clock=self.clock)
        self.monitor = RiskMonitor(
            self.engine,
            profiles=PROFILES,
            settings=risk or RiskSettings(),
            calendar=load_calendar(user=False),
            files=files,
        ).attach()

    async def start(self, price: str = "6800.00") -> Rig:
        await self.engine.start()
        await self.engine.watch(["MES1!", "ES1!"])
        await self.price(price)
        return self

    async def price(self, px: str) -> None:
        p = D(px)
        for sym in ("MES1!", "ES1!"):
            await self.broker.push_quote(Quote(symbol=sym, bid=p, ask=p + D("0.25"), last=p, ts=self.now))
        await self.settle()

    async def settle(self) -> None:
        await self.engine.settle()
        await self.monitor.settle()
        await self.engine.settle()

    async def at(self, when: datetime) -> None:
        self.now = when
        self.monitor.tick()
        await self.settle()

    async def order(self, account: str = A, **kw: object) -> Order:
        base: dict[str, object] = dict(account=account, symbol="MES1!", side=Side.BUY, quantity=1)
        base["source"] = OrderSource.TICKET
        base.update(kw)
        order = await self.engine.place(OrderRequest(**base))  # type: ignore[arg-type]
        await self.settle()
        return order

    def status(self, account: str = A) -> RiskStatus:
        s = self.monitor.status(account)
        assert s is not None
        return s

    def notices(self) -> list[str]:
        return [e.data.get("text", "") for e in self.journal.entries(kind="notice")]

    async def stop(self) -> None:
        await self.monitor.close()
        await self.engine.stop()
        self.journal.close()


TUE = ct(2026, 11, 24, 9)


async def test_a_personal_trailing_daily_loss_on_an_account_without_a_profile(tmp_path: Path) -> None:
    risk = RiskSettings(accounts={A: {"daily_loss": 300, "daily_loss_mode": "trailing"}})
    rig = await Rig(tmp_path, at=TUE, risk=risk).start()
    try:
        s = rig.status()
        assert s.profile == "" and s.yours_daily_loss == D(300) and s.yours_dll_mode == "trailing unrealized"
        assert s.yours_dll_line == D(-300)
        await rig.order(quantity=4)  # 4 MES at 6800.25 (the ask)
        await rig.price("6830.25")  # +$600 open: your line follows the day's best up
        best = rig.status().yours_dll_line
        assert best is not None and best > D(200)
        await rig.price("6816.00")  # not yet: above the line
        assert rig.engine.book.open_positions(A) and not rig.status().locked
        await rig.price("6815.00")  # through it
        assert rig.engine.book.open_positions(A) == []
        lock = rig.engine.lock_for(A)
        assert lock is not None and lock.locked and lock.by == "risk" and "trailing daily loss $300.00" in lock.reason
        assert any("tterm is flattening and locking the account" in t for t in rig.notices())
        late = await rig.order(quantity=1)
        assert late.status is OrderStatus.REJECTED and "locked" in late.reject_reason
        flat = [e.data for e in rig.journal.entries(kind="notice", account=A) if e.data.get("event") == "auto_flatten"]
        assert flat and flat[0]["rule"] == "yours_dll" and flat[0]["yours"] is True
        # The other account, without limits, is untouched.
        assert not rig.status(B).locked and rig.status(B).yours_daily_loss is None
    finally:
        await rig.stop()


async def test_trades_per_day_count_entries_and_exits_and_survive_a_restart(tmp_path: Path) -> None:
    risk = RiskSettings(accounts={A: {"max_trades_per_day": 3}})
    rig = await Rig(tmp_path, at=TUE, risk=risk).start()
    await rig.order(quantity=1)  # entry: 1
    await rig.order(side=Side.SELL, quantity=1)  # exit: 2
    assert (rig.status().trades_today, rig.status().trades_max) == (2, 3)
    again = await rig.order(quantity=1)  # this entry and its exit would make 4
    assert again.status is OrderStatus.REJECTED and "your limit is 3 trades a day" in again.reject_reason
    await rig.stop()
    rig = await Rig(tmp_path, at=TUE, risk=risk).start()
    try:
        assert rig.status().trades_today == 2
        assert (await rig.order(quantity=1)).status is OrderStatus.REJECTED
        await rig.at(ct(2026, 11, 24, 17, 0, 5))  # a new trading day starts the count again
        await rig.price("6800.00")
        assert rig.status().trades_today == 0
        assert (await rig.order(quantity=1)).status is OrderStatus.FILLED
    finally:
        await rig.stop()


async def test_the_most_per_trade_flattens_that_position_but_does_not_lock(tmp_path: Path) -> None:
    risk = RiskSettings(accounts={A: {"max_loss_per_trade": 200}})
    rig = await Rig(tmp_path, at=TUE, risk=risk).start()
    try:
        big = await rig.order(quantity=5)  # no stop: 40 ticks x 5 x $1.25 = $250 > $200
        assert big.status is OrderStatus.REJECTED and "more than your $200.00 a trade" in big.reject_reason
        assert (await rig.order(quantity=3)).status is OrderStatus.FILLED
        await rig.price("6787.00")  # about -$200 open on 3 MES, net of fees
        assert rig.engine.book.open_positions(A) == [] and not rig.status().locked
        assert (await rig.order(quantity=1)).status is OrderStatus.FILLED
    finally:
        await rig.stop()


async def test_an_entry_inside_a_news_window_is_refused_and_the_meter_shows_the_next_one(tmp_path: Path) -> None:
    risk = RiskSettings(accounts={A: {"news": {"rule": "no_entries", "before_minutes": 5, "after_minutes": 5}}})
    rig = await Rig(tmp_path, at=ct(2026, 1, 13, 5, 0), risk=risk).start()
    try:
        s = rig.status()
        assert (s.news_kind, s.news_rule, s.news_who) == ("CPI", "no_entries", "yours")
        assert s.news_at == ct(2026, 1, 13, 7, 30) and s.news_start == ct(2026, 1, 13, 7, 25)
        assert (await rig.order(quantity=1)).status is OrderStatus.FILLED  # 05:00: outside the window
        await rig.at(ct(2026, 1, 13, 7, 26))
        await rig.price("6800.00")  # fresh quotes at the new time
        inside = await rig.order(quantity=1)
        assert inside.status is OrderStatus.REJECTED
        assert "inside a news window: CPI at 07:30 CT: your news rule covers 07:25-07:35 CT" in inside.reject_reason
        assert (await rig.order(side=Side.SELL, quantity=1)).status is OrderStatus.FILLED  # exits pass
        assert (await rig.order(account=B, quantity=1)).status is OrderStatus.FILLED  # B has no news rule
        await rig.at(ct(2026, 1, 13, 7, 36))
        await rig.price("6800.00")
        assert rig.status().news_kind == "FOMC"  # the next window: the FOMC statement on 01-28
        assert (await rig.order(quantity=1)).status is OrderStatus.FILLED
    finally:
        await rig.stop()


async def test_a_flatten_news_rule_flattens_ahead_without_locking(tmp_path: Path) -> None:
    # Take Profit Trader PRO: flat from one minute before to one minute after CPI.
    rig = await Rig(tmp_path, at=ct(2026, 1, 13, 7, 0), profiles=("tpt-50k-pro", "")).start()
    try:
        assert (await rig.order(quantity=2)).status is OrderStatus.FILLED
        await rig.at(ct(2026, 1, 13, 7, 26, 59))
        assert rig.engine.book.open_positions(A)
        await rig.at(ct(2026, 1, 13, 7, 27))  # 07:29 less tterm's 2-minute lead
        assert rig.engine.book.open_positions(A) == [] and not rig.status().locked
        refused = await rig.order(quantity=1)
        assert refused.status is OrderStatus.REJECTED and "the Take Profit Trader news rule" in refused.reject_reason
        await rig.at(ct(2026, 1, 13, 7, 31))
        await rig.price("6800.00")
        assert (await rig.order(quantity=1)).status is OrderStatus.FILLED
    finally:
        await rig.stop()


async def test_an_opposite_position_across_two_accounts_is_refused(tmp_path: Path) -> None:
    # A is an Apex legacy PA (no hedging across correlated products); B has no profile.
    rig = await Rig(tmp_path, at=TUE, profiles=("apex-legacy-50k-pa", "")).start()
    try:
        assert (await rig.order(account=B, quantity=1)).status is OrderStatus.FILLED  # B long 1 MES
        short = await rig.order(account=A, side=Side.SELL, quantity=1)
        assert short.status is OrderStatus.REJECTED
        assert short.reject_reason.startswith("hedging: paper:B50K is long 1 MES")
        assert "the Apex Trader Funding rules forbid" in short.reject_reason
        short_es = await rig.order(account=A, symbol="ES1!", side=Side.SELL, quantity=1)
        assert short_es.status is OrderStatus.REJECTED  # ES and MES are one product
        assert (await rig.order(account=A, quantity=1)).status is OrderStatus.FILLED  # the same side is fine
        # B has no rule of its own, but going short there while A is long breaks A's firm rule.
        assert (await rig.order(account=B, side=Side.SELL, quantity=3)).status is OrderStatus.REJECTED
        assert (await rig.order(account=B, side=Side.SELL, quantity=1)).status is OrderStatus.FILLED  # an exit
    finally:
        await rig.stop()


async def test_hedging_is_free_when_nobody_forbids_it_and_refused_with_your_no_hedging(tmp_path: Path) -> None:
    rig = await Rig(tmp_path, at=TUE).start()
    try:
        assert (await rig.order(account=B, quantity=1)).status is OrderStatus.FILLED
        assert (await rig.order(account=A, side=Side.SELL, quantity=1)).status is OrderStatus.FILLED
    finally:
        await rig.stop()
    risk = RiskSettings(accounts={A: {"no_hedging": True}})
    (tmp_path / "2").mkdir()
    rig = await Rig(tmp_path / "2", at=TUE, risk=risk).start()
    try:
        assert (await rig.order(account=B, quantity=1)).status is OrderStatus.FILLED
        d = await rig.order(account=A, side=Side.SELL, quantity=1)
        assert d.status is OrderStatus.REJECTED and "your settings forbid" in d.reject_reason
    finally:
        await rig.stop()


async def test_a_hard_fail_cutoff_says_so_when_tterm_flattens(tmp_path: Path) -> None:
    rig = await Rig(tmp_path, at=ct(2026, 11, 24, 15, 0), profiles=("tpt-50k-test", "")).start()
    try:
        await rig.order(quantity=1)
        await rig.at(ct(2026, 11, 24, 15, 58))
        assert rig.engine.book.open_positions(A) == [] and rig.status().locked
        assert "Take Profit Trader fails an account still holding a position by 16:00 CT" in rig.status().lock_reason
    finally:
        await rig.stop()


def _write(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(_time.time_ns(), before + 1_000_000))


async def test_rule_files_edited_while_running_reload_and_a_bad_edit_keeps_the_previous_set(tmp_path: Path) -> None:
    pdir, news = tmp_path / "profiles", tmp_path / "news.toml"
    pdir.mkdir()
    files = RuleFiles.at(pdir, news)
    rig = await Rig(tmp_path, at=ct(2026, 1, 12, 9), profiles=("topstep-50k-combine", ""), files=files).start()
    try:
        # A good calendar edit: a release the shipped file lacks, with the user's own rule.
        _write(news, '[kinds.PCE]\ntime = "08:30"\n\n[[release]]\nkind = "PCE"\ndate = 2026-01-12\n')
        rig.monitor.poll_files(force=True)
        assert rig.monitor.guards.calendar.last("PCE") is not None
        # A bad one: the file, the key and the reason are reported; the previous calendar stays.
        _write(news, '[[release]]\nkind = "PCE"\ndate = 2026-01-12\ntime = "8:3O"\n')
        rig.monitor.poll_files(force=True)
        await rig.settle()
        assert rig.monitor.guards.calendar.last("PCE") is not None
        text = "\n".join(rig.notices())
        assert "news calendar not reloaded; the previous set stays in force" in text
        assert f"{news}: release[0] (PCE 2026-01-12).time: '8:3O' is not a time" in text
        # A good profile edit applies at once...
        _write(
            pdir / "mine.toml",
            '[[profile]]\nid = "topstep-50k-combine"\nextends = "topstep-50k-combine"\n'
            'daily_loss = { amount = 700, action = "flatten_block" }\n',
        )
        rig.monitor.poll_files(force=True)
        await rig.settle()
        assert rig.status().daily_loss_limit == D(700)
        # ...a bad one (an impossible number) is refused, and the $700 stays in force.
        _write(
            pdir / "mine.toml",
            '[[profile]]\nid = "topstep-50k-combine"\nextends = "topstep-50k-combine"\n'
            'daily_loss = { amount = -5, action = "flatten_block" }\n',
        )
        rig.monitor.poll_files(force=True)
        await rig.settle()
        assert rig.status().daily_loss_limit == D(700)
        text = "\n".join(rig.notices())
        assert "rule profiles not reloaded; the previous set stays in force" in text
        assert "mine.toml: profile[0] (topstep-50k-combine).daily_loss.amount: Input should be greater than 0" in text
        errors = [e.data for e in rig.journal.entries(kind="error") if e.data.get("action") == "reload"]
        assert [e["what"] for e in errors] == ["news calendar", "rule profiles"]
    finally:
        await rig.stop()
