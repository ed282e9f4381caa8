"""The trade screen: the main layout (watchlist, DOM ladder, order ticket, blotter, positions,
risk meters, status bar, ``:`` command bar) and how each pane is fed.

Each pane declares the kinds of change it consumes (``CONSUMES``, names of
:class:`tterm.tui.bridge.Changes` fields). Once a frame the app hands the screen what the bridge
drained; :meth:`TradeScreen.apply_changes` gives a *hot* pane (watchlist, ticket, ladder) its
changes at once, and marks the DataTable panes dirty for a redraw at most every
:data:`TABLE_INTERVAL` seconds. Panes never call the engine: orders go to the app's one order path.

Sizes: at 80x24 the watchlist keeps symbol, bid, ask and last (other columns go first); from
:data:`WIDE_WIDTH` x :data:`WIDE_HEIGHT` positions and risk get their own panes, the watchlist is
only as wide as its columns, and the rest goes to the ladder, the ticket and the risk meters.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, TabbedContent, TabPane

from tterm.config import IfMissing
from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import Instrument, ModelError, OrderRequest, OrderSource, OrderType, RiskStatus
from tterm.tui.bridge import Changes
from tterm.tui.market_verbs import ScreenCommand
from tterm.tui.screens.launch import ScreenError, command_for, open_screen
from tterm.tui.widgets.blotter import FillsTable, OrdersTable
from tterm.tui.widgets.command_bar import CommandBar
from tterm.tui.widgets.dom_ladder import DomLadder
from tterm.tui.widgets.order_ticket import OrderTicket
from tterm.tui.widgets.positions import PositionsTable
from tterm.tui.widgets.quote_grid import QuoteGrid
from tterm.tui.widgets.risk_meter import RiskPanel, status_from_profile
from tterm.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp

WIDE_WIDTH = 140
WIDE_HEIGHT = 36
"""From this size on, positions and risk get their own panes instead of tabs."""

TABLE_INTERVAL = 0.2
"""Blotter, positions and risk redraw at most five times a second (each is a DataTable diff)."""

HOT_PANES = ("watchlist", "ticket", "dom")
"""Panes fed every frame (line-API or tiny); the others are redrawn at most every TABLE_INTERVAL."""


class TradeScreen(Screen[None]):
    """The main layout. The app owns the engine, the accounts and the order path; this screen
    owns the panes, the watchlists shown in them, and the layout for the terminal's size."""

    def __init__(self) -> None:
        super().__init__(id="trade")
        self.wide = False
        self.layout_busy = False
        self._dirty: set[str] = {"orders", "fills", "positions", "risk"}
        self._tables_at = -1e9
        self._stale_rows = 0
        self._held: set[str] = set()

    @property
    def tterm(self) -> TtermApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            yield QuoteGrid(id="watchlist")
            yield Container(id="dom-slot")
            with Vertical(id="side"):
                yield OrderTicket(self.tterm.bridge, id="ticket")
                yield Container(id="side-risk")
        with Horizontal(id="bottom"):
            with TabbedContent(id="tabs", initial="tab-orders"):
                with TabPane("Orders", id="tab-orders"):
                    yield OrdersTable(id="orders")
                with TabPane("Fills & rejects", id="tab-fills"):
                    yield FillsTable(id="fills")
                with TabPane("Positions", id="tab-positions"):
                    yield PositionsTable(id="positions")
                with TabPane("Risk", id="tab-risk"):
                    yield RiskPanel(id="risk")
            yield Container(id="bottom-right")
        yield CommandBar(id="command-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.grid.flash_enabled = True
        self.grid.border_title = "Watchlist"
        self.ticket.border_title = "Order ticket"
        self.ticket.presets = self.tterm.presets
        self.grid.focus()
        self.check_layout(self.app.size.width, self.app.size.height)
        self.tterm.trade_screen_mounted()

    # ------------------------------------------------------------------ pane handles

    @property
    def grid(self) -> QuoteGrid:
        return self.query_one("#watchlist", QuoteGrid)

    @property
    def ticket(self) -> OrderTicket:
        return self.query_one("#ticket", OrderTicket)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def orders_table(self) -> OrdersTable:
        return self.query_one("#orders", OrdersTable)

    @property
    def fills_table(self) -> FillsTable:
        return self.query_one("#fills", FillsTable)

    @property
    def positions_table(self) -> PositionsTable:
        return self.query_one("#positions", PositionsTable)

    @property
    def risk_panel(self) -> RiskPanel:
        return self.query_one("#risk", RiskPanel)

    @property
    def command_bar(self) -> CommandBar:
        return self.query_one("#command-bar", CommandBar)

    @property
    def dom(self) -> DomLadder | None:
        return self.query_one_optional("#dom", DomLadder)

    def panes(self) -> list[Widget]:
        """The mounted panes that consume engine changes (each declares ``CONSUMES``)."""
        found: list[Widget] = []
        for wid in ("watchlist", "ticket", "dom", "orders", "fills", "positions", "risk"):
            pane = self.query_one_optional(f"#{wid}")
            if pane is not None and getattr(pane, "CONSUMES", None):
                found.append(pane)
        return found

    # ------------------------------------------------------------------ feeding the panes

    def apply_changes(self, ch: Changes, now: float) -> None:
        """Hand one frame's changes to the panes that consume them."""
        app = self.tterm
        kinds = ch.kinds()
        with app.batch_update():
            for pane in self.panes():
                wanted = pane.CONSUMES & kinds  # type: ignore[attr-defined]
                if not wanted:
                    continue
                if pane.id in HOT_PANES:
                    self._feed_hot(pane, ch, now)
                else:
                    self._dirty.add(pane.id or "")
            if ch.positions:
                held = {p.symbol for p in app.bridge.state.positions.values() if p.quantity}
                if held != self._held:
                    self._held = held
                    app.run_worker(app.bridge.want("positions", held), group="subs-positions", exclusive=True,
                                   exit_on_error=False)  # fmt: skip
            if ch.accounts:
                self.ticket.set_accounts(list(app.bridge.state.accounts.values()), app.account)
            if ch.connections:
                self.update_freshness()
            if ch.connections or ch.locks or ch.accounts:
                self.update_status()

    def _feed_hot(self, pane: Widget, ch: Changes, now: float) -> None:
        if isinstance(pane, QuoteGrid):
            pane.apply_quotes(ch.quotes, now)
        elif isinstance(pane, OrderTicket):
            inst = pane.instrument
            if inst is not None and inst.symbol in ch.quotes:
                pane.update_quote(ch.quotes[inst.symbol])
        elif isinstance(pane, DomLadder):
            pane.apply_changes(ch, self.tterm.bridge.state, self.tterm.account)

    def tables_changed(self, *names: str) -> None:
        self._dirty.update(names)

    def flush_tables(self, *, force: bool = False) -> None:
        """Redraw the DataTable panes that changed, at most every TABLE_INTERVAL seconds."""
        dirty = self._dirty
        if not dirty:
            return
        now = self.tterm.mono()
        if not force and now - self._tables_at < TABLE_INTERVAL:
            return
        self._tables_at = now
        app = self.tterm
        state = app.bridge.state
        tz = app.clock.now_ct().tzinfo
        assert tz is not None
        lookup = app.instrument_or_none
        with app.batch_update():
            if "orders" in dirty:
                self.orders_table.update_orders(
                    sorted(state.working_orders(), key=lambda o: (o.created_at, o.order_id)), state.accounts, tz, lookup
                )
                dirty.discard("orders")
            if "fills" in dirty:
                self.fills_table.update_fills(list(state.fills.values()), state.rejected_orders(), state.accounts, tz,
                                              lookup)  # fmt: skip
                dirty.discard("fills")
            positions = self.query_one_optional("#positions", PositionsTable)
            if "positions" in dirty and positions is not None and not self.layout_busy:
                positions.update_positions(list(state.positions.values()), state.accounts, lookup)
                dirty.discard("positions")
            if "risk" in dirty and not self.layout_busy:
                self.update_risk()
                dirty.discard("risk")

    def tick_second(self) -> None:
        self.check_layout(self.size.width, self.size.height)
        self.update_freshness()
        self.update_status()
        if self.tterm.bridge.state.loaded:
            self.update_risk()
        dom = self.dom
        if dom is not None:
            dom.set_freshness(self.tterm.freshness)

    # ------------------------------------------------------------------ status and risk

    def update_freshness(self) -> None:
        """Which prices are current: dim the stale ones, badge them (once a second and on connection changes)."""
        app = self.tterm
        fresh = app.update_freshness()
        stale_rows = self.grid.set_freshness(fresh)
        self.ticket.set_freshness(fresh)
        if stale_rows != self._stale_rows:
            self._stale_rows = stale_rows
            self.grid.border_title = self._grid_title()

    def _grid_title(self) -> str:
        app = self.tterm
        names = list(app.watchlists)
        at = names.index(app.list_name) + 1 if app.list_name in names else 1
        title = f"Watchlist: {app.list_name} ({at}/{len(names)})"
        if self._stale_rows:
            title += f"  STALE {self._stale_rows}"
        return title

    @property
    def stale_rows(self) -> int:
        return self._stale_rows

    def update_status(self) -> None:
        app = self.tterm
        state = app.bridge.state
        acct = state.accounts.get(app.account) if app.account else None
        cutoff, label = app.cutoff(app.account)
        self.status.show(
            live=bool(acct.is_live) if acct is not None else state.is_live,
            account_label=app.account_name(app.account),
            confirm_on=app.confirm_on(app.account),
            locked=state.is_locked(app.account) if app.account else False,
            connections=sorted(state.connections.values(), key=lambda c: c.broker),
            now=app.clock.now(),
            wall=app.wall(),
            cutoff=cutoff,
            cutoff_label=label,
            note="SSH" if app.ssh else "",
            freshness=app.freshness,
            stale=app.freshness.everything_stale or self._stale_rows > 0,
        )

    def risk_statuses(self) -> dict[str, RiskStatus | None]:
        """Each account's risk status: the engine's, else one computed from its rule profile."""
        app = self.tterm
        state = app.bridge.state
        out: dict[str, RiskStatus | None] = {}
        for acct in state.accounts.values():
            status = state.risk.get(acct.id)
            if status is None:
                profile = app.profile(acct)
                if profile is not None:
                    used = Decimal(0)
                    for pos in state.positions_in(acct.id):
                        inst = app.instrument_or_none(pos.symbol)
                        if inst is not None and pos.quantity:
                            used += abs(pos.quantity) * profile.contracts.weight(inst)
                    cutoff, label = app.cutoff(acct.id)
                    status = status_from_profile(
                        acct,
                        state.balances.get(acct.id),
                        profile,
                        contracts_used=used,
                        cutoff=cutoff if label == "flat by" else None,
                    )
                    lock = state.locks.get(acct.id)
                    if lock is not None and lock.locked:
                        status = RiskStatus(**{**_fields(status), "locked": True, "lock_reason": lock.reason})
            out[acct.id] = status
        return out

    def update_risk(self) -> None:
        app = self.tterm
        state = app.bridge.state
        if not state.accounts:
            return
        panel = self.query_one_optional("#risk", RiskPanel)
        if panel is None or self.layout_busy:
            return
        # Each account's positions total, and when its newest position was measured.
        totals: dict[str, tuple[Decimal, datetime]] = {}
        for pos in state.positions.values():
            total, at = totals.get(pos.account, (Decimal(0), pos.ts))
            totals[pos.account] = (total + pos.total_pnl, max(at, pos.ts))
        panel.show(state.accounts.values(), self.risk_statuses(), state.balances, app.clock.now(), app.account,
                   totals)  # fmt: skip

    # ------------------------------------------------------------------ layout for the size

    def on_resize(self, event: events.Resize) -> None:
        self.check_layout(event.size.width, event.size.height)

    def check_layout(self, width: int, height: int) -> None:
        wide = width >= WIDE_WIDTH and height >= WIDE_HEIGHT
        if wide != self.wide and not self.layout_busy:
            self.layout_busy = True
            self.run_worker(self._relayout(wide), group="layout", exclusive=True, exit_on_error=False)

    async def _relayout(self, wide: bool) -> None:
        """Positions and risk: their own panes when the screen is big, tabs when it is small."""
        try:
            tabs = self.query_one("#tabs", TabbedContent)
            focused_positions = self.focused is not None and self.focused.id == "positions"
            for wid in ("#positions", "#risk"):
                for node in self.query(wid):
                    await node.remove()
            if wide:
                for pane in ("tab-positions", "tab-risk"):
                    if tabs.query(f"#{pane}"):
                        await tabs.remove_pane(pane)
                await self.query_one("#bottom-right").mount(PositionsTable(id="positions"))
                await self.query_one("#side-risk").mount(RiskPanel(id="risk"))
                self.query_one("#bottom-right").border_title = "Positions"
                self.query_one("#side-risk").border_title = "Risk"
            else:
                await tabs.add_pane(TabPane("Positions", PositionsTable(id="positions"), id="tab-positions"))
                await tabs.add_pane(TabPane("Risk", RiskPanel(id="risk"), id="tab-risk"))
            self.wide = wide
            self.set_class(wide, "-wide")
        finally:
            self.layout_busy = False
        self._dirty.update(("positions", "risk"))
        if self.tterm.bridge.state.loaded:
            self.flush_tables(force=True)
        if focused_positions:
            self.positions_table.focus()
        self.check_layout(self.size.width, self.size.height)

    def focus_pane(self, pane: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if pane == "watchlist":
            self.grid.focus()
        elif pane == "ticket":
            self.query_one("#t-symbol").focus()
        elif pane == "blotter":
            tabs.active = "tab-orders"
            self.orders_table.focus()
        elif pane == "fills":
            tabs.active = "tab-fills"
            self.fills_table.focus()
        elif pane == "dom":
            dom = self.dom
            if dom is not None:
                dom.focus()
            else:
                self.notify("no ladder open: dom SYMBOL opens one (or d on the watchlist)", severity="warning")
        elif pane in ("positions", "risk") and self.layout_busy:
            self.call_after_refresh(self.focus_pane, pane)  # the pane is moving between tab and side
        elif pane == "positions":
            if not self.wide:
                tabs.active = "tab-positions"
            self.positions_table.focus()
        elif pane == "risk":
            if not self.wide:
                tabs.active = "tab-risk"
            self.risk_panel.focus()

    # ------------------------------------------------------------------ the DOM ladder

    async def open_dom(self, inst: Instrument) -> None:
        """Show the ladder for ``inst`` (replacing the one open): depth and trades are streamed
        for it while it shows. On a small screen it takes the watchlist's place."""
        app = self.tterm
        dom = self.dom
        if dom is None:
            dom = DomLadder(id="dom")
            await self.query_one("#dom-slot").mount(dom)
        dom.risk = app.settings.risk
        dom.quantity = app.presets.quantity(inst)
        dom.show_instrument(inst, app.bridge.state, app.account, app.freshness)
        self.set_class(True, "-dom")
        await app.bridge.want("dom", [inst.symbol])
        missing = []
        for kind, what in (("depth", "no depth: the touch comes from the quote"),
                           ("trades", "no prints: no last trade or volume at price")):  # fmt: skip
            try:
                await app.bridge.want("dom", [inst.symbol], kind=kind)
            except (EngineError, UnknownSymbol, ModelError) as exc:
                await app.bridge.want("dom", [], kind=kind)
                missing.append(f"{what} ({exc})")
        if missing:
            self.notify(f"{inst.symbol}: " + "; ".join(missing), title="ladder", severity="warning", timeout=10)
        dom.focus()
        app.return_focus_to(dom)

    async def close_dom(self) -> None:
        dom = self.dom
        app = self.tterm
        if dom is None:
            return
        refocus = dom.has_focus
        self.set_class(False, "-dom")  # the watchlist shows again before it takes the focus
        await dom.remove()
        await app.bridge.want("dom", [], kind="depth")
        await app.bridge.want("dom", [], kind="trades")
        await app.bridge.want("dom", [])
        if refocus:
            self.call_after_refresh(self.grid.focus)

    @on(DomLadder.Closed)
    def _dom_closed(self, event: DomLadder.Closed) -> None:
        event.stop()
        self.run_worker(self.close_dom(), group="dom", exit_on_error=False)

    @on(DomLadder.Problem)
    def _dom_problem(self, event: DomLadder.Problem) -> None:
        event.stop()
        self.notify(event.text, title="ladder", severity="error", timeout=8)

    @on(DomLadder.PlaceOrder)
    def _dom_order(self, event: DomLadder.PlaceOrder) -> None:
        event.stop()
        self.tterm.orders.submit(event.request)

    @on(DomLadder.Move)
    def _dom_move(self, event: DomLadder.Move) -> None:
        event.stop()
        self.tterm.orders.move(event.order, event.price)

    @on(DomLadder.CancelRow)
    def _dom_cancel(self, event: DomLadder.CancelRow) -> None:
        event.stop()
        self.tterm.orders.cancel_orders(list(event.orders), event.what)

    @on(DomLadder.PositionVerb)
    def _dom_position(self, event: DomLadder.PositionVerb) -> None:
        event.stop()
        app = self.tterm
        if app.account is None:
            self.notify("no account yet", severity="error")
            return
        orders = app.orders
        if event.verb == "flatten":
            orders.flatten(app.account, event.symbol)
        elif orders.position(app.account, event.symbol) is None:
            self.notify(f"{event.verb}: no position in {event.symbol}", severity="error")
        elif event.verb == "reverse":
            orders.reverse(app.account, event.symbol, OrderSource.DOM)
        elif event.verb == "breakeven":
            orders.breakeven(app.account, event.symbol, OrderSource.DOM)

    # ------------------------------------------------------------------ watchlists

    async def show_list(self, name: str) -> None:
        app = self.tterm
        app.list_name = name
        entries = [app.bridge.resolve(s) for s in app.watchlists.get(name, [])]
        self.grid.show_list(name, entries, app.bridge.state.quotes, app.mono())
        self._stale_rows = self.grid.set_freshness(app.freshness)
        self.grid.border_title = self._grid_title()
        await app.bridge.want("watchlist", [e.contract for e in entries if e.contract])

    async def _save_lists(self) -> None:
        app = self.tterm
        app.settings.watchlists = {k: list(v) for k, v in app.watchlists.items()}
        # The list that changed; the others only where the file leaves them to the defaults
        # (writing one list alone would drop them). Another terminal's edits to other lists stay.
        name = app.list_name
        edits = {
            ("watchlists",): IfMissing({k: list(v) for k, v in app.watchlists.items()}),
            ("watchlists", name): list(app.watchlists[name]),
        }
        app.save_config(edits, "the watchlist")

    async def watch_symbols(self, symbols: tuple[str, ...]) -> str:
        from tterm.tui.actions import CommandError

        app = self.tterm
        current = app.watchlists.setdefault(app.list_name, [])
        added, bad = [], []
        for sym in symbols:
            resolved = app.bridge.resolve(sym)
            if resolved.instrument is None:
                bad.append(f"{sym} ({resolved.error})")
            elif sym in current:
                continue
            else:
                current.append(sym)
                added.append(sym)
        if bad:
            raise CommandError("cannot watch " + "; ".join(bad))
        await self.show_list(app.list_name)
        if added:
            self.grid.move_to(added[-1])
            await self._save_lists()
        return f"watching {', '.join(added)} in {app.list_name}" if added else "already watched"

    async def unwatch_symbols(self, symbols: tuple[str, ...]) -> str:
        from tterm.tui.actions import CommandError

        app = self.tterm
        current = app.watchlists.get(app.list_name, [])
        upper = {s.upper() for s in symbols}
        missing = [s for s in symbols if s.upper() not in {c.upper() for c in current}]
        if missing:
            raise CommandError(f"{', '.join(missing)} not in watchlist {app.list_name}")
        app.watchlists[app.list_name] = [c for c in current if c.upper() not in upper]
        await self.show_list(app.list_name)
        await self._save_lists()
        return f"removed {', '.join(symbols)} from {app.list_name}"

    async def step_list(self, step: int) -> None:
        app = self.tterm
        names = list(app.watchlists)
        i = names.index(app.list_name) if app.list_name in names else 0
        await self.show_list(names[(i + step) % len(names)])

    # ------------------------------------------------------------------ watchlist keys

    @on(QuoteGrid.Trade)
    def _hotkey_trade(self, event: QuoteGrid.Trade) -> None:
        """Buy or sell at market from the watchlist: the symbol came with the key press, the
        quantity is the row's asset-class preset (the ticket's, when it shows that class)."""
        event.stop()
        app = self.tterm
        if app.account is None:
            self.notify("no account yet", severity="error")
            return
        resolved = app.bridge.resolve(event.listed)
        if resolved.instrument is None:
            self.notify(f"{event.listed}: {resolved.error}", severity="error")
            return
        qty = app.presets.quantity(resolved.instrument)
        request = OrderRequest(
            account=app.account,
            symbol=event.contract,
            side=event.side,
            quantity=qty,
            order_type=OrderType.MARKET,
            source=OrderSource.HOTKEY,
        )
        app.orders.submit(request)

    @on(QuoteGrid.OpenTicket)
    def _open_ticket(self, event: QuoteGrid.OpenTicket) -> None:
        event.stop()
        self.ticket.load(event.listed)
        self.focus_pane("ticket")

    @on(QuoteGrid.CursorMoved)
    def _cursor_moved(self, event: QuoteGrid.CursorMoved) -> None:
        """The ticket's symbol follows the watchlist cursor (not while the ticket is being edited)."""
        event.stop()
        ticket = self.ticket
        if ticket.has_focus_within:
            return
        ticket.follow(event.listed)

    @on(QuoteGrid.OpenDom)
    def _open_dom(self, event: QuoteGrid.OpenDom) -> None:
        event.stop()
        resolved = self.tterm.bridge.resolve(event.listed)
        if resolved.instrument is None:
            self.notify(f"{event.listed}: {resolved.error}", severity="error")
            return
        inst = resolved.instrument
        self.tterm.keys_wait_for(self.tterm.run_worker(self.open_dom(inst), group="dom", exit_on_error=False))

    # ---- market screens (chart, tape, chain): tterm.tui.screens.launch
    @on(QuoteGrid.OpenView)
    def _open_view(self, event: QuoteGrid.OpenView) -> None:
        event.stop()
        app = self.tterm
        app.keys_wait_for(app.run_worker(self._open_screen(command_for(event.kind, event.contract)),
                                         group="screens", exit_on_error=False))  # fmt: skip

    async def _open_screen(self, cmd: ScreenCommand) -> None:
        try:
            await open_screen(self.tterm, cmd)
        except ScreenError as exc:
            self.tterm.commands.error(str(exc))

    @on(QuoteGrid.QuantityKey)
    def _grid_quantity(self, event: QuoteGrid.QuantityKey) -> None:
        event.stop()
        resolved = self.tterm.bridge.resolve(event.listed)
        if resolved.instrument is not None:
            self.choose_quantity(resolved.instrument, event.slot, event.step)

    @on(DomLadder.QuantityKey)
    def _dom_quantity(self, event: DomLadder.QuantityKey) -> None:
        event.stop()
        dom = self.dom
        if dom is not None and dom.instrument is not None:
            self.choose_quantity(dom.instrument, event.slot, event.step)

    def choose_quantity(self, inst: Instrument, slot: int | None, step: int) -> None:
        """A preset key: the quantity for ``inst``'s asset class, shown where that class is traded."""
        presets = self.tterm.presets
        qty = presets.choose(inst, slot) if slot is not None else presets.step(inst, step)
        if qty is None:
            self.notify(f"{inst.asset_class.value}: only {len(presets.sizes(inst))} presets", severity="warning")
            return
        ticket = self.ticket
        if ticket.instrument is not None and ticket.instrument.asset_class is inst.asset_class:
            ticket.set_quantity(qty)
        dom = self.dom
        if dom is not None and dom.instrument is not None and dom.instrument.asset_class is inst.asset_class:
            dom.set_quantity(qty)
        self.notify(f"quantity {qty} for {inst.asset_class.value}s ({presets.label(inst)})", timeout=2)

    @on(QuoteGrid.Problem)
    def _grid_problem(self, event: QuoteGrid.Problem) -> None:
        event.stop()
        self.notify(event.text, severity="warning")

    @on(QuoteGrid.AddRequested)
    def _add_requested(self, event: QuoteGrid.AddRequested) -> None:
        event.stop()
        self.tterm.keys_wait_for(self.tterm.prompt_add())

    @on(QuoteGrid.RemoveRequested)
    def _remove_requested(self, event: QuoteGrid.RemoveRequested) -> None:
        event.stop()
        self.tterm.keys_wait_for(self.tterm.run_worker(self._remove(event.listed), group="watch", exit_on_error=False))

    async def _remove(self, listed: str) -> None:
        from tterm.tui.actions import CommandError

        try:
            self.notify(await self.unwatch_symbols((listed,)), timeout=3)
        except CommandError as exc:
            self.notify(str(exc), severity="error")

    @on(QuoteGrid.ListStep)
    def _list_step(self, event: QuoteGrid.ListStep) -> None:
        event.stop()
        self.tterm.keys_wait_for(self.tterm.run_worker(self.step_list(event.step), group="watch", exit_on_error=False))

    # ------------------------------------------------------------------ the command bar

    @on(CommandBar.Run)
    def _command_bar_run(self, event: CommandBar.Run) -> None:
        event.stop()
        self.tterm.commands.bar_run(event.text)

    @on(CommandBar.Closed)
    def _command_bar_closed(self, event: CommandBar.Closed) -> None:
        event.stop()
        target = self.tterm.take_return_focus()
        if target is not None and target.is_mounted and target.focusable:
            target.focus()
        else:
            self.grid.focus()

    def first_symbol(self) -> None:
        """At start-up the ticket takes the first watchlist symbol (unless one was typed)."""
        first = self.grid.cursor_symbol
        if first is not None and not self.ticket.query_one("#t-symbol", Input).value:
            self.ticket.load(first)


def _fields(status: RiskStatus) -> dict[str, Any]:
    return {name: getattr(status, name) for name in status.__dataclass_fields__}


__all__ = ["HOT_PANES", "TABLE_INTERVAL", "WIDE_HEIGHT", "WIDE_WIDTH", "TradeScreen"]
