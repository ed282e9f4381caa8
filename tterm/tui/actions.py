"""Command execution for the palette and the ``:`` command bar: parse, plan, carry out.

One parsed command has one meaning whichever way it was typed. Orders become an ``OrderRequest``
and go to the one order path (:class:`tterm.tui.orders.OrderPath`); watchlist, pane and ladder
verbs go to the trade screen; theme and account verbs to the app. ``CommandError`` says why a
command that parsed cannot be carried out, and nothing changes then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.worker import Worker

from tterm.core.instruments import UnknownSymbol
from tterm.core.models import ModelError, OrderRequest, OrderSource, new_client_order_id
from tterm.tui import engine_verbs
from tterm.tui import parse as p
from tterm.tui.commands import Plan
from tterm.tui.screens.launch import ScreenError, open_screen

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp


class CommandError(Exception):
    """A command that parsed but cannot be carried out (unknown account, symbol, theme...)."""


_VERBS = (
    p.BUY_WORDS | p.SELL_WORDS | p.FLATTEN_WORDS | p.CANCEL_WORDS | p.WATCH_WORDS | p.UNWATCH_WORDS | p.THEME_WORDS
    | p.SWITCH_ACCOUNT_WORDS | p.LIST_WORDS | p.SORT_WORDS | p.LOCK_WORDS | p.LOGIN_WORDS | p.KILL_WORDS | p.GO_WORDS
    | frozenset(p.PANES) | p.SCREEN_WORDS | p.DESK_WORDS | engine_verbs.VERB_WORDS
)  # fmt: skip


def is_verb(word: str) -> bool:
    return word.lower() in _VERBS


Parsed = p.Command


class CommandRunner:
    """Plans a line for the palette and carries out parsed commands."""

    def __init__(self, app: TtermApp) -> None:
        self.app = app
        self.recent_orders: list[str] = []

    # ------------------------------------------------------------------ planning (palette)

    def plan(self, text: str, *, palette: bool) -> Plan | None:
        """What ``text`` would do, for the palette (None: not a tterm verb, let other providers match)."""
        words = text.strip().lstrip(":").split()
        if not words:
            return None
        source = OrderSource.PALETTE if palette else OrderSource.COMMAND_BAR
        try:
            cmd = p.parse(text)
        except p.ParseError as exc:
            if not is_verb(words[0]):
                return None
            message = str(exc)
            return Plan(False, message, "nothing is sent: fix the command", lambda: self.error(message))
        try:
            if isinstance(cmd, p.OrderCommand):
                request = self.build_request(cmd, source)
                confirm = "enter: review and confirm" if self.app.confirm_on(request.account) else (
                    "CONFIRMATION IS OFF for this account: enter sends"
                )  # fmt: skip
                return Plan(True, f"order: {self.app.orders.describe(request)}", confirm,
                            lambda: self._run_order(request, text))  # fmt: skip
            summary = p.describe(cmd)
        except CommandError as exc:
            message = str(exc)
            return Plan(False, message, "nothing is sent: fix the command", lambda: self.error(message))
        return Plan(True, summary, "enter: do it", lambda: self.run(cmd, source))

    def error(self, message: str) -> None:
        self.app.notify(message, title="command", severity="error", timeout=10)

    def _run_order(self, request: OrderRequest, text: str) -> None:
        self.remember(text)
        # A fresh client order id each time: a plan can be chosen again from the palette's history.
        self.app.orders.submit(request.with_changes(client_order_id=new_client_order_id()))

    def remember(self, text: str) -> None:
        text = text.strip().lstrip(":").strip()
        if text in self.recent_orders:
            self.recent_orders.remove(text)
        self.recent_orders.append(text)
        del self.recent_orders[:-20]

    def build_request(self, cmd: p.OrderCommand, source: OrderSource) -> OrderRequest:
        account = self.app.resolve_account(cmd.account)
        try:
            inst = self.app.engine.instrument(cmd.symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise CommandError(str(exc)) from None
        try:
            return p.build_order(cmd, account=account, instrument=inst, source=source)
        except p.ParseError as exc:
            raise CommandError(str(exc)) from None

    def contract(self, symbol: str) -> str:
        try:
            return self.app.engine.instrument(symbol).symbol
        except (UnknownSymbol, ModelError) as exc:
            raise CommandError(str(exc)) from None

    # ------------------------------------------------------------------ carrying out

    def run(self, cmd: Parsed, source: OrderSource) -> Worker[Any]:
        return self.app.keys_wait_for(
            self.app.run_worker(self._execute(cmd, source), group="command", exit_on_error=False)
        )

    async def _execute(self, cmd: Parsed, source: OrderSource) -> None:
        try:
            message = await self.execute(cmd, source)
        except CommandError as exc:
            self.error(str(exc))
            return
        if message:
            self.app.notify(message, timeout=4)

    async def execute(self, cmd: Parsed, source: OrderSource) -> str:
        """Carry out one parsed command; CommandError says why it cannot be done."""
        app = self.app
        orders = app.orders
        trade = app.trade
        if isinstance(cmd, p.ENGINE_COMMANDS):  # alerts, P&L history, search
            return await engine_verbs.run(app, cmd)
        match cmd:
            case p.OrderCommand():
                request = self.build_request(cmd, source)
                self.remember(p.format_order(cmd))
                orders.submit(request)
                return ""
            case p.FlattenCommand(symbol=symbol, account=acct):
                account = app.resolve_account(acct)
                orders.flatten(account, self.contract(symbol) if symbol else None)
                return ""
            case p.CancelCommand(target=target, account=acct):
                account = app.resolve_account(acct)
                if target is None:
                    orders.cancel_all(account, None)
                    return ""
                try:
                    contract = app.engine.instrument(target).symbol
                except (UnknownSymbol, ModelError):
                    contract = None
                if contract is not None:
                    orders.cancel_all(account, contract)
                    return ""
                if (account, target) not in app.bridge.state.orders:
                    raise CommandError(f"{target!r} is neither a symbol nor an order id in {app.account_name(account)}")
                orders.cancel(account, target)
                return ""
            case p.ReverseCommand(symbol=symbol, account=acct):
                account = app.resolve_account(acct)
                contract = self.contract(symbol)
                if orders.position(account, contract) is None:
                    raise CommandError(f"reverse: no position in {contract} in {app.account_name(account)}")
                orders.reverse(account, contract, source)
                return ""
            case p.BreakevenCommand(symbol=symbol, account=acct):
                account = app.resolve_account(acct)
                contract = self.contract(symbol)
                if orders.position(account, contract) is None:
                    raise CommandError(f"breakeven: no position in {contract} in {app.account_name(account)}")
                orders.breakeven(account, contract, source)
                return ""
            case p.TrailCommand(symbol=symbol, ticks=ticks, account=acct):
                account = app.resolve_account(acct)
                contract = self.contract(symbol)
                if orders.position(account, contract) is None:
                    raise CommandError(f"trail: no position in {contract} in {app.account_name(account)}")
                orders.trail(account, contract, ticks, source)
                return ""
            case p.DomCommand(symbol=None):
                await trade.close_dom()
                return ""
            case p.DomCommand(symbol=symbol):
                resolved = app.bridge.resolve(symbol)
                if resolved.instrument is None:
                    raise CommandError(f"dom: {resolved.error}")
                await trade.open_dom(resolved.instrument)
                return ""
            case p.WatchCommand(symbols=symbols):
                return await trade.watch_symbols(symbols)
            case p.UnwatchCommand(symbols=symbols):
                return await trade.unwatch_symbols(symbols)
            case p.ThemeCommand(name=name):
                if name not in app.available_themes:
                    raise CommandError(f"no theme {name!r} (themes: {', '.join(app.theme_names())})")
                app.theme = name
                return f"theme {name}"
            case p.AccountCommand(name=name):
                app.set_account(app.resolve_account(name))
                return f"account: {app.account_name(app.account)}"
            case p.ListCommand(name=name):
                if name is None:
                    await trade.step_list(1)
                else:
                    match = next((n for n in app.watchlists if n.lower() == name.lower()), None)
                    if match is None:
                        raise CommandError(f"no watchlist {name!r} (lists: {', '.join(app.watchlists)})")
                    await trade.show_list(match)
                return ""
            case p.SortCommand(column=column, descending=desc):
                trade.grid.set_sort(column, desc)
                return p.describe(cmd)
            case p.FocusCommand(pane=pane):
                app.action_focus_pane(pane)
                return ""
            case p.LockCommand(reason=reason, account=acct):
                orders.lock(app.resolve_account(acct), reason)
                return ""
            case p.LoginCommand(broker=broker):
                app.open_login(broker)
                return ""
            case p.KillCommand():
                orders.kill_switch()
                return ""
            case p.HelpCommand():
                app.action_help()
                return ""
            case p.QuitCommand():
                app.exit()
                return ""
            case p.ChartCommand() | p.TapeCommand() | p.ChainCommand():  # market screens
                try:
                    return await open_screen(app, cmd)
                except ScreenError as exc:
                    raise CommandError(str(exc)) from None
        raise CommandError(f"cannot run {cmd!r}")  # pragma: no cover

    # ------------------------------------------------------------------ the : command bar

    def bar_run(self, text: str) -> None:
        """A line entered in the command bar: errors stay in the bar, success closes it."""
        bar = self.app.trade.command_bar
        try:
            cmd = p.parse(text)
        except p.ParseError as exc:
            bar.show_error(str(exc))
            self.error(str(exc))
            return
        self.app.keys_wait_for(self.app.run_worker(self._bar_execute(cmd), group="command", exit_on_error=False))

    async def _bar_execute(self, cmd: Parsed) -> None:
        bar = self.app.trade.command_bar
        try:
            message = await self.execute(cmd, OrderSource.COMMAND_BAR)
        except CommandError as exc:
            bar.show_error(str(exc))
            self.error(str(exc))
            return
        except Exception as exc:
            bar.show_error(f"failed: {exc}")
            raise
        bar.close()
        if message:
            self.app.notify(message, timeout=4)


__all__ = ["CommandError", "CommandRunner", "is_verb"]
