"""The terminal app: start-up, keys, screens, and the engine's frame loop.

Data flow: the app drains the engine's event stream once per frame (``refresh_hz``; quotes arrive
coalesced, latest per symbol), shows the toasts for fills, rejects, locks and notices, and hands
the rest to the trade screen (:mod:`tterm.tui.screens.trade`), whose panes each take the kinds of
change they declare. Panes never call the engine: orders from the ticket, the palette, the command
bar, the hotkeys and the DOM ladder all go through one order path (:mod:`tterm.tui.orders`), and
palette and command-bar verbs through one command runner (:mod:`tterm.tui.actions`), so every
order passes the same pre-trade checks and confirmation.
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
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.driver import Driver
from textual.keys import key_to_character
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES
from textual.timer import Timer
from textual.widgets import Input, TextArea
from textual.worker import Worker

from tterm.config import Settings, data_dir
from tterm.core.broker import LoginResult
from tterm.core.client import EngineClient
from tterm.core.clock import ClockError, CmeClock
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import Account, Fill, Instrument, ModelError, Notice, Order, OrderSource, OrderStatus, utcnow
from tterm.tui import engine_verbs
from tterm.tui import format as fmt
from tterm.tui.actions import CommandError, CommandRunner
from tterm.tui.bridge import Bridge, Changes
from tterm.tui.commands import Plan, TradeCommands
from tterm.tui.freshness import Freshness, freshness
from tterm.tui.keymap import SPECS, bindings, check_keymap, effective_keys
from tterm.tui.messages import (
    AccountChosen,
    CancelAll,
    CancelOrder,
    Flatten,
    ModifyOrder,
    PositionVerb,
    SubmitOrder,
    SymbolChosen,
)
from tterm.tui.modals.login import LoginScreen
from tterm.tui.modals.prompt import Prompt
from tterm.tui.ordered_keys import OrderedKeys
from tterm.tui.orders import OrderPath
from tterm.tui.presets import QuantityPresets
from tterm.tui.screens.help import HelpScreen
from tterm.tui.screens.trade import WIDE_HEIGHT, WIDE_WIDTH, TradeScreen
from tterm.tui.screenshot import SCREENSHOT_DIR, save_svg
from tterm.tui.terminal import ExitWatchdog, terminal_gone
from tterm.tui.themes import APP_VARIABLES, load_themes, resolve_references, theme_dirs
from tterm.tui.widgets.blotter import FillsTable, OrdersTable
from tterm.tui.widgets.command_bar import CommandBar
from tterm.tui.widgets.order_ticket import OrderTicket
from tterm.tui.widgets.positions import PositionsTable
from tterm.tui.widgets.quote_grid import QuoteGrid
from tterm.tui.widgets.risk_meter import RiskPanel
from tterm.tui.widgets.status_bar import StatusBar

SSH_MAX_HZ = 8
"""The frame rate cap under the SSH profile (fewer, smaller writes over a slow link)."""

FALLBACK_THEME = "tterm-amber"

THEME_SAVE_DELAY = 0.8
"""Seconds a newly chosen theme must stay before it is saved (the palette previews as you scroll)."""

SMALL_TOAST_SECONDS: dict[str, float] = {"information": 3.0, "warning": 5.0, "error": 8.0}
"""On a small screen toasts sit over the blotter and positions: they stay at most this long
(rejects and errors stay listed in the fills pane and the journal)."""

GONE_EXIT_GRACE = 15.0
"""Seconds the shutdown may take once the terminal went away before the process is ended anyway:
a hung tterm would keep the data dir locked and the broker sockets open."""

log = logging.getLogger(__name__)


#: A notice's level as Textual's toast severity.
_SEVERITY: dict[str, SeverityLevel] = {"info": "information", "warning": "warning", "error": "error"}


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
        #: The one order path (every pane's orders) and the palette / command-bar runner.
        self.orders = OrderPath(self)
        self.commands = CommandRunner(self)
        self.presets = QuantityPresets(self.settings.general.quantity_presets)
        hz = self.settings.general.refresh_hz
        self.refresh_hz = min(hz, SSH_MAX_HZ) if ssh else hz
        self.account: str | None = None
        self.watchlists: dict[str, list[str]] = {k: list(v) for k, v in self.settings.watchlists.items()}
        if not self.watchlists:
            self.watchlists = {"watchlist": []}
        self.list_name = next(iter(self.watchlists))
        self.ready = asyncio.Event()
        self._profiles = profiles
        self._profiles_loaded = profiles is not None
        self._frame_timer: Timer | None = None
        self._warned_color = False
        self._return_focus: Any = None
        self.freshness: Freshness = freshness((), self.wall(), self.settings.risk.stale_after_seconds)
        self.color_depth = "truecolor"
        self._theme_timer: Timer | None = None
        self._worker_holds: dict[Worker[Any], int] = {}
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

    # ================================================================== screens

    def get_default_screen(self) -> Screen[Any]:
        return TradeScreen()

    @property
    def trade(self) -> TradeScreen:
        """The main layout (the default screen, under any dialog)."""
        screen = self.screen_stack[0] if self.screen_stack else None
        assert isinstance(screen, TradeScreen), "the trade screen is not installed yet"
        return screen

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **APP_VARIABLES}

    def get_css_variables(self) -> dict[str, str]:
        """Textual's variables, with tterm's defaults (``$text-success``...) resolved against them."""
        variables = resolve_references(super().get_css_variables())
        self.theme_variables = variables
        return variables

    # ------------------------------------------------------------------ pane handles (the trade screen's)

    @property
    def grid(self) -> QuoteGrid:
        return self.trade.grid

    @property
    def ticket(self) -> OrderTicket:
        return self.trade.ticket

    @property
    def status(self) -> StatusBar:
        return self.trade.status

    @property
    def orders_table(self) -> OrdersTable:
        return self.trade.orders_table

    @property
    def fills_table(self) -> FillsTable:
        return self.trade.fills_table

    @property
    def positions_table(self) -> PositionsTable:
        return self.trade.positions_table

    @property
    def risk_panel(self) -> RiskPanel:
        return self.trade.risk_panel

    @property
    def command_bar(self) -> CommandBar:
        return self.trade.command_bar

    @property
    def wide(self) -> bool:
        return self.trade.wide

    @property
    def recent_orders(self) -> list[str]:
        return self.commands.recent_orders

    def plan_command(self, text: str, *, palette: bool) -> Plan | None:
        """What ``text`` would do, for the palette (see :class:`tterm.tui.actions.CommandRunner`)."""
        return self.commands.plan(text, palette=palette)

    # ================================================================== start and stop

    def on_mount(self) -> None:
        self.set_color_depth(_color_depth(getattr(self.console, "color_system", None), self.no_color))
        self._load_themes()
        problems = check_keymap(self.settings.keymap)
        if problems:
            self.notify("\n".join(problems), title="keymap", severity="warning", timeout=15)
        keymap = self.settings.keymap
        self.set_keymap({k: v for k, v in keymap.items() if not check_keymap({k: v})})
        if not self.is_headless:
            self._install_signal_handlers()
            self.set_interval(5.0, self._check_tty)
        self.set_interval(1.0, self._tick_second)

    def trade_screen_mounted(self) -> None:
        """The panes exist: connect to the engine and fill them."""
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
                f"theme {wanted!r} not found; using {fallback} (themes: {', '.join(self.theme_names())})",
                title="theme",
                severity="warning",
                timeout=15,
            )
            self.theme = fallback

    def theme_names(self) -> list[str]:
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
        await self.trade.show_list(self.list_name)
        self.trade.first_symbol()
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
        trade = self.trade
        trade.grid.expire_flashes(now)
        if changes:
            self._apply_changes(changes, now)
        trade.flush_tables()

    async def _resync(self) -> None:
        self.notify("fell behind the engine; reloading the state", severity="warning")
        self.bridge.open()
        self._apply_changes(await self.bridge.load())

    def _apply_changes(self, ch: Changes, now: float | None = None) -> None:
        """App-wide effects of one frame's changes (toasts, waiting orders), then the panes'."""
        now = self.mono() if now is None else now
        if ch.quotes:
            self.orders.quotes_arrived(ch.quotes)
            self._update_dialog_market(ch.quotes)
        if ch.orders or ch.fills:
            self._notify_orders(ch.orders, ch.fills)
        for lock in ch.locks:
            name = self.account_name(lock.account)
            if lock.locked:
                self.notify(f"{name} is LOCKED: {lock.reason}", severity="warning", timeout=15)
            else:
                self.notify(f"{name} is unlocked ({lock.reason})")
        for notice in ch.notices:
            severity = {"info": "information", "warning": "warning", "error": "error"}[notice.level]
            self.notify(notice.text, severity=severity, timeout=15 if notice.level == "error" else 6)  # type: ignore[arg-type]
        for fired in ch.alerts_fired:
            engine_verbs.announce(self, fired)
        self.trade.apply_changes(ch, now)

    def _update_dialog_market(self, quotes: Mapping[str, Any]) -> None:
        """The open order confirmation's market line follows the quotes (it is live)."""
        live = getattr(self.screen, "live_line", None)
        if live is not None and live[1] in quotes:
            self.screen.update_detail(live[0], self.orders.market_line(live[1]))  # type: ignore[attr-defined]

    def _notify_orders(self, orders: list[Order], fills: list[Fill]) -> None:
        for fill in fills:
            self.notify(
                f"FILLED {fill.side.value.upper()} {fill.quantity} {fill.symbol} @ "
                f"{fmt.price(fill.price, self.instrument_or_none(fill.symbol))} "
                f"in {self.account_name(fill.account)}",
                timeout=6,
            )
        for order in orders:
            if order.status is OrderStatus.REJECTED:
                self.orders.notify_reject(order)

    def tables_changed(self, *names: str) -> None:
        """Mark DataTable panes (orders, fills, positions, risk) for the next redraw."""
        self.trade.tables_changed(*names)

    def _flush_tables(self, *, force: bool = False) -> None:
        self.trade.flush_tables(force=force)

    def instrument_or_none(self, symbol: str) -> Instrument | None:
        try:
            return self.engine.instrument(symbol)
        except (UnknownSymbol, ModelError):
            return None

    def _tick_second(self) -> None:
        if not self.alive or not self.ready.is_set():
            return
        self.trade.tick_second()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A toast; on a small screen it stays briefly (it covers the blotter and positions)."""
        if self.screen_stack and not self.trade.wide:
            cap = SMALL_TOAST_SECONDS.get(severity, 5.0)
            timeout = cap if timeout is None else min(timeout, cap)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ================================================================== accounts, status, risk

    def account_name(self, account_id: str | None) -> str:
        if account_id is None:
            return "no account"
        acct = self.bridge.state.accounts.get(account_id)
        return acct.name if acct is not None and acct.name else account_id

    def confirm_on(self, account: str | None) -> bool:
        return True if account is None else self.settings.confirm_orders_for(account)

    def is_live(self, account: str) -> bool:
        acct = self.bridge.state.accounts.get(account)
        return bool(acct is not None and acct.is_live)

    def profile(self, account: Account) -> Any:
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

    def cutoff(self, account_id: str | None) -> tuple[datetime | None, str]:
        state = self.bridge.state
        if account_id is not None:
            risk = state.risk.get(account_id)
            if risk is not None and risk.cutoff is not None:
                return risk.cutoff, "flat by"
            acct = state.accounts.get(account_id)
            profile = self.profile(acct) if acct is not None else None
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

    def update_freshness(self) -> Freshness:
        """Which feeds are current (once a second and on connection changes)."""
        state = self.bridge.state
        self.freshness = freshness(state.connections.values(), self.wall(), self.settings.risk.stale_after_seconds)
        return self.freshness

    def _update_status(self) -> None:
        self.trade.update_status()

    # ================================================================== config

    def save_config(self, edits: Mapping[tuple[str, ...], Any], what: str) -> None:
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
        self.save_config({("general", "theme"): name}, f"the theme {name!r}")

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
        self.trade.update_status()
        self.trade.tables_changed("risk")

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
        self.notify(f"account: {self.account_name(self.account)}")

    @on(AccountChosen)
    def _account_chosen(self, event: AccountChosen) -> None:
        if event.account != self.account:
            self.set_account(event.account)

    @on(SymbolChosen)
    def _symbol_chosen(self, event: SymbolChosen) -> None:
        contracts = [event.contract] if event.contract else []
        self.run_worker(self.bridge.want("ticket", contracts), group="subs-ticket", exclusive=True,
                        exit_on_error=False)  # fmt: skip

    # ================================================================== requests from the panes

    @on(SubmitOrder)
    def _submit(self, event: SubmitOrder) -> None:
        event.stop()
        self.orders.submit(event.request)

    @on(CancelOrder)
    def _cancel(self, event: CancelOrder) -> None:
        event.stop()
        self.orders.cancel(event.account, event.order_id)

    @on(CancelAll)
    def _cancel_all(self, event: CancelAll) -> None:
        event.stop()
        try:
            account = self.resolve_account(event.account)
        except CommandError as exc:
            self.notify(str(exc), severity="error")
            return
        self.orders.cancel_all(account, None)

    @on(ModifyOrder)
    def _modify(self, event: ModifyOrder) -> None:
        event.stop()
        self.orders.open_modify(event.order)

    @on(Flatten)
    def _flatten(self, event: Flatten) -> None:
        event.stop()
        self.orders.flatten(event.account, event.symbol)

    @on(PositionVerb)
    def _position_verb(self, event: PositionVerb) -> None:
        event.stop()
        if event.verb == "reverse":
            self.orders.reverse(event.account, event.symbol, OrderSource.HOTKEY)
        elif event.verb == "breakeven":
            self.orders.breakeven(event.account, event.symbol, OrderSource.HOTKEY)

    def action_kill_switch(self) -> None:
        self.orders.kill_switch()

    @work(group="prompt", exit_on_error=False)
    async def prompt_add(self) -> None:
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
                self.notify(await self.trade.watch_symbols(symbols), timeout=3)
            except CommandError as exc:
                self.notify(str(exc), severity="error")

    # ================================================================== keys and workers

    def keys_wait_for(self, worker: Worker[Any]) -> Worker[Any]:
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

    # ================================================================== login, command bar, navigation

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

    @on(StatusBar.LoginWanted)
    def _login_wanted(self, event: StatusBar.LoginWanted) -> None:
        self.open_login(event.broker)

    def action_command_bar(self) -> None:
        bar = self.command_bar
        if not bar.is_open:
            self._return_focus = self.focused
            bar.open()

    def return_focus_to(self, widget: Any) -> None:
        """A command opened ``widget`` (the ladder): focus goes there when the command bar closes."""
        if self.command_bar.is_open:
            self._return_focus = widget

    def take_return_focus(self) -> Any:
        """Where focus goes back to when the command bar closes (and forget it)."""
        target, self._return_focus = self._return_focus, None
        return target

    def action_focus_pane(self, pane: str) -> None:
        self.trade.focus_pane(pane)

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

    # Replaces Textual's own handler of the same name on purpose; Textual annotates that one's
    # argument as DeliveryComplete (its typo: it handles DeliveryFailed), hence the ignore.
    @on(events.DeliveryFailed)
    def _on_delivery_failed(self, event: events.DeliveryFailed) -> None:  # type: ignore[override]
        """A browser download that failed: say why (Textual's own message gives no reason)."""
        if event.name == "screenshot":
            event.prevent_default()
            self.notify(f"screenshot not delivered: {event.exception}", title="Screenshot", severity="error",
                        timeout=15)  # fmt: skip

    def action_help(self) -> None:
        note = ""
        if self.account is not None and not self.confirm_on(self.account):
            note = f"Order confirmation is OFF for {self.account_name(self.account)} (config)."
        self.push_screen(HelpScreen(self.settings.keymap, note))


def _color_depth(system: str | None, no_color: bool) -> str:
    """The terminal's colour depth as the widgets need it (Rich's names: truecolor, 256, standard, windows)."""
    if no_color:
        return "mono"
    return {"truecolor": "truecolor", "256": "256"}.get(system or "", "16")


#: Action -> binding id of the app's priority bindings (they act before the focused widget sees the key).
_PRIORITY_ACTIONS = {spec.action: spec.id for spec in SPECS if spec.scope == "app" and spec.priority}


__all__ = ["WIDE_HEIGHT", "WIDE_WIDTH", "CommandError", "TtermApp"]
