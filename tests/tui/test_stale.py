"""Stale data is marked: prices dim and a STALE badge shows when a quote is older than the
staleness limit or the hub link is down; a connection's age turns amber, then red; the hub
indicator shows connected from the first attach."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from rich.text import Text

from tests.integration.hub_support import TOKEN, hub_rig
from tests.tui.conftest import FROZEN, make_app, push, wait_for
from tterm.config import Settings
from tterm.core.models import ConnectionState, ConnectionStatus, Quote
from tterm.hub.remote import RemoteEngineClient
from tterm.tui.freshness import AGE_WARN_SECONDS, freshness

SIZE = (140, 44)


class Wall:
    """A real-time clock the test moves."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def style_of(text: Text, needle: str, part: str) -> str:
    """The style of the span covering ``part`` inside the first occurrence of ``needle``."""
    plain = text.plain
    at = plain.index(needle) + needle.index(part)
    styles = [str(span.style) for span in text.spans if span.start <= at < span.end]
    return " ".join(styles)


# --------------------------------------------------------------------------- the rule


def test_the_tui_names_the_hub_link_as_the_remote_client_does() -> None:
    from tterm.hub import remote
    from tterm.tui import freshness as tui

    assert tui.HUB_LINK == remote.HUB_LINK


def test_a_quote_is_stale_past_the_limit_or_while_the_hub_link_is_down() -> None:
    wall = FROZEN + timedelta(seconds=31)
    quote = Quote(symbol="MESZ6", bid=None, ask=None, last=None, ts=FROZEN)
    paper = ConnectionStatus(broker="paper", state=ConnectionState.CONNECTED, last_message_at=FROZEN)
    fresh = freshness([paper], wall, 30)
    assert fresh.quote_stale(quote) and not fresh.link_down
    assert not freshness([paper], FROZEN + timedelta(seconds=29), 30).quote_stale(quote)
    hub_down = ConnectionStatus(broker="hub", state=ConnectionState.RECONNECTING, ts=FROZEN)
    now = freshness([paper, hub_down], FROZEN + timedelta(seconds=1), 30)
    assert now.link_down and now.quote_stale(quote)
    # The staleness check turned off still leaves a limit for the screen.
    assert freshness([paper], wall, 0).stale_after == 30
    # Every source down: nothing is current.
    down = ConnectionStatus(broker="paper", state=ConnectionState.DOWN)
    assert freshness([down], FROZEN, 30).quote_stale(Quote(symbol="MESZ6", ts=FROZEN))
    # Ages: amber from 5 s, red from the limit.
    assert [fresh.age_level(s) for s in (0, AGE_WARN_SECONDS, 29.9, 30)] == ["ok", "warn", "warn", "down"]
    # The hub link's age is how long it has been down.
    assert now.connection_age(hub_down) == 1.0
    assert fresh.connection_age(paper) == 31.0


# --------------------------------------------------------------------------- embedded


async def test_old_quotes_dim_and_the_status_bar_says_stale(engine, settings) -> None:
    wall = Wall(FROZEN)
    app = make_app(engine, settings)
    app.wall = wall
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.pause()
        app._tick_second()
        assert app.grid.stale_count == 0
        assert "STALE" not in app.status.render().plain
        assert "STALE" not in (app.grid.border_title or "")

        wall.at = FROZEN + timedelta(seconds=40)
        await push(engine, "ES", ts=wall.at)  # one symbol keeps trading; the rest went quiet
        await wait_for(lambda: app.bridge.state.quotes[engine.instrument("ES").symbol].ts == wall.at, pilot)
        app._tick_second()
        await pilot.pause()
        rows = {r.listed: r for r in app.grid.rows}
        assert rows["MES1!"].stale and not rows["ES1!"].stale
        assert app.grid.stale_count == len(rows) - 1
        assert f"STALE {len(rows) - 1}" in (app.grid.border_title or "")
        status = app.status.render()
        assert "STALE" in status.plain
        # The ticket (MES1!) says its quote is stale, and how old it is.
        quote_line = str(app.ticket.query_one("#t-quote").render())
        assert quote_line.startswith("STALE 40s")
        # The dimmed row is drawn in the stale colour, the live one is not.
        stale_style = app.grid.get_component_rich_style("quote-grid--stale", partial=True)
        mes = app.grid.rows.index(rows["MES1!"])
        app.grid.cursor = len(rows) - 1 if mes == 0 else 0  # the cursor away from both rows
        strip = app.grid._render_row(rows["MES1!"], 0, 100)
        bid_segment = next(seg for seg in strip if "5,000.00" in seg.text)
        assert bid_segment.style is not None and bid_segment.style.color == stale_style.color
        strip = app.grid._render_row(rows["ES1!"], 0, 100)
        bid_segment = next(seg for seg in strip if "5,000.00" in seg.text)
        assert bid_segment.style is not None and bid_segment.style.color != stale_style.color

        # A fresh quote brings a row back.
        await push(engine, "MES", ts=wall.at)
        await wait_for(lambda: not app.grid.rows[mes].stale, pilot)


async def test_connection_age_turns_amber_then_red(engine, settings) -> None:
    wall = Wall(FROZEN)
    app = make_app(engine, settings)
    app.wall = wall
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        paper = ConnectionStatus(broker="paper", state=ConnectionState.CONNECTED, last_message_at=FROZEN)
        app.bridge.state.connections = {"paper": paper}
        ok = app.status._s("muted")
        warn = app.status._s("warn")
        down = app.status._s("down")
        for seconds, want in ((1, ok), (12, warn), (36, down)):
            wall.at = FROZEN + timedelta(seconds=seconds)
            app._tick_second()
            text = app.status.render()
            age = f" {seconds}s" if seconds >= 10 else f" {seconds:.1f}s"
            assert style_of(text, "connected" + age, age.strip()).endswith(str(want)), (seconds, text.spans)


# --------------------------------------------------------------------------- attached to a hub


async def test_attached_terminal_shows_the_hub_link_and_marks_everything_stale_when_it_drops(tmp_path: Path) -> None:
    from tterm.tui.app import TtermApp

    async with hub_rig(tmp_path) as rig:
        await rig.quote("MES1!")
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN, backoff=(0.05, 0.2))
        settings = Settings.model_validate({"general": {"default_account": "paper:FUT50K"}})
        settings.watchlists = {"futures": ["MES1!"]}
        app = TtermApp(client, settings=settings, owns_engine=True)
        async with app.run_test(size=SIZE) as pilot:
            await asyncio.wait_for(app.ready.wait(), 10)
            await wait_for(lambda: app.grid.rows[0].quote is not None, pilot)
            app._tick_second()
            # First attach: the hub indicator is there and connected.
            hub = app.bridge.state.connections.get("hub")
            assert hub is not None and hub.state is ConnectionState.CONNECTED
            text = app.status.render().plain
            assert "hub ● connected" in text
            assert "STALE" not in text
            assert not app.grid.rows[0].stale

            # The hub goes away: every price is stale at once, the brokers' states are unknown.
            await rig.hub.server.stop()
            await wait_for(lambda: app.bridge.state.connections["hub"].state is not ConnectionState.CONNECTED, pilot)
            app._tick_second()
            await pilot.pause()
            text = app.status.render().plain
            assert "hub ◌ reconnecting" in text
            assert "STALE" in text
            assert "paper ◍ unknown" in text
            assert app.grid.rows[0].stale
