"""The login modal and the status bar's login countdown, with Pilot.

The engine's own ``login_start``/``login_complete`` are the lead's part of this issue; until they
land the app runs against :class:`LoginClient`, the real engine plus those two verbs backed by
the real OAuth helper and a fake authorization server on loopback.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.fakes.oauth import FakeOAuthServer, browser_approves
from tests.tui.conftest import FROZEN, make_app, wait_for
from tterm.brokers.common.oauth import OAuthApp, OAuthLogin
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.core.broker import LoginPrompt, LoginResult
from tterm.core.client import EngineError, EngineSnapshot
from tterm.core.models import ConnectionState, ConnectionStatus
from tterm.tui.modals.login import LoginScreen
from tterm.tui.widgets.status_bar import auth_countdown

SIZE = (140, 44)


class LoginClient:
    """The engine, plus the two login verbs of the client seam (a stub for the engine's own)."""

    def __init__(self, engine: Any, flows: dict[str, OAuthLogin]) -> None:
        self._engine = engine
        self.flows = flows
        self.completed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def snapshot(self) -> EngineSnapshot:
        snap = await self._engine.snapshot()
        waiting = ConnectionStatus(broker="sw", state=ConnectionState.NEEDS_LOGIN, detail="log in with: tterm login sw")
        return replace(snap, connections=(*snap.connections, waiting))

    async def login_start(self, broker: str) -> LoginPrompt:
        flow = self.flows.get(broker)
        if flow is None:
            raise EngineError(f"{broker} needs no browser login: it logs in by itself")
        return flow.start()

    async def login_complete(self, broker: str, prompt: LoginPrompt, pasted_url: str) -> LoginResult:
        result = await self.flows[broker].complete(prompt, pasted_url)
        self.completed.append(broker)
        return result


def _flow(server: FakeOAuthServer, tmp_path: Path) -> OAuthLogin:
    app = OAuthApp(
        authorize_url=f"{server.url}/authorize",
        token_url=f"{server.url}/token",
        client_id=server.client_id,
        client_secret=server.client_secret,
        redirect_uri=server.redirect_uri,
        login_lifetime=timedelta(days=7),
    )
    return OAuthLogin("sw", app, TokenStore(token_path(tmp_path, "sw"), owner="demo"), title="OAuth demo")


def _text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def _palette(app: Any) -> list[str]:
    found = app.screen.query("CommandList")
    if not found:
        return []
    options = found.first()
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_login_from_the_palette_refuses_a_wrong_paste_then_logs_in(engine, settings, tmp_path) -> None:
    server = FakeOAuthServer()
    await server.start()
    flow = _flow(server, tmp_path)
    client = LoginClient(engine, {"sw": flow})
    app = make_app(client, settings)  # type: ignore[arg-type]
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(app.ready.is_set, pilot)
            await wait_for(lambda: "sw ○ NEEDS LOGIN: tterm login sw" in str(app.status.render()), pilot)
            await pilot.press("ctrl+p", *"login sw")
            await wait_for(lambda: any("log in to sw" in p for p in _palette(app)), pilot)
            await pilot.press("enter")
            await wait_for(lambda: isinstance(app.screen, LoginScreen), pilot)
            await wait_for(lambda: _text(app, "#url").startswith(f"{server.url}/authorize?"), pilot)
            url = flow_url = _text(app, "#url")
            assert "state=" in flow_url and "sent to https://127.0.0.1:8182/" in _text(app, "#redirect")
            pasted = await asyncio.to_thread(browser_approves, url)

            # Another attempt's address: refused with the reason, the dialog stays, nothing stored.
            field = app.screen.query_one("#login-url")
            field.value = re.sub(r"state=[^&]+", "state=someone-elses", pasted)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(lambda: "different state" in _text(app, "#error"), pilot)
            assert "Nothing changed: the old login stays." in _text(app, "#error")
            assert isinstance(app.screen, LoginScreen) and flow.store.load() is None

            field.value = pasted  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(lambda: not isinstance(app.screen, LoginScreen), pilot)
            assert client.completed == ["sw"]
            stored = flow.store.load()
            assert stored is not None and stored.value in server.access
    finally:
        await server.stop()


async def test_a_click_on_needs_login_opens_it_and_a_broker_without_one_says_so(engine, settings) -> None:
    client = LoginClient(engine, {})
    app = make_app(client, settings)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await wait_for(lambda: "NEEDS LOGIN" in str(app.status.render()), pilot)
        await pilot.click("StatusBar")
        await wait_for(lambda: isinstance(app.screen, LoginScreen), pilot)
        await wait_for(lambda: "needs no browser login" in _text(app, "#url"), pilot)
        assert app.screen.query_one("#login-url").disabled  # nothing to paste into
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, LoginScreen), pilot)
        await pilot.press("ctrl+p")  # the empty palette offers the login of a broker that needs one
        await wait_for(lambda: any(p.startswith("login sw: sw needs a login") for p in _palette(app)), pilot)
        await pilot.press(*"login nosuch")
        await wait_for(lambda: any("log in to nosuch" in p for p in _palette(app)), pilot)
        await pilot.press("enter")
        await wait_for(lambda: any("no broker named 'nosuch'" in n.message for n in app._notifications), pilot)
        assert not isinstance(app.screen, LoginScreen)  # refused: nothing opened


def _status(broker: str, left: timedelta, *, person: bool) -> ConnectionStatus:
    return ConnectionStatus(broker=broker, state=ConnectionState.CONNECTED, last_message_at=FROZEN,
                            auth_expires_at=FROZEN + left, auth_label="login", auth_needs_person=person)  # fmt: skip


def test_the_countdown_warns_a_day_ahead_for_a_person_login_and_late_for_renewed_tokens() -> None:
    tv = timedelta(hours=1, minutes=12)
    assert auth_countdown(_status("tv", tv, person=False), FROZEN) == ("🔑 1h12m", "muted")
    assert auth_countdown(_status("tv", timedelta(minutes=9), person=False), FROZEN) == ("🔑 9m00s", "warn")
    assert auth_countdown(_status("tv", timedelta(seconds=-1), person=False), FROZEN) == ("🔑 expired", "down")
    assert auth_countdown(_status("sw", timedelta(days=3), person=True), FROZEN) == ("🔑 3d00h", "muted")
    assert auth_countdown(_status("sw", timedelta(hours=20), person=True), FROZEN) == ("🔑 20h00m", "warn")
    assert auth_countdown(_status("sw", timedelta(minutes=50), person=True), FROZEN) == ("🔑 50m00s", "down")
    assert auth_countdown(ConnectionStatus(broker="paper", state=ConnectionState.CONNECTED), FROZEN) is None


async def test_the_status_bar_shows_the_countdown_from_the_structured_field(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        bar = app.status
        state = app.bridge.state.connections
        state["sw"] = _status("sw", timedelta(hours=20), person=True)
        state["tv"] = _status("tv", timedelta(hours=1, minutes=12), person=False)
        app._update_status()
        line = bar.render()
        text = str(line)
        assert "sw ● connected 0.0s 🔑 20h00m" in text and "tv ● connected 0.0s 🔑 1h12m" in text
        styles = {text[s.start : s.end].strip(): s.style for s in line.spans}
        assert styles["🔑 20h00m"] == bar._s("warn") and styles["🔑 1h12m"] == bar._s("muted")


async def test_a_lockout_shows_its_end_in_the_status_bar_and_the_kill_switch_says_it_is_not_accepted(
    engine, settings
) -> None:
    """A broker lockout (a Tradovate 429): the status bar shows when it ends (CT), and the kill
    switch says plainly, before and after, that this broker will not accept it yet."""
    from tterm.tui.modals.confirm import ConfirmDialog

    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        until = FROZEN + timedelta(minutes=47)
        locked = ConnectionStatus(broker="paper", state=ConnectionState.CONNECTED, last_message_at=FROZEN,
                                  blocked_until=until, detail="Tradovate locked this login out")  # fmt: skip
        app.bridge.state.connections["paper"] = locked
        app._update_status()
        line = app.status.render()
        text = str(line)
        assert "paper ● connected 0.0s ⛔ locked out until 10:17 CT" in text, text
        styles = {text[s.start : s.end].strip(): s.style for s in line.spans}
        assert any(k.startswith("⛔ locked out") and v == app.status._s("down") for k, v in styles.items())
        app.orders_table.focus()
        await pilot.press("ctrl+k")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        dialog = app.screen
        assert any("paper will not accept it yet: locked out by the broker until" in d for d in dialog.details)
        await pilot.press("n")
        # Lifted: gone from the bar and from the dialog.
        app.bridge.state.connections["paper"] = replace(locked, blocked_until=None)
        app._update_status()
        assert "locked out" not in str(app.status.render())


async def test_at_80_columns_a_lockout_keeps_its_end_time(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        locked = ConnectionStatus(broker="tv", state=ConnectionState.CONNECTED, last_message_at=FROZEN,
                                  auth_expires_at=FROZEN + timedelta(hours=1), auth_label="session",
                                  blocked_until=FROZEN + timedelta(minutes=47))  # fmt: skip
        app.bridge.state.connections["tv"] = locked
        app._update_status()
        text = str(app.status.render())
        assert "tv ● connected ⛔ locked out until 10:17 CT" in text, text
