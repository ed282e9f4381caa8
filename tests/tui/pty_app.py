"""The real terminal app on the real Textual driver, for tests that type into a pty.

Run as ``python -m tests.tui.pty_app ROOT STATE``: it builds the engine on a scripted paper
broker in ROOT (a frozen market, so nothing moves unless a test types), runs the app in the
terminal it was started in, and every 50 ms writes what a test needs to see to STATE (JSON,
replaced atomically): whether it is ready, which widget has focus, the command bar, the screen
stack, the ticket's fields, the watchlist and the orders the engine holds.
``TTERM_TEST_SLOW_PREVIEW=N`` makes every pre-trade check take N seconds (an engine far away).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tterm.config import Settings
from tterm.core.clock import CmeClock
from tterm.core.models import Quote
from tterm.runtime import build_engine
from tterm.tui.app import TtermApp

FROZEN = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)
QUOTES = {
    "MES": ("5000.00", "5000.25", "5000.25", "4980.50"),
    "ES": ("5000.00", "5000.25", "5000.00", "4980.50"),
    "MNQ": ("21000.00", "21000.25", "21000.25", "21100.00"),
    "NQ": ("21000.00", "21000.25", "21000.00", "21100.00"),
}


def frozen() -> datetime:
    return FROZEN


class StateApp(TtermApp):
    """The terminal, reporting its state to a file for the test on the other side of the pty."""

    # CSS_PATH is read relative to the module of the class that sets it: point at the app's own.
    CSS_PATH = str(Path(sys.modules[TtermApp.__module__].__file__ or "").with_name("tterm.tcss"))

    def __init__(self, *args: Any, state_file: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state_file = state_file
        #: The keys the stall watchdog had to release, with their flight state (for a failing test).
        self.stalled_keys: list[str] = []

    stalled_keys: list[str] = []

    def _key_stalled(self, seq: int) -> None:
        f = self._key_flight
        if f is not None and f.seq == seq:
            self.stalled_keys.append(_flight(self) + f" screen={type(f.screen).__name__}")
        super()._key_stalled(seq)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(0.05, self._dump)

    def _dump(self) -> None:
        if not self.alive:
            return
        bar = self.command_bar
        ticket: dict[str, str] = {}
        for fid in ("t-symbol", "t-qty", "t-limit", "t-stop", "t-tp", "t-sl"):
            nodes = self.query(f"#{fid}")
            if nodes:
                ticket[fid] = getattr(nodes.first(), "value", "")
        focused = self.focused
        state = {
            "ready": self.ready.is_set(),
            "focused": (focused.id or type(focused).__name__) if focused is not None else None,
            "bar_open": bar.is_open,
            "bar_value": bar.input.value,
            "screens": [type(s).__name__ for s in self.screen_stack],
            "dialog": getattr(self.screen, "title_text", ""),
            "cursor": self.grid.cursor,
            "ticket": ticket,
            "watchlist": self.watchlists.get(self.list_name, []),
            "orders": len(self.bridge.state.orders),
            "alerts": sorted(
                a.describe() + (f" ({a.note})" if a.note else "") for a in self.bridge.state.alerts.values()
            ),
            "dropped": list(getattr(self.screen, "dropped", [])),
            "keys": self.keys_dispatched,
            "stalled": self.keys_stalled,
            "stalled_keys": self.stalled_keys,
            "flight": _flight(self),
            "backlog": len(getattr(self, "_key_backlog", ())),
            "legs": len(getattr(next((sc for sc in self.screen_stack if hasattr(sc, "legs")), None), "legs", ())),
            "dom": self._dom_state(),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def _key_stalled(self, seq: int) -> None:
        flight = getattr(self, "_key_flight", None)
        if flight is not None and flight.seq == seq:
            self.stalled_keys.append(f"{getattr(flight.event, 'key', 'paste')} {_flight(self)}")
        super()._key_stalled(seq)

    def _dom_state(self) -> dict[str, Any] | None:
        dom = self.trade.dom
        if dom is None or dom.instrument is None:
            return None
        market = dom.market_index()
        return {"symbol": dom.instrument.symbol, "cursor": dom.cursor, "market": market, "quantity": dom.quantity,
                "moving": dom.moving.order_id if dom.moving is not None else None}  # fmt: skip


def _flight(app: Any) -> str:
    f = getattr(app, "_key_flight", None)
    if f is None:
        return ""
    return f"seq={f.seq} key={getattr(f.event, 'key', '?')} passes={f.passes} waiting={f.waiting} holds={f.holds}"


def main() -> None:
    root, state_file = Path(sys.argv[1]), Path(sys.argv[2])
    settings = Settings()
    settings.watchlists = {"futures": ["MES1!", "ES1!", "MNQ1!", "NQ1!"]}
    saved: list[Any] = []  # the config edits the app would write
    clock = CmeClock(now=frozen)
    engine = build_engine(settings, paper_seed=7, scripted=True, clock=clock, root=root)
    slow = float(os.environ.get("TTERM_TEST_SLOW_PREVIEW", "0") or 0)
    if slow:
        preview = engine.preview

        async def slow_preview(request: Any) -> Any:  # an engine far away (a hub over a slow link)
            await asyncio.sleep(slow)
            return await preview(request)

        engine.preview = slow_preview  # type: ignore[method-assign]

    async def seed() -> None:
        for symbol, (bid, ask, last, prev) in QUOTES.items():
            inst = engine.instrument(symbol)
            quote = Quote(
                symbol=inst.symbol, ts=FROZEN, bid=Decimal(bid), ask=Decimal(ask), last=Decimal(last),
                prev_close=Decimal(prev), bid_size=5, ask_size=5, volume=1000,
            )  # fmt: skip
            await engine.brokers["paper"].push_quote(quote)

    class App(StateApp):
        async def _startup(self) -> None:
            await engine.start()
            await engine.subscribe(list(QUOTES))
            await seed()
            self.owns_engine = False
            await super()._startup()

        async def on_unmount(self) -> None:
            await super().on_unmount()
            await engine.stop()

    app = App(
        engine,
        settings=settings,
        clock=clock,
        wall=frozen,
        state_file=state_file,
        persist=saved.append,
    )
    app.run()


if __name__ == "__main__":
    main()
