"""The risk meter's round-two lines: your own limits ("Yours") and the next news window."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from textual.app import App, ComposeResult

from tterm.core.clock import CT
from tterm.core.models import Account, RiskStatus
from tterm.risk.profiles import load_profiles
from tterm.tui.screens.trade import _fields
from tterm.tui.themes import ThemeVariablesMixin
from tterm.tui.widgets.risk_meter import RiskMeter, status_from_profile

D = Decimal


class MeterApp(ThemeVariablesMixin, App[None]):
    def compose(self) -> ComposeResult:
        yield RiskMeter(Account("paper:FUT50K", "paper", "FUT50K", "Paper 50K"), id="meter")


async def test_the_meter_shows_yours_and_the_next_news_window() -> None:
    now = datetime(2026, 1, 13, 5, 0, tzinfo=CT)
    status = RiskStatus(
        account="paper:FUT50K",
        profile="",
        balance=D(50_000),
        equity=D(49_880),
        day_pnl=D(-120),
        detail="no rule profile",
        yours_daily_loss=D(500),
        yours_dll_line=D(-200),
        yours_dll_distance=D(80),
        yours_dll_mode="trailing unrealized",
        trades_today=8,
        trades_max=10,
        yours_max_loss_trade=D(250),
        yours_profit_lock_at=D(900),
        news_kind="CPI",
        news_at=datetime(2026, 1, 13, 7, 30, tzinfo=CT),
        news_start=datetime(2026, 1, 13, 7, 25, tzinfo=CT),
        news_end=datetime(2026, 1, 13, 7, 35, tzinfo=CT),
        news_rule="no_entries",
        news_who="yours",
    )
    app = MeterApp()
    async with app.run_test(size=(140, 12)):
        meter = app.query_one(RiskMeter)
        meter.show(meter.account, status, None, now, current=True)
        text = [line.plain for line in meter._lines(140)]
        assert "no rule profile: no firm limits; yours below" in text[1]
        assert text[2].startswith("  Yours       $500.00 ")
        assert text[2].endswith(" $80.00 left · at -$200.00 (trailing unrealized)")
        assert text[3] == "          trades 8/10 · $250.00/trade · lock-in at +$900.00"
        assert text[4] == "  News    CPI 07:30 CT in 2h30m · no entries 07:25-07:35 CT (yours)"
        # Inside the window, and on a firm's rule for a release whose date is not confirmed:
        inside = RiskStatus(**{**_fields(status), "news_uncertain": True, "news_who": "Take Profit Trader"})
        meter.show(meter.account, inside, None, datetime(2026, 1, 13, 7, 28, tzinfo=CT), current=True)
        news = [line.plain for line in meter._lines(140)][-1]
        assert news == "  News    CPI (unconfirmed) 07:30 CT now · no entries 07:25-07:35 CT (Take Profit Trader)"
        narrow = [line.plain for line in meter._lines(64)]
        assert narrow[-2:] == [
            "  News    CPI (unconfirmed) 07:30 CT now",
            "          no entries 07:25-07:35 CT (Take Profit Trader)",
        ]


def test_the_fallback_meter_of_a_profile_without_a_drawdown_amount_shows_no_floor() -> None:
    profile = load_profiles(user=False).get("mffu-50k-funded")  # the firm's number is unknown
    acct = Account("paper:FUT50K", "paper", "FUT50K", "Paper 50K", profile=profile.id)
    st = status_from_profile(acct, None, profile, contracts_used=D(0), cutoff=None)
    assert st.floor is None and st.drawdown_allowance is None and st.band == "ok"
