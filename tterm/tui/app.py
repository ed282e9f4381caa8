"""The terminal: one screen with the watchlist, order ticket, blotter, positions, risk meters,
status bar, command palette and ``:`` command bar, drawn from an :class:`EngineClient`.

Data flow: the app drains the engine's event stream once per frame (``refresh_hz``; quotes arrive
coalesced, latest per symbol) and hands each widget only what changed. Widgets never call the
engine: they post requests (:mod:`tterm.tui.messages`) and the app carries every one out through
a single path — confirmation (unless turned off for the account), the engine call, and a
notification of the outcome. Orders from the ticket, the palette, the command bar and the hotkeys
all end in :meth:`TtermApp.submit_order`, so they pass the same pre-trade checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Horizontal, Vertical
from textual.driver import Driver
from textual.keys import key_to_character
from textual.theme import BUILTIN_THEMES
from textual.timer import Timer
from textual.widgets import Footer, Input, TabbedContent, TabPane, TextArea
from textual.worker import Worker

from tterm.config import IfMissing, Settings, data_dir
from tterm.core.broker import LoginResult
from tterm.core.client import EngineClient, EngineError
from tterm.core.clock import ClockError, CmeClock
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    Account,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    RiskStatus,
    new_client_order_id,
    utcnow,
)
from tterm.tui import format as fmt
from tterm.tui import parse as p
from tterm.tui.bridge import Bridge, Changes
from tterm.tui.commands import Plan, TradeCommands
from tterm.tui.estimate import estimate_risk
from tterm.tui.freshness import Freshness, freshness
from tterm.tui.keymap import SPECS, bindings, check_keymap, effective_keys
from tterm.tui.messages import AccountChosen, CancelAll, CancelOrder, Flatten, ModifyOrder, SubmitOrder, SymbolChosen
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.login import LoginScreen
from tterm.tui.modals.modify import ModifyOrderScreen
from tterm.tui.modals.prompt import Prompt
from tterm.tui.ordered_keys import OrderedKeys
from tterm.tui.screens.help import HelpScreen
from tterm.tui.screenshot import SCREENSHOT_DIR, save_svg
from tterm.tui.terminal import ExitWatchdog, terminal_gone
from tterm.tui.themes import APP_VARIABLES, load_themes, resolve_references, theme_dirs
from tterm.tui.widgets.blotter import FillsTable, OrdersTable
from tterm.tui.widgets.command_bar import CommandBar
from tterm.tui.widgets.order_ticket import OrderTicket
from tterm.tui.widgets.positions import PositionsTable
from tterm.tui.widgets.quote_grid import QuoteGrid
from tterm.tui.widgets.risk_meter import RiskPanel, status_from_profile
from tterm.tui.widgets.status_bar import StatusBar

WIDE_WIDTH = 140
WIDE_HEIGHT = 36
"""From this size on, positions and risk get their own panes instead of tabs."""

TABLE_INTERVAL = 0.2
"""Blotter, positions and risk redraw at most five times a second (each is a DataTable diff)."""

SSH_MAX_HZ = 8
"""The frame rate cap under the SSH profile (fewer, smaller writes over a slow link)."""

FALLBACK_THEME = "tterm-amber"

THEME_SAVE_DELAY = 0.8
"""Seconds a newly chosen theme must stay before it is saved (the palette previews as you scroll)."""

GONE_EXIT_GRACE = 15.0
"""Seconds the shutdown may take once the terminal went away before the process is ended anyway:
a hung tterm would keep the data dir locked and the broker sockets open."""

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A command that parsed but cannot be carried out (unknown account, symbol, theme...)."""


class TtermApp(OrderedKeys, App[None]):
    """The trading terminal. ``engine`` is any EngineClient (in-process engine or remote hub).

    Keys are dispatched one at a time, each to the widget focused once the previous one is
    handled (:mod:`tterm.tui.ordered_keys`), so a burst never reaches the wrong widget.
    """

    CSS_PATH = "tterm.tcss"
    TITLE = "tterm"
    COMMANDS = App.COMMANDS | {TradeCommands}
    BINDINGS = bindings("app")

    def __init__(
        self,
        engine: EngineClient,
        *,
        settings: Settings | None = None,
        ssh: bool = False,
        owns_engine: bool = False,
        clock: CmeClock | None = None,
        persist: Callable[[Mapping[tuple[str, ...], Any]], Any] | None = None,
        config_dir: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
        profiles: Any = None,
    ) -> None:
        super().__init__()
        self._ordered_keys_init()
        self.engine = engine
        self.settings = settings or Settings()
        self.ssh = ssh
        self.owns_engine = owns_engine
        self.clock = clock or CmeClock()
        self.persist = persist
        self.config_dir = config_dir
        self.mono = monotonic
        #: Real time, for the age of the last broker message (the engine stamps messages with it).
        self.wall = wall
        self.bridge = Bridge(engine)
        hz = self.settings.general.refresh_hz
        self.refresh_hz = min(hz, SSH_MAX_HZ) if ssh else hz
        self.account: str | None = None
        self.watchlists: dict[str, list[str]] = {k: list(v) for k, v in self.settings.watchlists.items()}
        if not self.watchlists:
            self.watchlists = {"watchlist": []}
        self.list_name = next(iter(self.watchlists))
        self.recent_orders: list[str] = []
        self.wide = False
        self.ready = asyncio.Event()
        self._profiles = profiles
        self._profiles_loaded = profiles is not None
        self._frame_timer: Timer | None = None
        self._tables_dirty = {"orders": True, "fills": True, "positions": True, "risk": True}
        self._tables_at = -1e9
        self._notified_rejects: set[str] = set()
        self._warned_color = False
        self._return_focus: Any = None
        self._layout_busy = False
        self._order_symbols: set[str] = set()
        self._held: set[str] = set()
        self._quote_waiters: dict[str, asyncio.Event] = {}
        self.freshness: Freshness = freshness((), self.wall(), self.settings.risk.stale_after_seconds)
        self.color_depth = "truecolor"
        self._theme_timer: Timer | None = None
        self._worker_holds: dict[Worker[Any], int] = {}
        self._stale_rows = 0
        self._gone_watchdog: ExitWatchdog | None = None

    def get_driver_class(self) -> type[Driver]:
        """Textual's choice, with its Linux driver replaced by one that survives a hang-up
        (:mod:`tterm.tui.driver`); the web and Windows drivers are kept as they are."""
        chosen = super().get_driver_class()
        if sys.platform != "win32":
            from textual.drivers.linux_driver import LinuxDriver

            if chosen is LinuxDriver:
                from tterm.tui.driver import HangupSafeDriver

                return HangupSafeDriver
        return chosen

    def run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run(*args, **kwargs)
        finally:
            if self._gone_watchdog is not None:
                self._gone_watchdog.cancel()  # the shutdown finished in time

    # ================================================================== composition

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            yield QuoteGrid(id="watchlist")
            with Vertical(id="side"):
                yield OrderTicket(self.bridge, id="ticket")
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

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **APP_VARIABLES}

    def get_css_variables(self) -> dict[str, str]:
        """Textual's variables, with tterm's defaults (``$text-success``...) resolved against them."""
        variables = resolve_references(super().get_css_variables())
        self.theme_variables = variables
        return variables

    # ------------------------------------------------------------------ widget handles

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

    # ================================================================== start and stop

    def on_mount(self) -> None:
        self.set_color_depth(_color_depth(getattr(self.console, "color_system", None), self.no_color))
        self._load_themes()
        problems = check_keymap(self.settings.keymap)
        if problems:
            self.notify("\n".join(problems), title="keymap", severity="warning", timeout=15)
        keymap = self.settings.keymap
        self.set_keymap({k: v for k, v in keymap.items() if not check_keymap({k: v})})
        self.grid.flash_enabled = True
        self.grid.border_title = "Watchlist"
        self.query_one("#ticket").border_title = "Order ticket"
        self.grid.focus()
        if not self.is_headless:
            self._install_signal_handlers()
            self.set_interval(5.0, self._check_tty)
        self.set_interval(1.0, self._tick_second)
        self.run_worker(self._startup(), name="startup", group="startup", exit_on_error=False)

    def set_color_depth(self, depth: str) -> None:
        """``truecolor``, ``256``, ``16`` or ``mono`` (NO_COLOR): at 16 and mono the widgets mark
        the cursor row and flashes without a grey background, which would hide coloured text."""
        self.color_depth = depth
        self.set_class(depth in ("16", "mono"), "-low-color")

    def _load_themes(self) -> None:
        self._choose_theme()
        # From here on a change of theme is the user's: it is saved to config.toml.
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _choose_theme(self) -> None:
        loaded = load_themes(theme_dirs(self.config_dir))
        for theme in loaded.themes.values():
            self.register_theme(theme)
        for problem in loaded.problems:
            self.notify(problem, title="theme", severity="warning", timeout=15)
        wanted = self.settings.general.theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            fallback = FALLBACK_THEME if FALLBACK_THEME in self.available_themes else "textual-dark"
            self.notify(
                f"theme {wanted!r} not found; using {fallback} (themes: {', '.join(self._theme_names())})",
                title="theme",
                severity="warning",
                timeout=15,
            )
            self.theme = fallback

    def _theme_names(self) -> list[str]:
        ours = sorted(n for n in self.available_themes if n not in BUILTIN_THEMES)
        return ours + sorted(n for n in self.available_themes if n in BUILTIN_THEMES)

    async def _startup(self) -> None:
        """Subscribe, start the engine if we own it, take the snapshot, then run the frame loop."""
        self.bridge.open()
        if self.owns_engine:
            start = getattr(self.engine, "start", None)
            if start is not None:
                try:
                    await start()
                except Exception as exc:
                    self.notify(f"the engine did not start: {exc}", severity="error", timeout=30)
                    raise
        changes = await self.bridge.load()
        accounts = list(self.bridge.state.accounts.values())
        default = self.settings.general.default_account
        if default in self.bridge.state.accounts:
            self.account = default
        elif accounts:
            self.account = accounts[0].id
        self.ticket.set_accounts(accounts, self.account)
        if self.account is not None:
            self._account_changed()
        await self.show_list(self.list_name)
        first = self.grid.cursor_symbol
        if first is not None and not self.ticket.query_one("#t-symbol", Input).value:
            self.ticket.load(first)
        self._apply_changes(changes)
        self._frame_timer = self.set_interval(1 / self.refresh_hz, self._frame, name="frame")
        self._warn_color_once()
        self.ready.set()

    async def on_unmount(self) -> None:
        self.bridge.close()
        if self.owns_engine:
            stop = getattr(self.engine, "stop", None)
            if stop is not None:
                with contextlib.suppress(Exception):
                    await stop()

    def _install_signal_handlers(self) -> None:
        """Exit cleanly when the terminal hangs up (an SSH session dropped)."""
        if not hasattr(signal, "SIGHUP"):
            return
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)

    def _hangup(self) -> None:
        self.terminal_went_away("hung up, SIGHUP")

    def terminal_went_away(self, reason: str) -> None:
        """The terminal is gone (hang-up, failed writes, TTY lost): journal it and shut down in
        order (the engine stops in ``on_unmount``, then tterm frees the data dir). Idempotent."""
        if self._exit or self._gone_watchdog is not None:
            return
        text = f"terminal went away ({reason}); tterm is shutting down"
        log.warning(text)
        ingest = getattr(self.engine, "ingest", None)  # the in-process engine journals notices
        if ingest is not None:
            try:
                ingest(Notice(level="warning", text=text, source="terminal"))
            except Exception:
                log.exception("could not journal that the terminal went away")
        if not self.is_headless:
            self._gone_watchdog = ExitWatchdog(GONE_EXIT_GRACE, text)
        # No exit message: there is no terminal left to print it on.
        self.exit()

    def _check_tty(self) -> None:
        """Leave when the terminal (or the browser session's pipe) is gone, so a dropped session
        never spins the CPU."""
        stdin = sys.__stdin__
        try:
            fd = stdin.fileno() if stdin is not None else -1
        except (ValueError, OSError):
            fd = -1
        if fd < 0 or terminal_gone(fd, web=self.is_web):
            self.terminal_went_away("terminal lost")

    def _warn_color_once(self) -> None:
        """Under the SSH profile, say once how to get truecolor when the terminal lacks it."""
        if self._warned_color or not self.ssh:
            return
        self._warned_color = True
        system = getattr(self.console, "color_system", None)
        if system != "truecolor":
            self.notify(
                f"This terminal reports {system or 'no'} colour, not truecolor, so themes are approximated. "
                "Fix: export COLORTERM=truecolor on the server (for ssh: SendEnv COLORTERM on the client, "
                "AcceptEnv COLORTERM on the server; in tmux: set -as terminal-features ',*:RGB').",
                title="colour",
                severity="warning",
                timeout=20,
            )

    # ================================================================== the frame

    @property
    def alive(self) -> bool:
        """False once the app is shutting down (timers can still tick while screens close)."""
        return self.is_running and not getattr(self, "_exit", False) and bool(self.screen_stack)

    def _frame(self) -> None:
        if not self.alive:
            return
        if self.bridge.overflowed:
            self.bridge.stream = None
            self.run_worker(self._resync(), group="resync", exclusive=True, exit_on_error=False)
            return
        changes = self.bridge.drain()
        now = self.mono()
        self.grid.expire_flashes(now)
        if changes:
            self._apply_changes(changes, now)
        self._flush_tables()

    async def _resync(self) -> None:
        self.notify("fell behind the engine; reloading the state", severity="warning")
        self.bridge.open()
        self._apply_changes(await self.bridge.load())

    def _apply_changes(self, ch: Changes, now: float | None = None) -> None:
        now = self.mono() if now is None else now
        state = self.bridge.state
        with self.batch_update():
            if ch.quotes:
                self.grid.apply_quotes(ch.quotes, now)
                for symbol in [s for s in self._quote_waiters if s in ch.quotes]:
                    self._quote_waiters[symbol].set()
                inst = self.ticket.instrument
                if inst is not None and inst.symbol in ch.quotes:
                    self.ticket.update_quote(ch.quotes[inst.symbol])
            if ch.orders or ch.fills:
                self._tables_dirty["orders"] = self._tables_dirty["fills"] = True
                self._notify_orders(ch.orders, ch.fills)
            if ch.positions:
                self._tables_dirty["positions"] = True
                self._tables_dirty["risk"] = True
                held = {p.symbol for p in state.positions.values() if p.quantity}
                if held != self._held:
                    self._held = held
                    self.run_worker(self.bridge.want("positions", held), group="subs-positions", exclusive=True,
                                    exit_on_error=False)  # fmt: skip
            if ch.balances or ch.risk or ch.locks or ch.accounts:
                self._tables_dirty["risk"] = True
            if ch.accounts:
                self.ticket.set_accounts(list(state.accounts.values()), self.account)
            for lock in ch.locks:
                name = self._account_name(lock.account)
                if lock.locked:
                    self.notify(f"{name} is LOCKED: {lock.reason}", severity="warning", timeout=15)
                else:
                    self.notify(f"{name} is unlocked ({lock.reason})")
            for notice in ch.notices:
                severity = {"info": "information", "warning": "warning", "error": "error"}[notice.level]
                self.notify(notice.text, severity=severity, timeout=15 if notice.level == "error" else 6)  # type: ignore[arg-type]
            if ch.connections:
                self._update_freshness()
            if ch.connections or ch.locks or ch.accounts:
                self._update_status()

    def _notify_orders(self, orders: list[Order], fills: list[Fill]) -> None:
        for fill in fills:
            self.notify(
                f"FILLED {fill.side.value.upper()} {fill.quantity} {fill.symbol} @ "
                f"{fmt.price(fill.price, self._instrument_or_none(fill.symbol))} "
                f"in {self._account_name(fill.account)}",
                timeout=6,
            )
        for order in orders:
            if order.status is OrderStatus.REJECTED:
                self._notify_reject(order)

    def _notify_reject(self, order: Order) -> None:
        key = f"{order.account}|{order.order_id}"
        if key in self._notified_rejects:
            return
        self._notified_rejects.add(key)
        self.notify(
            f"REJECTED {order.side.value.upper()} {order.quantity} {order.symbol}: {order.reject_reason}",
            severity="error",
            timeout=15,
        )

    def _flush_tables(self, *, force: bool = False) -> None:
        """Redraw the DataTables that changed, at most every TABLE_INTERVAL seconds."""
        dirty = self._tables_dirty
        if not any(dirty.values()):
            return
        now = self.mono()
        if not force and now - self._tables_at < TABLE_INTERVAL:
            return
        self._tables_at = now
        state = self.bridge.state
        tz = self.clock.now_ct().tzinfo
        assert tz is not None
        with self.batch_update():
            if dirty["orders"]:
                self.orders_table.update_orders(
                    sorted(state.working_orders(), key=lambda o: (o.created_at, o.order_id)), state.accounts, tz,
                    self._instrument_or_none,
                )  # fmt: skip
                dirty["orders"] = False
            if dirty["fills"]:
                self.fills_table.update_fills(list(state.fills.values()), state.rejected_orders(), state.accounts, tz,
                                              self._instrument_or_none)  # fmt: skip
                dirty["fills"] = False
            positions = self.query_one_optional("#positions", PositionsTable)
            if dirty["positions"] and positions is not None and not self._layout_busy:
                positions.update_positions(list(state.positions.values()), state.accounts, self._instrument_or_none)
                dirty["positions"] = False
            if dirty["risk"] and not self._layout_busy:
                self._update_risk()
                dirty["risk"] = False

    def _describe(self, request: OrderRequest) -> str:
        """The order in plain words, its prices in the instrument's format."""
        return fmt.describe(request, self._instrument_or_none(request.symbol))

    def _instrument_or_none(self, symbol: str) -> Instrument | None:
        try:
            return self.engine.instrument(symbol)
        except (UnknownSymbol, ModelError):
            return None

    def _tick_second(self) -> None:
        if not self.alive:
            return
        self._check_layout(self.size.width, self.size.height)
        self._update_freshness()
        self._update_status()
        if self.bridge.state.loaded:
            self._update_risk()

    # ================================================================== status and risk

    def _account_name(self, account_id: str | None) -> str:
        if account_id is None:
            return "no account"
        acct = self.bridge.state.accounts.get(account_id)
        return acct.name if acct is not None and acct.name else account_id

    def confirm_on(self, account: str | None) -> bool:
        return True if account is None else self.settings.confirm_orders_for(account)

    def _profile(self, account: Account) -> Any:
        """The account's configured rule profile (None when it has none or it cannot be read)."""
        if not account.profile:
            return None
        if not self._profiles_loaded:
            self._profiles_loaded = True
            try:
                from tterm.risk.profiles import load_profiles

                self._profiles = load_profiles(strict=False)
            except Exception as exc:  # a broken profile file must not stop the terminal
                self.notify(f"risk profiles could not be loaded: {exc}", severity="warning", timeout=15)
                self._profiles = None
        if self._profiles is None:
            return None
        try:
            return self._profiles.get(account.profile)
        except KeyError:
            return None

    def _cutoff(self, account_id: str | None) -> tuple[datetime | None, str]:
        state = self.bridge.state
        if account_id is not None:
            risk = state.risk.get(account_id)
            if risk is not None and risk.cutoff is not None:
                return risk.cutoff, "flat by"
            acct = state.accounts.get(account_id)
            profile = self._profile(acct) if acct is not None else None
            flat_by = getattr(getattr(profile, "session", None), "flat_by", None)
            if flat_by is not None:
                with contextlib.suppress(ClockError):
                    cut = self.clock.cutoff(self.clock.trade_date(), flat_by)
                    if cut > self.clock.now():
                        return cut, "flat by"
        try:
            return self.clock.next_close(), "close"
        except ClockError:
            return None, "close"

    def _update_freshness(self) -> None:
        """Which prices are current: dim the stale ones, badge them (once a second and on connection changes)."""
        state = self.bridge.state
        self.freshness = fresh = freshness(state.connections.values(), self.wall(),
                                           self.settings.risk.stale_after_seconds)  # fmt: skip
        stale_rows = self.grid.set_freshness(fresh)
        self.ticket.set_freshness(fresh)
        if stale_rows != self._stale_rows:
            self._stale_rows = stale_rows
            self.grid.border_title = self._grid_title()

    def _grid_title(self) -> str:
        names = list(self.watchlists)
        at = names.index(self.list_name) + 1 if self.list_name in names else 1
        title = f"Watchlist: {self.list_name} ({at}/{len(names)})"
        if self._stale_rows:
            title += f"  STALE {self._stale_rows}"
        return title

    def _update_status(self) -> None:
        state = self.bridge.state
        acct = state.accounts.get(self.account) if self.account else None
        cutoff, label = self._cutoff(self.account)
        self.status.show(
            live=bool(acct.is_live) if acct is not None else state.is_live,
            account_label=self._account_name(self.account),
            confirm_on=self.confirm_on(self.account),
            locked=state.is_locked(self.account) if self.account else False,
            connections=sorted(state.connections.values(), key=lambda c: c.broker),
            now=self.clock.now(),
            wall=self.wall(),
            cutoff=cutoff,
            cutoff_label=label,
            note="SSH" if self.ssh else "",
            freshness=self.freshness,
            stale=self.freshness.everything_stale or self._stale_rows > 0,
        )

    def _risk_statuses(self) -> dict[str, RiskStatus | None]:
        state = self.bridge.state
        out: dict[str, RiskStatus | None] = {}
        for acct in state.accounts.values():
            status = state.risk.get(acct.id)
            if status is None:
                profile = self._profile(acct)
                if profile is not None:
                    used = Decimal(0)
                    for pos in state.positions_in(acct.id):
                        inst = self._instrument_or_none(pos.symbol)
                        if inst is not None and pos.quantity:
                            used += abs(pos.quantity) * profile.contracts.weight(inst)
                    cutoff, label = self._cutoff(acct.id)
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

    def _update_risk(self) -> None:
        state = self.bridge.state
        if not state.accounts:
            return
        panel = self.query_one_optional("#risk", RiskPanel)
        if panel is None or self._layout_busy:
            return
        # Each account's positions total, and when its newest position was measured.
        totals: dict[str, tuple[Decimal, datetime]] = {}
        for pos in state.positions.values():
            total, at = totals.get(pos.account, (Decimal(0), pos.ts))
            totals[pos.account] = (total + pos.total_pnl, max(at, pos.ts))
        panel.show(state.accounts.values(), self._risk_statuses(), state.balances, self.clock.now(), self.account,
                   totals)  # fmt: skip

    # ================================================================== layout

    def on_resize(self, event: events.Resize) -> None:
        self._check_layout(event.size.width, event.size.height)

    def _check_layout(self, width: int, height: int) -> None:
        wide = width >= WIDE_WIDTH and height >= WIDE_HEIGHT
        if wide != self.wide and not self._layout_busy:
            self._layout_busy = True
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
            self._layout_busy = False
        self._tables_dirty["positions"] = self._tables_dirty["risk"] = True
        if self.bridge.state.loaded:
            self._flush_tables(force=True)
        if focused_positions:
            self.positions_table.focus()
        self._check_layout(self.size.width, self.size.height)

    # ================================================================== watchlists

    async def show_list(self, name: str) -> None:
        self.list_name = name
        entries = [self.bridge.resolve(s) for s in self.watchlists.get(name, [])]
        self.grid.show_list(name, entries, self.bridge.state.quotes, self.mono())
        self._stale_rows = self.grid.set_freshness(self.freshness)
        self.grid.border_title = self._grid_title()
        await self.bridge.want("watchlist", [e.contract for e in entries if e.contract])

    async def _save_lists(self) -> None:
        self.settings.watchlists = {k: list(v) for k, v in self.watchlists.items()}
        # The list that changed; the others only where the file leaves them to the defaults
        # (writing one list alone would drop them). Another terminal's edits to other lists stay.
        name = self.list_name
        edits = {
            ("watchlists",): IfMissing({k: list(v) for k, v in self.watchlists.items()}),
            ("watchlists", name): list(self.watchlists[name]),
        }
        self._save(edits, "the watchlist")

    def _save(self, edits: Mapping[tuple[str, ...], Any], what: str) -> None:
        """Write ``edits`` to config.toml (only those keys: the user's comments stay); say if it fails."""
        if self.persist is None:
            return
        try:
            self.persist(edits)
        except Exception as exc:
            self.notify(f"could not save {what} to config.toml: {exc}", severity="error", timeout=15)

    def _theme_changed(self, theme: Any) -> None:
        """A theme chosen in the palette or with ``theme NAME``: saved once it settles (the palette's
        picker previews each theme it passes)."""
        if self._theme_timer is not None:
            self._theme_timer.stop()
        self._theme_timer = self.set_timer(THEME_SAVE_DELAY, self._save_theme)

    def _save_theme(self) -> None:
        self._theme_timer = None
        name = self.theme
        if name == self.settings.general.theme:
            return
        self.settings.general.theme = name
        self._save({("general", "theme"): name}, f"the theme {name!r}")

    async def watch_symbols(self, symbols: tuple[str, ...]) -> str:
        current = self.watchlists.setdefault(self.list_name, [])
        added, bad = [], []
        for sym in symbols:
            resolved = self.bridge.resolve(sym)
            if resolved.instrument is None:
                bad.append(f"{sym} ({resolved.error})")
            elif sym in current:
                continue
            else:
                current.append(sym)
                added.append(sym)
        if bad:
            raise CommandError("cannot watch " + "; ".join(bad))
        await self.show_list(self.list_name)
        if added:
            self.grid.move_to(added[-1])
            await self._save_lists()
        return f"watching {', '.join(added)} in {self.list_name}" if added else "already watched"

    async def unwatch_symbols(self, symbols: tuple[str, ...]) -> str:
        current = self.watchlists.get(self.list_name, [])
        upper = {s.upper() for s in symbols}
        missing = [s for s in symbols if s.upper() not in {c.upper() for c in current}]
        if missing:
            raise CommandError(f"{', '.join(missing)} not in watchlist {self.list_name}")
        self.watchlists[self.list_name] = [c for c in current if c.upper() not in upper]
        await self.show_list(self.list_name)
        await self._save_lists()
        return f"removed {', '.join(symbols)} from {self.list_name}"

    async def step_list(self, step: int) -> None:
        names = list(self.watchlists)
        i = names.index(self.list_name) if self.list_name in names else 0
        await self.show_list(names[(i + step) % len(names)])

    # ================================================================== accounts

    def set_account(self, account_id: str) -> None:
        if account_id not in self.bridge.state.accounts:
            raise CommandError(f"unknown account {account_id!r}")
        self.account = account_id
        self._account_changed()

    def _account_changed(self) -> None:
        if self.account is None:
            return
        self.ticket.set_account(self.account, self.confirm_on(self.account))
        self._update_status()
        self._tables_dirty["risk"] = True

    def resolve_account(self, name: str | None) -> str:
        if name is None:
            if self.account is None:
                raise CommandError("no account yet: the engine has not reported any")
            return self.account
        acct = self.bridge.state.find_account(name)
        if acct is None:
            known = ", ".join(f"{a.name} ({a.id})" for a in self.bridge.state.accounts.values())
            raise CommandError(f"no account {name!r} (accounts: {known or 'none'})")
        return acct.id

    def action_next_account(self) -> None:
        ids = list(self.bridge.state.accounts)
        if not ids:
            return
        i = ids.index(self.account) if self.account in ids else -1
        self.set_account(ids[(i + 1) % len(ids)])
        self.notify(f"account: {self._account_name(self.account)}")

    @on(AccountChosen)
    def _account_chosen(self, event: AccountChosen) -> None:
        if event.account != self.account:
            self.set_account(event.account)

    @on(SymbolChosen)
    def _symbol_chosen(self, event: SymbolChosen) -> None:
        contracts = [event.contract] if event.contract else []
        self.run_worker(self.bridge.want("ticket", contracts), group="subs-ticket", exclusive=True,
                        exit_on_error=False)  # fmt: skip

    # ================================================================== orders

    @on(SubmitOrder)
    def _submit(self, event: SubmitOrder) -> None:
        event.stop()
        self._keys_wait_for(self.submit_order(event.request))

    @work(group="orders", exit_on_error=False)
    async def submit_order(self, request: OrderRequest) -> Order | None:
        """The one path every order takes: preview, confirm (unless off), place, report."""
        await self._ensure_quote(request.symbol)
        try:
            decision = await self.engine.preview(request)
        except (EngineError, UnknownSymbol, ModelError) as exc:
            self.notify(f"not sent: {exc}", severity="error", timeout=12)
            return None
        if not decision.allowed:
            self.notify(f"REFUSED {self._describe(request)}: {decision.reason}", severity="error", timeout=15)
            return None
        if self.confirm_on(request.account):
            ok = await self.push_screen_wait(self._confirm_dialog(request, decision.reasons))
            if not ok:
                self.notify("order not sent", timeout=3)
                return None
        try:
            order = await self.engine.place(request)
        except EngineError as exc:
            self.notify(f"not sent: {exc}", severity="error", timeout=15)
            return None
        if order.status is OrderStatus.REJECTED:
            self._notify_reject(order)
        else:
            self.notify(f"sent: {self._describe(request)}", timeout=4)
        self._tables_dirty["orders"] = self._tables_dirty["fills"] = True
        return order

    async def _ensure_quote(self, symbol: str, wait: float = 3.0) -> None:
        """Stream ``symbol`` before an order in it is checked: the engine refuses orders without a
        current quote, and a palette order may name a symbol no pane shows."""
        if symbol in self.bridge.state.quotes:
            return
        self._order_symbols.add(symbol)
        arrived = self._quote_waiters.setdefault(symbol, asyncio.Event())
        try:
            await self.bridge.want("orders", self._order_symbols)
        except (EngineError, UnknownSymbol, ModelError) as exc:
            self.notify(f"cannot stream {symbol}: {exc}", severity="warning")
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await arrived.wait()
        self._quote_waiters.pop(symbol, None)

    def _confirm_dialog(self, request: OrderRequest, warnings: tuple[str, ...]) -> ConfirmDialog:
        state = self.bridge.state
        acct = state.accounts.get(request.account)
        details = [f"Account: {self._account_name(request.account)} ({request.account})"]
        inst = self._instrument_or_none(request.symbol)
        quote = state.quotes.get(request.symbol)
        if inst is not None:
            if quote is not None:
                market = (
                    f"Market: bid {fmt.price(quote.bid, inst)} × {fmt.size(quote.bid_size)}   "
                    f"ask {fmt.price(quote.ask, inst)} × {fmt.size(quote.ask_size)}   "
                    f"last {fmt.price(quote.last, inst)}"
                )
                if self.freshness.quote_stale(quote):
                    market += f"   STALE ({fmt.age(self.freshness.quote_age(quote))} old)"
                details.append(market)
            details.append(f"Estimated risk: {estimate_risk(request, inst, quote).text}")
        details.append(f"From: {request.source.value.replace('_', ' ')}")
        details.append(f'To skip this dialog: [accounts."{request.account}"] confirm_orders = false in config.toml')
        return ConfirmDialog(
            "Confirm order",
            self._describe(request),
            details,
            warnings=list(warnings),
            live=bool(acct.is_live) if acct is not None else False,
            yes="Send",
        )

    @on(QuoteGrid.Trade)
    def _hotkey_trade(self, event: QuoteGrid.Trade) -> None:
        """Buy or sell at market from the watchlist: the symbol came with the key press."""
        event.stop()
        if self.account is None:
            self.notify("no account yet", severity="error")
            return
        qty = self.ticket.quantity or 1
        request = OrderRequest(
            account=self.account,
            symbol=event.contract,
            side=event.side,
            quantity=qty,
            order_type=OrderType.MARKET,
            source=OrderSource.HOTKEY,
        )
        self._keys_wait_for(self.submit_order(request))

    @on(QuoteGrid.OpenTicket)
    def _open_ticket(self, event: QuoteGrid.OpenTicket) -> None:
        event.stop()
        self.ticket.load(event.listed)
        self.action_focus_pane("ticket")

    @on(QuoteGrid.Problem)
    def _grid_problem(self, event: QuoteGrid.Problem) -> None:
        event.stop()
        self.notify(event.text, severity="warning")

    @on(QuoteGrid.AddRequested)
    def _add_requested(self, event: QuoteGrid.AddRequested) -> None:
        event.stop()
        self._keys_wait_for(self._prompt_add())

    @work(group="prompt", exit_on_error=False)
    async def _prompt_add(self) -> None:
        text = await self.push_screen_wait(
            Prompt(
                f"Add to watchlist {self.list_name}",
                placeholder="NVDA, MES1!, ESZ6",
                hint="enter adds, escape cancels",
            )
        )
        if text:
            symbols = tuple(s.upper() for s in text.replace(",", " ").split())
            try:
                self.notify(await self.watch_symbols(symbols), timeout=3)
            except CommandError as exc:
                self.notify(str(exc), severity="error")

    @on(QuoteGrid.RemoveRequested)
    def _remove_requested(self, event: QuoteGrid.RemoveRequested) -> None:
        event.stop()
        self._keys_wait_for(self.run_worker(self._remove(event.listed), group="watch", exit_on_error=False))

    async def _remove(self, listed: str) -> None:
        try:
            self.notify(await self.unwatch_symbols((listed,)), timeout=3)
        except CommandError as exc:
            self.notify(str(exc), severity="error")

    @on(QuoteGrid.ListStep)
    def _list_step(self, event: QuoteGrid.ListStep) -> None:
        event.stop()
        self._keys_wait_for(self.run_worker(self.step_list(event.step), group="watch", exit_on_error=False))

    @on(CancelOrder)
    def _cancel(self, event: CancelOrder) -> None:
        event.stop()
        self._keys_wait_for(self.cancel_order(event.account, event.order_id))

    @work(group="cancel", exit_on_error=False)
    async def cancel_order(self, account: str, order_id: str) -> None:
        try:
            order = await self.engine.cancel(account, order_id)
        except EngineError as exc:
            self.notify(f"cancel failed: {exc}", severity="error", timeout=10)
            return
        self.notify(f"cancel {order_id}: {order.status.value.replace('_', ' ')}", timeout=3)

    @on(CancelAll)
    def _cancel_all(self, event: CancelAll) -> None:
        event.stop()
        try:
            account = self.resolve_account(event.account)
        except CommandError as exc:
            self.notify(str(exc), severity="error")
            return
        self._keys_wait_for(self.cancel_all(account, None))

    @work(group="cancel", exit_on_error=False)
    async def cancel_all(self, account: str, symbol: str | None) -> None:
        working = [o for o in self.bridge.state.working_orders() if o.account == account and
                   (symbol is None or o.symbol == symbol)]  # fmt: skip
        what = f"{len(working)} working order{'s' if len(working) != 1 else ''}" + (f" in {symbol}" if symbol else "")
        if not working:
            self.notify(f"no working orders in {self._account_name(account)}" + (f" for {symbol}" if symbol else ""))
            return
        ok = await self.push_screen_wait(
            ConfirmDialog(
                "Cancel orders",
                f"CANCEL {what} in {self._account_name(account)}?",
                ["Bracket stop-losses are cancelled too: open positions lose their protection."],
                yes="Cancel orders",
                danger=True,
            )
        )
        if not ok:
            return
        try:
            done = await self.engine.cancel_all(account, symbol)
        except EngineError as exc:
            self.notify(f"cancel all failed: {exc}", severity="error", timeout=10)
            return
        self.notify(f"cancelled {len(done)} order{'s' if len(done) != 1 else ''}", timeout=4)

    @on(ModifyOrder)
    def _modify(self, event: ModifyOrder) -> None:
        event.stop()
        order = event.order

        async def apply(qty: int | None, limit: Decimal | None, stop: Decimal | None) -> str | None:
            try:
                await self.engine.modify(order.account, order.order_id, quantity=qty, limit_price=limit,
                                         stop_price=stop)  # fmt: skip
            except (EngineError, ModelError) as exc:
                return str(exc)
            self.notify(f"modified {order.order_id}", timeout=3)
            return None

        self.push_screen(ModifyOrderScreen(order, apply))

    @on(Flatten)
    def _flatten(self, event: Flatten) -> None:
        event.stop()
        self._keys_wait_for(self.flatten(event.account, event.symbol))

    @work(group="flatten", exit_on_error=False)
    async def flatten(self, account: str, symbol: str | None) -> None:
        name = self._account_name(account)
        what = f"{symbol} in {name}" if symbol else f"EVERYTHING in {name}"
        if self.confirm_on(account):
            ok = await self.push_screen_wait(
                ConfirmDialog(
                    "Flatten",
                    f"FLATTEN {what}?",
                    ["Cancels the working orders and closes the position" + ("" if symbol else "s") + " at market."],
                    yes="Flatten",
                    danger=True,
                    live=self._is_live(account),
                )
            )
            if not ok:
                return
        try:
            orders = await self.engine.flatten(account, symbol)
        except (EngineError, UnknownSymbol) as exc:
            self.notify(f"flatten failed: {exc}", severity="error", timeout=15)
            return
        self.notify(f"flatten {what}: {len(orders)} order{'s' if len(orders) != 1 else ''}", timeout=5)

    def _is_live(self, account: str) -> bool:
        acct = self.bridge.state.accounts.get(account)
        return bool(acct is not None and acct.is_live)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The app's priority keys (kill switch, quit, palette) yield to a text field that uses
        the same key for editing (Ctrl+K deletes to the end of the line): None shows the binding
        greyed out in the footer while such a field has focus, and the field gets the key."""
        if action in _PRIORITY_ACTIONS and self._text_field_claims(_PRIORITY_ACTIONS[action]):
            return None
        return True

    def _text_field_claims(self, binding_id: str) -> bool:
        focused = self.focused
        if not isinstance(focused, Input | TextArea):
            return False
        keys = [k.strip() for k in effective_keys(self.settings.keymap)[binding_id].split(",") if k.strip()]
        own = focused._bindings.key_to_bindings
        return bool(keys) and all(k in own or focused.check_consume_key(k, key_to_character(k)) for k in keys)

    def action_kill_switch(self) -> None:
        self._keys_wait_for(self.kill_switch())

    @work(group="kill", exclusive=True, exit_on_error=False)
    async def kill_switch(self) -> None:
        state = self.bridge.state
        open_pos = sum(1 for p in state.positions.values() if p.quantity)
        working = len(state.working_orders())
        ok = await self.push_screen_wait(
            ConfirmDialog(
                "KILL SWITCH",
                "Flatten and cancel EVERYTHING in EVERY account?",
                [
                    f"{open_pos} open position{'s close' if open_pos != 1 else ' closes'} at market; "
                    f"{working} working order{'s are' if working != 1 else ' is'} cancelled.",
                    f"Accounts: {', '.join(self._account_name(a) for a in state.accounts) or 'none'}",
                ],
                yes="KILL",
                danger=True,
                live=state.is_live,
            )
        )
        if not ok:
            self.notify("kill switch not used", timeout=3)
            return
        try:
            orders = await self.engine.flatten(None)
        except EngineError as exc:
            self.notify(f"KILL SWITCH FAILED: {exc}", severity="error", timeout=30)
            return
        self.notify(f"kill switch: {len(orders)} flatten order{'s' if len(orders) != 1 else ''} sent",
                    severity="warning", timeout=10)  # fmt: skip

    @work(group="lock", exit_on_error=False)
    async def lock_account(self, account: str, reason: str) -> None:
        ok = await self.push_screen_wait(
            ConfirmDialog(
                "Lock account",
                f"LOCK {self._account_name(account)} for the rest of the session?",
                [f"Reason: {reason}", "Only orders that reduce a position pass until the next session opens."],
                yes="Lock",
                danger=True,
            )
        )
        if not ok:
            return
        try:
            await self.engine.lock(account, reason)
        except EngineError as exc:
            self.notify(f"lock failed: {exc}", severity="error")

    # ================================================================== commands (palette and bar)

    def plan_command(self, text: str, *, palette: bool) -> Plan | None:
        """What ``text`` would do, for the palette (None: not a tterm verb, let other providers match)."""
        words = text.strip().lstrip(":").split()
        if not words:
            return None
        source = OrderSource.PALETTE if palette else OrderSource.COMMAND_BAR
        try:
            cmd = p.parse(text)
        except p.ParseError as exc:
            if not _is_verb(words[0]):
                return None
            message = str(exc)
            return Plan(False, message, "nothing is sent: fix the command", lambda: self._command_error(message))
        try:
            if isinstance(cmd, p.OrderCommand):
                request = self.build_request(cmd, source)
                confirm = "enter: review and confirm" if self.confirm_on(request.account) else (
                    "CONFIRMATION IS OFF for this account: enter sends"
                )  # fmt: skip
                return Plan(True, f"order: {self._describe(request)}", confirm, lambda: self._run_order(request, text))
            summary = p.describe(cmd)
        except CommandError as exc:
            message = str(exc)
            return Plan(False, message, "nothing is sent: fix the command", lambda: self._command_error(message))
        return Plan(True, summary, "enter: do it", lambda: self.run_command(cmd, source))

    def _keys_wait_for(self, worker: Worker[Any]) -> Worker[Any]:
        """Keep the next keys waiting until ``worker`` ends or shows its screen (a confirmation, a
        prompt), so a key typed after this one reaches what it opens (see ordered_keys)."""
        token = self.hold_keys()
        if token:
            if worker.is_finished:
                self.release_keys(token)
            else:
                self._worker_holds[worker] = token
        return worker

    @on(Worker.StateChanged)
    def _worker_ended(self, event: Worker.StateChanged) -> None:
        if event.worker.is_finished:
            self.release_keys(self._worker_holds.pop(event.worker, 0))

    def _command_error(self, message: str) -> None:
        self.notify(message, title="command", severity="error", timeout=10)

    def _run_order(self, request: OrderRequest, text: str) -> None:
        self._remember(text)
        # A fresh client order id each time: a plan can be chosen again from the palette's history.
        self._keys_wait_for(self.submit_order(request.with_changes(client_order_id=new_client_order_id())))

    def _remember(self, text: str) -> None:
        text = text.strip().lstrip(":").strip()
        if text in self.recent_orders:
            self.recent_orders.remove(text)
        self.recent_orders.append(text)
        del self.recent_orders[:-20]

    def build_request(self, cmd: p.OrderCommand, source: OrderSource) -> OrderRequest:
        account = self.resolve_account(cmd.account)
        try:
            inst = self.engine.instrument(cmd.symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise CommandError(str(exc)) from None
        try:
            return p.build_order(cmd, account=account, instrument=inst, source=source)
        except p.ParseError as exc:
            raise CommandError(str(exc)) from None

    def run_command(self, cmd: p.Command, source: OrderSource) -> None:
        self._keys_wait_for(self.run_worker(self._execute(cmd, source), group="command", exit_on_error=False))

    async def _execute(self, cmd: p.Command, source: OrderSource) -> None:
        try:
            message = await self.execute(cmd, source)
        except CommandError as exc:
            self._command_error(str(exc))
            return
        if message:
            self.notify(message, timeout=4)

    async def execute(self, cmd: p.Command, source: OrderSource) -> str:
        """Carry out one parsed command; CommandError says why it cannot be done."""
        match cmd:
            case p.OrderCommand():
                request = self.build_request(cmd, source)
                self._remember(p.format_order(cmd))
                self._keys_wait_for(self.submit_order(request))
                return ""
            case p.FlattenCommand(symbol=symbol, account=acct):
                account = self.resolve_account(acct)
                contract = self._contract(symbol) if symbol else None
                self._keys_wait_for(self.flatten(account, contract))
                return ""
            case p.CancelCommand(target=target, account=acct):
                account = self.resolve_account(acct)
                if target is None:
                    self._keys_wait_for(self.cancel_all(account, None))
                    return ""
                try:
                    contract = self.engine.instrument(target).symbol
                except (UnknownSymbol, ModelError):
                    contract = None
                if contract is not None:
                    self._keys_wait_for(self.cancel_all(account, contract))
                    return ""
                if (account, target) not in self.bridge.state.orders:
                    raise CommandError(
                        f"{target!r} is neither a symbol nor an order id in {self._account_name(account)}"
                    )
                self._keys_wait_for(self.cancel_order(account, target))
                return ""
            case p.WatchCommand(symbols=symbols):
                return await self.watch_symbols(symbols)
            case p.UnwatchCommand(symbols=symbols):
                return await self.unwatch_symbols(symbols)
            case p.ThemeCommand(name=name):
                if name not in self.available_themes:
                    raise CommandError(f"no theme {name!r} (themes: {', '.join(self._theme_names())})")
                self.theme = name
                return f"theme {name}"
            case p.AccountCommand(name=name):
                self.set_account(self.resolve_account(name))
                return f"account: {self._account_name(self.account)}"
            case p.ListCommand(name=name):
                if name is None:
                    await self.step_list(1)
                else:
                    match = next((n for n in self.watchlists if n.lower() == name.lower()), None)
                    if match is None:
                        raise CommandError(f"no watchlist {name!r} (lists: {', '.join(self.watchlists)})")
                    await self.show_list(match)
                return ""
            case p.SortCommand(column=column, descending=desc):
                self.grid.set_sort(column, desc)
                return p.describe(cmd)
            case p.FocusCommand(pane=pane):
                self.action_focus_pane(pane)
                return ""
            case p.LockCommand(reason=reason, account=acct):
                self._keys_wait_for(self.lock_account(self.resolve_account(acct), reason))
                return ""
            case p.LoginCommand(broker=broker):
                self.open_login(broker)
                return ""
            case p.KillCommand():
                self._keys_wait_for(self.kill_switch())
                return ""
            case p.HelpCommand():
                self.action_help()
                return ""
            case p.QuitCommand():
                self.exit()
                return ""
        raise CommandError(f"cannot run {cmd!r}")  # pragma: no cover

    def open_login(self, broker: str) -> None:
        """The browser-login modal for ``broker`` (from the palette, or a click on NEEDS LOGIN)."""
        known = sorted(self.bridge.state.connections)
        if broker not in known:
            raise CommandError(f"no broker named {broker!r} (brokers: {', '.join(known) or 'none'})")

        def done(result: LoginResult | None) -> None:
            if result is not None:
                self.notify(f"{broker}: {result.detail or 'logged in'}", title="login", timeout=8)

        self.push_screen(LoginScreen(self.engine, broker), done)

    @on(StatusBar.LoginWanted)
    def _login_wanted(self, event: StatusBar.LoginWanted) -> None:
        self.open_login(event.broker)

    def _contract(self, symbol: str) -> str:
        try:
            return self.engine.instrument(symbol).symbol
        except (UnknownSymbol, ModelError) as exc:
            raise CommandError(str(exc)) from None

    # ------------------------------------------------------------------ the : command bar

    def action_command_bar(self) -> None:
        bar = self.command_bar
        if not bar.is_open:
            self._return_focus = self.focused
            bar.open()

    @on(CommandBar.Run)
    def _command_bar_run(self, event: CommandBar.Run) -> None:
        event.stop()
        bar = self.command_bar
        try:
            cmd = p.parse(event.text)
        except p.ParseError as exc:
            bar.show_error(str(exc))
            self._command_error(str(exc))
            return
        self._keys_wait_for(self.run_worker(self._bar_execute(cmd, event.text), group="command", exit_on_error=False))

    async def _bar_execute(self, cmd: p.Command, text: str) -> None:
        bar = self.command_bar
        try:
            message = await self.execute(cmd, OrderSource.COMMAND_BAR)
        except CommandError as exc:
            bar.show_error(str(exc))
            self._command_error(str(exc))
            return
        except Exception as exc:
            bar.show_error(f"failed: {exc}")
            raise
        bar.close()
        if message:
            self.notify(message, timeout=4)

    @on(CommandBar.Closed)
    def _command_bar_closed(self, event: CommandBar.Closed) -> None:
        event.stop()
        target = self._return_focus
        self._return_focus = None
        if target is not None and target.is_mounted and target.focusable:
            target.focus()
        else:
            self.grid.focus()

    # ================================================================== navigation and help

    def action_focus_pane(self, pane: str) -> None:
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
        elif pane == "positions":
            if not self.wide:
                tabs.active = "tab-positions"
            self.positions_table.focus()
        elif pane == "risk":
            if not self.wide:
                tabs.active = "tab-risk"
            self.risk_panel.focus()

    # ------------------------------------------------------------------ screenshot

    def get_system_commands(self, screen: Any) -> Any:
        """Textual's palette commands, with a Screenshot that says where it saved (or why not)."""
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                yield SystemCommand(
                    "Screenshot",
                    f"Save an SVG of the screen to {self.screenshot_dir()}" if not self.is_web else command.help,
                    lambda: self.set_timer(0.1, self.action_screenshot),
                )
            else:
                yield command

    def screenshot_dir(self) -> Path:
        return data_dir(self.settings) / SCREENSHOT_DIR

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        if self.is_web:
            super().action_screenshot(filename, path)  # the browser downloads it
            return
        directory = Path(path).expanduser() if path else self.screenshot_dir()
        saved, reason = save_svg(self.export_screenshot(), directory)
        if saved is None:
            self.notify(f"screenshot not saved: {reason}", title="Screenshot", severity="error", timeout=15)
        else:
            self.notify(f"screenshot saved to {saved}", title="Screenshot", timeout=8)

    @on(events.DeliveryFailed)
    def _on_delivery_failed(self, event: events.DeliveryFailed) -> None:
        """A browser download that failed: say why (Textual's own message gives no reason)."""
        if event.name == "screenshot":
            event.prevent_default()
            self.notify(f"screenshot not delivered: {event.exception}", title="Screenshot", severity="error",
                        timeout=15)  # fmt: skip

    def action_help(self) -> None:
        note = ""
        if self.account is not None and not self.confirm_on(self.account):
            note = f"Order confirmation is OFF for {self._account_name(self.account)} (config)."
        self.push_screen(HelpScreen(self.settings.keymap, note))


def _color_depth(system: str | None, no_color: bool) -> str:
    """The terminal's colour depth as the widgets need it (Rich's names: truecolor, 256, standard, windows)."""
    if no_color:
        return "mono"
    return {"truecolor": "truecolor", "256": "256"}.get(system or "", "16")


def _fields(status: RiskStatus) -> dict[str, Any]:
    return {name: getattr(status, name) for name in status.__dataclass_fields__}


_VERBS = (
    p.BUY_WORDS | p.SELL_WORDS | p.FLATTEN_WORDS | p.CANCEL_WORDS | p.WATCH_WORDS | p.UNWATCH_WORDS | p.THEME_WORDS
    | p.SWITCH_ACCOUNT_WORDS | p.LIST_WORDS | p.SORT_WORDS | p.LOCK_WORDS | p.LOGIN_WORDS | p.KILL_WORDS | p.GO_WORDS
    | frozenset(p.PANES)
)  # fmt: skip


#: Action -> binding id of the app's priority bindings (they act before the focused widget sees the key).
_PRIORITY_ACTIONS = {spec.action: spec.id for spec in SPECS if spec.scope == "app" and spec.priority}


def _is_verb(word: str) -> bool:
    return word.lower() in _VERBS


__all__ = ["CommandError", "TtermApp"]
