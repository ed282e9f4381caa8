"""Market screens through a real pty: keys after the one that opens a screen reach that screen,
never the watchlist under it (``x`` there would remove a symbol, ``b`` would buy)."""

from __future__ import annotations

import sys

import pytest

from tests.tui.test_key_bursts import PtyApp, app, slow_preview  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


def test_keys_typed_after_c_go_to_the_chart_not_the_watchlist(app: PtyApp) -> None:  # noqa: F811
    watchlist = app.state()["watchlist"]
    app.burst(b"cxbs3")  # chart, then keys that are watchlist hotkeys (remove, buy, sell) and 5m
    state = app.wait(lambda s: s["screens"][-1] == "ChartScreen" and s["focused"] == "chart", limit=15)
    state = app.settle(1.0)
    assert state["watchlist"] == watchlist and state["orders"] == 0
    assert state["screens"] == ["TradeScreen", "ChartScreen"]
    app.burst(b"\x1b")
    state = app.wait(lambda s: s["screens"] == ["TradeScreen"] and s["focused"] == "watchlist", limit=10)
    assert state["watchlist"] == watchlist and state["orders"] == 0


def test_a_screen_verb_typed_in_one_burst_opens_the_tape(app: PtyApp) -> None:  # noqa: F811
    app.burst(b":tape MES 10\r")
    state = app.wait(lambda s: s["screens"][-1] == "TapeScreen" and s["focused"] == "tape", limit=15)
    state = app.settle(0.5)
    assert state["focused"] == "tape" and state["orders"] == 0 and not state["bar_open"]
    app.burst(b"\x1b")
    app.wait(lambda s: s["screens"] == ["TradeScreen"], limit=10)


def test_a_command_typed_over_the_chain_is_a_command_not_chain_keys(app: PtyApp) -> None:  # noqa: F811
    # On the chain b, s, v, c and enter are leg and send keys: after ':' they must be text.
    app.burst(b":chain AAPL\r")
    app.wait(lambda s: s["screens"][-1] == "ChainScreen" and s["focused"] == "chain", limit=15)
    app.settle(1.0)
    app.burst(b":buy 1 MES mkt\r")
    state = app.wait(lambda s: s["screens"][-1] == "ConfirmDialog", limit=15)
    assert state["screens"] == ["TradeScreen", "ChainScreen", "ConfirmDialog"] and state["orders"] == 0
    app.burst(b"n")
    state = app.wait(lambda s: s["screens"] == ["TradeScreen", "ChainScreen"], limit=10)
    assert state["orders"] == 0 and state["legs"] == 0
