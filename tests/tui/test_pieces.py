"""The TUI's pure pieces: keymap, formatting, risk estimate, screen state, theme files, meters."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tterm.core.client import EngineSnapshot
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    Account,
    AccountSnapshot,
    Bracket,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from tterm.tui import format as fmt
from tterm.tui.bridge import ScreenState
from tterm.tui.estimate import estimate_risk
from tterm.tui.keymap import BY_ID, SPECS, bindings, check_keymap, effective_keys, key_label
from tterm.tui.themes import APP_VARIABLES, ThemeFileError, load_themes, parse_theme, resolve_references, theme_dirs
from tterm.tui.widgets.risk_meter import band_for, status_from_profile

D = Decimal
README = Path(__file__).resolve().parents[2] / "README.md"


# --------------------------------------------------------------------------- keymap


def test_binding_ids_are_unique_and_every_one_is_in_the_readme() -> None:
    assert len(BY_ID) == len(SPECS)
    readme = README.read_text(encoding="utf-8")
    missing = [s.id for s in SPECS if f"`{s.id}`" not in readme]
    assert missing == []


def test_bindings_carry_their_ids() -> None:
    ids = {b.id for b in bindings("watchlist")}
    assert {"watchlist.buy", "watchlist.sell", "watchlist.add", "watchlist.remove"} <= ids
    kill = next(b for b in bindings("app") if b.id == "app.kill_switch")
    assert kill.priority and kill.key == "ctrl+k"


def test_check_keymap_names_each_problem() -> None:
    assert check_keymap({"watchlist.buy": "f9", "app.kill_switch": "ctrl+k,f12"}) == []
    problems = check_keymap({"buy": "f9", "watchlist.sell": "ctrl+s p", "orders.cancel": ""})
    assert problems == [
        "keymap: no binding with id 'buy' (did you mean 'watchlist.buy'?)",
        "keymap: watchlist.sell: 'ctrl+s p' is not a key name (e.g. f9, ctrl+b, shift+up)",
        "keymap: orders.cancel: empty key in ''",
    ]


def test_effective_keys_and_labels() -> None:
    keys = effective_keys({"watchlist.buy": "f9"})
    assert keys["watchlist.buy"] == "f9" and keys["watchlist.sell"] == "s"
    assert key_label("right_square_bracket") == "]" and key_label("delete,x") == "delete, x"


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "tick", "text"),
    [("5000.25", "0.25", "5,000.25"), ("44001", "1", "44,001"), ("70.1", "0.01", "70.10"), (None, "0.25", "—")],
)
def test_price_uses_the_tick_decimals(value: str | None, tick: str, text: str) -> None:
    assert fmt.price(D(value) if value else None, places=fmt.tick_decimals(D(tick))) == text


def test_money_pct_volume_duration() -> None:
    assert fmt.money(D("-320")) == "-$320.00"
    assert fmt.money(D("12.5"), signed=True) == "+$12.50"
    assert fmt.money(D(0), signed=True) == "$0.00"
    assert fmt.pct(D("-0.001")) == "0.00%" and fmt.pct(D("0.4012")) == "+0.40%"
    assert [fmt.volume(v) for v in (950, 12_345, 4_560_000, 1_402_118, 220_000_000)] == [
        "950",
        "12.3K",
        "4.56M",
        "1.40M",
        "220M",
    ]  # more in test_numbers.py
    assert fmt.duration(timedelta(hours=2, minutes=5)) == "2h05m"
    assert fmt.duration(timedelta(seconds=-1)) == "passed"
    assert fmt.sparkline([D(1), D(2), D(3)], 8) == "▁▄█"
    assert fmt.fit("ABCDEFGHIJ", 5) == "ABCD…"


# --------------------------------------------------------------------------- risk estimate


def test_estimate_risk_stop_loss_in_ticks_and_as_price() -> None:
    mes = InstrumentMaster(today=lambda: date(2026, 11, 17)).resolve("MES")
    fees = mes.fee_per_side * 2 * 3
    req = OrderRequest("paper:A", mes.symbol, Side.BUY, 3, bracket=Bracket(stop_loss_ticks=8))
    quote = Quote(mes.symbol, bid=D("5000"), ask=D("5000.25"), last=D("5000"))
    est = estimate_risk(req, mes, quote)
    assert est.total == 8 * 3 * D("1.25") + fees
    assert est.entry == D("5000.25")  # a market buy fills at the ask
    priced = req.with_changes(bracket=Bracket(stop_loss_price=D("4998.25")))
    assert estimate_risk(priced, mes, quote).stop_ticks == 8
    bare = req.with_changes(bracket=None)
    assert estimate_risk(bare, mes, quote).total is None
    assert "unbounded: no stop-loss" in estimate_risk(bare, mes, quote).text
    limit = req.with_changes(
        order_type=OrderType.LIMIT, limit_price=D("4990"), bracket=Bracket(stop_loss_price=D("4985"))
    )
    assert estimate_risk(limit, mes, None).stop_ticks == 20


# --------------------------------------------------------------------------- screen state


def test_screen_state_applies_events_and_reports_changes() -> None:
    state = ScreenState()
    acct = Account("paper:A", "paper", "A", "Alpha")
    state.load(EngineSnapshot(accounts=(acct,)))
    order = Order("o1", "c1", "paper:A", "MESZ6", Side.BUY, 1, OrderType.MARKET, OrderStatus.WORKING)
    fill = Fill("f1", "o1", "c1", "paper:A", "MESZ6", Side.BUY, 1, D("5000"), broker="paper")
    ch = state.apply([Quote("MESZ6", last=D(1)), Quote("MESZ6", last=D(2)), order, fill, fill])
    assert ch.quotes["MESZ6"].last == D(2)
    assert ch.orders == [order] and ch.fills == [fill]  # a fill seen twice is counted once
    assert state.working_orders() == [order]
    rejected = order.evolve(status=OrderStatus.REJECTED, reject_reason="no")
    state.apply([rejected])
    assert state.working_orders() == [] and state.rejected_orders() == [rejected]
    assert state.find_account("alpha") is acct and state.find_account("A") is acct
    assert not state.apply([])


# --------------------------------------------------------------------------- themes


def test_shipped_themes_define_every_tterm_token() -> None:
    loaded = load_themes(theme_dirs())
    assert loaded.problems == []
    for name in ("tterm-amber", "tterm-light", "tterm-cb"):
        theme = loaded.themes[name]
        assert set(APP_VARIABLES) <= set(theme.variables), name


def test_theme_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    with pytest.raises(ThemeFileError, match=r"bad\.toml: primary: required colour"):
        parse_theme('name = "x"', path)
    with pytest.raises(ThemeFileError, match=r"variables\.pnl-up: 'nope' is not a colour"):
        parse_theme('name = "x"\nprimary = "#ffffff"\n[variables]\npnl-up = "nope"', path)
    with pytest.raises(ThemeFileError, match="unknown keys colour"):
        parse_theme('name = "x"\nprimary = "#ffffff"\ncolour = "red"', path)
    path.write_text("not toml = = =")
    (tmp_path / "good.toml").write_text('name = "mine"\nprimary = "#123456"\n')
    loaded = load_themes([tmp_path])
    assert list(loaded.themes) == ["mine"] and "invalid TOML" in loaded.problems[0]


def test_resolve_references_follows_chains() -> None:
    assert resolve_references({"a": "$b", "b": "$c", "c": "#fff", "d": "$missing"}) == {
        "a": "#fff",
        "b": "#fff",
        "c": "#fff",
        "d": "$missing",
    }


# --------------------------------------------------------------------------- risk meters


@pytest.mark.parametrize(
    ("remaining", "allowance", "band"),
    [("900", "1000", "ok"), ("500", "1000", "warn"), ("250", "1000", "danger"), ("0", "1000", "breached")],
)
def test_band_follows_the_margin_left(remaining: str, allowance: str, band: str) -> None:
    assert band_for(D(remaining), D(allowance)) == band


def test_status_from_profile_fallback() -> None:
    from tterm.risk.profiles import load_profiles

    profile = load_profiles(user=False).get("topstep-50k-combine")
    acct = Account("paper:FUT50K", "paper", "FUT50K", "Paper 50K", profile=profile.id)
    bal = AccountSnapshot(
        "paper:FUT50K", balance=D(49_500), equity=D(49_200), day_realized_pnl=D(-500), open_pnl=D(-300)
    )
    st = status_from_profile(acct, bal, profile, contracts_used=D(2), cutoff=None)
    assert st.floor == profile.start - profile.drawdown.amount
    assert st.floor_distance == D(49_200) - st.floor
    assert st.dll_distance == profile.daily_loss.amount - D(800)
    assert st.contracts_max == profile.contracts.ceiling
    assert st.band == band_for(st.dll_distance, st.daily_loss_limit) == "danger"


# --------------------------------------------------------------------------- layering


def test_the_tui_talks_to_the_engine_only_through_the_client_seam() -> None:
    """No broker, engine internals, hub or runtime imports anywhere in tterm/tui (the remote hub
    client must be able to stand in for the in-process engine). ``tterm.core.broker`` is the
    contract, not a broker: its login prompt/result and errors cross the seam (EngineClient)."""
    import ast

    allowed = ("tterm.core.models", "tterm.core.client", "tterm.core.instruments", "tterm.core.clock",
               "tterm.core.verbs", "tterm.core.broker", "tterm.config", "tterm.risk.profiles", "tterm.tui",
               # what alerts and the P&L history verbs carry across the seam (pure models)
               "tterm.core.alerts.model", "tterm.core.pnl",
               # pure helpers (no engine state): chart bars, option strategy maths
               "tterm.core.barseries", "tterm.core.strategy", "tterm.core.blackscholes")  # fmt: skip
    root = Path(__file__).resolve().parents[2] / "tterm" / "tui"
    bad = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("tterm") and not name.startswith(allowed):
                    bad.append(f"{path.relative_to(root)}: {name}")
    assert bad == []


async def test_bridge_tells_the_engine_only_the_difference() -> None:
    from tterm.tui.bridge import Bridge

    calls: list[tuple[str, list[str]]] = []

    class Client:
        async def subscribe(self, symbols: list[str]) -> list[str]:
            calls.append(("sub", list(symbols)))
            return list(symbols)

        async def unsubscribe(self, symbols: list[str]) -> None:
            calls.append(("unsub", list(symbols)))

    bridge = Bridge(Client())  # type: ignore[arg-type]
    await bridge.want("watchlist", ["ESZ6", "NQZ6"])
    await bridge.want("ticket", ["ESZ6"])
    await bridge.want("watchlist", ["NQZ6", "CLF7"])
    await bridge.want("ticket", [])
    assert calls == [("sub", ["ESZ6", "NQZ6"]), ("sub", ["CLF7"]), ("unsub", ["ESZ6"])]
    assert bridge.subscribed == {"NQZ6", "CLF7"}
