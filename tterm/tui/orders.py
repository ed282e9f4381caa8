"""The one order path: every order the screen sends, from any pane, goes through here.

The ticket, the palette, the command bar, the watchlist hotkeys and the DOM ladder build an
``OrderRequest`` (or name a working order) and call :class:`OrderPath`. It runs the same steps
for all of them: stream the symbol if nothing shows it yet, ask the engine for the pre-trade
verdict, show the confirmation (unless it is off for the account), place, and report the outcome.
Where the account's broker dry-runs orders (``Account.previews``), the confirmation shows the
dry run as it arrives and a broker reject refuses the send (:mod:`tterm.tui.dry_run`); with the
confirmation off the dry run is awaited before the send, and one that cannot be had brings the
confirmation up instead of passing.
Changes to working orders (cancel, modify, move) and position verbs (flatten, reverse, breakeven,
trail) pass through here too, so a key anywhere cannot skip a check another path makes.

Each verb runs in a worker of the app and returns it; the app holds the next keys until the worker
ends or shows its dialog (``TtermApp.keys_wait_for``), so a burst of keys never outruns a dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from textual.worker import Worker

from tterm.core.client import EngineError
from tterm.core.clock import CT
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    Instrument,
    ModelError,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from tterm.tui import dry_run
from tterm.tui import format as fmt
from tterm.tui.estimate import estimate_risk
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.modify import ModifyOrderScreen
from tterm.tui.widgets.blotter import order_price

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp


class OrderError(Exception):
    """A position or order verb that cannot be carried out (no position, no stop to move...)."""


def bracket_lines(request: OrderRequest, inst: Instrument, reference: Decimal | None) -> list[str]:
    """The bracket's exits as prices (not only ticks): the confirmation shows where they rest.

    Ticks count from the entry: the limit or stop price, else ``reference`` (the side of the
    market a market order fills at). Without either the ticks are shown as they are.
    """
    b = request.bracket
    if b is None:
        return []
    entry = request.limit_price if request.limit_price is not None else request.stop_price
    if entry is None:
        entry = reference
    sign = 1 if request.side is Side.BUY else -1
    out: list[str] = []
    for name, ticks, price, direction in (
        ("Take profit", b.take_profit_ticks, b.take_profit_price, 1),
        ("Stop loss", b.stop_loss_ticks, b.stop_loss_price, -1),
    ):
        if price is not None:
            at = inst.round_price(price)
            away = abs(at - entry) / inst.tick_size if entry is not None else None
            out.append(f"{name}: {fmt.price(at, inst)}" + (f" ({away:.0f} ticks)" if away is not None else ""))
        elif ticks is not None:
            if entry is None:
                out.append(f"{name}: {ticks} ticks from the fill")
            else:
                at = inst.round_price(entry + sign * direction * ticks * inst.tick_size)
                out.append(f"{name}: {fmt.price(at, inst)} ({ticks} ticks from {fmt.price(entry, inst)})")
    return out


class OrderPath:
    """Preview, confirm, place and report; cancel, modify and position verbs, for every pane."""

    def __init__(self, app: TtermApp) -> None:
        self.app = app
        self._order_symbols: set[str] = set()
        self._quote_waiters: dict[str, asyncio.Event] = {}
        self._notified_rejects: set[str] = set()

    # ------------------------------------------------------------------ helpers

    @property
    def engine(self) -> Any:
        return self.app.engine

    @property
    def state(self) -> Any:
        return self.app.bridge.state

    def _run(self, coro: Awaitable[Any], group: str, *, exclusive: bool = False) -> Worker[Any]:
        worker = self.app.run_worker(coro, group=group, exclusive=exclusive, exit_on_error=False)
        return self.app.keys_wait_for(worker)

    def describe(self, request: OrderRequest) -> str:
        """The order in plain words, its prices in the instrument's format."""
        return fmt.describe(request, self.app.instrument_or_none(request.symbol))

    def quotes_arrived(self, symbols: Any) -> None:
        """Called each frame with the symbols whose quotes changed: wakes orders waiting for one."""
        for symbol in [s for s in self._quote_waiters if s in symbols]:
            self._quote_waiters[symbol].set()

    def notify_reject(self, order: Order) -> None:
        key = f"{order.account}|{order.order_id}"
        if key in self._notified_rejects:
            return
        self._notified_rejects.add(key)
        self.app.notify(
            f"REJECTED {order.side.value.upper()} {order.quantity} {order.symbol}: {order.reject_reason}",
            severity="error",
            timeout=15,
        )

    # ------------------------------------------------------------------ new orders

    def submit(self, request: OrderRequest) -> Worker[Any]:
        """Send ``request`` through the checks and the confirmation (a worker; keys wait for it)."""
        return self._run(self.send(request), "orders")

    async def send(self, request: OrderRequest, *, headline: str | None = None) -> Order | None:
        """The one path every new order takes: preview, confirm (unless off), place, report."""
        app = self.app
        for symbol in [leg.symbol for leg in request.legs] or [request.symbol]:  # a spread: its legs' quotes
            await self._ensure_quote(symbol)
        try:
            decision = await self.engine.preview(request)
        except (EngineError, UnknownSymbol, ModelError) as exc:
            app.notify(f"not sent: {exc}", severity="error", timeout=12)
            return None
        if not decision.allowed:
            app.notify(f"REFUSED {self.describe(request)}: {decision.reason}", severity="error", timeout=15)
            return None
        if not await self._confirmed(request, decision.reasons, headline):
            return None
        try:
            order = await self.engine.place(request)
        except EngineError as exc:
            app.notify(f"not sent: {exc}", severity="error", timeout=15)
            return None
        if order.status is OrderStatus.REJECTED:
            self.notify_reject(order)
        else:
            app.notify(f"sent: {self.describe(request)}", timeout=4)
        app.tables_changed("orders", "fills")
        return order

    def previews(self, account: str) -> bool:
        """Whether the account's broker dry-runs orders (the engine says so on the account)."""
        acct = self.state.accounts.get(account)
        return bool(acct is not None and acct.previews)

    async def dry_run(self, request: OrderRequest) -> dry_run.DryRun:
        """The broker's dry run of ``request`` in plain words (never raises; journaled by the engine)."""
        bal = self.state.balances.get(request.account)
        return await dry_run.ask(self.engine, request, bal.buying_power if bal is not None else None)

    async def _confirmed(self, request: OrderRequest, warnings: tuple[str, ...], headline: str | None) -> bool:
        """The confirmation (unless off) with the broker's dry run where it has one: True to send."""
        app = self.app
        check = self.previews(request.account)
        if not app.confirm_on(request.account):
            if not check:
                return True
            # No dialog: the dry run is awaited; a reject refuses the send, no answer asks the user.
            result = await self.dry_run(request)
            if result.blocks:
                app.notify(f"NOT SENT {self.describe(request)}: {result.text}", severity="error", timeout=15)
                return False
            if not result.unavailable:
                return True
            dialog = self.confirm_dialog(request, warnings, headline=headline, check=result.text)
            dialog.show_check(result.text, result.level, unavailable=True)
            return await self._answer(dialog)
        asking = dry_run.pending(self._broker(request.account)).text if check else None
        dialog = self.confirm_dialog(request, warnings, headline=headline, check=asking)
        if not check:
            return await self._answer(dialog)

        async def fill_in() -> None:
            result = await self.dry_run(request)
            dialog.show_check(result.text, result.level, blocks=result.blocks, unavailable=result.unavailable)

        task = asyncio.create_task(fill_in())
        try:
            return await self._answer(dialog)
        finally:
            task.cancel()

    async def _answer(self, dialog: ConfirmDialog) -> bool:
        ok = await self.app.push_screen_wait(dialog)
        if not ok:
            self.app.notify("order not sent", timeout=3)
        return bool(ok)

    def _broker(self, account: str) -> str:
        acct = self.state.accounts.get(account)
        return acct.broker if acct is not None else account

    async def _ensure_quote(self, symbol: str, wait: float = 3.0) -> None:
        """Stream ``symbol`` before an order in it is checked: the engine refuses orders without a
        current quote, and a palette order may name a symbol no pane shows."""
        if symbol in self.state.quotes:
            return
        self._order_symbols.add(symbol)
        arrived = self._quote_waiters.setdefault(symbol, asyncio.Event())
        try:
            await self.app.bridge.want("orders", self._order_symbols)
        except (EngineError, UnknownSymbol, ModelError) as exc:
            self.app.notify(f"cannot stream {symbol}: {exc}", severity="warning")
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await arrived.wait()
        self._quote_waiters.pop(symbol, None)

    def confirm_dialog(
        self, request: OrderRequest, warnings: tuple[str, ...], *, headline: str | None = None,
        check: str | None = None,
    ) -> ConfirmDialog:  # fmt: skip
        """The order confirmation: account, a live market line, the risk, the bracket's prices."""
        app = self.app
        acct = self.state.accounts.get(request.account)
        details = [f"Account: {app.account_name(request.account)} ({request.account})"]
        inst = app.instrument_or_none(request.symbol)
        market_index = None
        if inst is not None:
            quote = self.state.quotes.get(request.symbol)
            market_index = len(details)
            details.append(self.market_line(request.symbol))
            reference = None
            if quote is not None:
                reference = quote.ask if request.side is Side.BUY else quote.bid
            details.extend(bracket_lines(request, inst, reference))
            details.append(f"Estimated risk: {estimate_risk(request, inst, quote).text}")
        details.append(f"From: {request.source.value.replace('_', ' ')}")
        details.append(f'To skip this dialog: [accounts."{request.account}"] confirm_orders = false in config.toml')
        dialog = ConfirmDialog(
            "Confirm order",
            headline or self.describe(request),
            details,
            warnings=list(warnings),
            live=bool(acct.is_live) if acct is not None else False,
            yes="Send",
            check=check,
        )
        if market_index is not None:
            # The market line follows the quotes while the dialog is open (the app updates it).
            dialog.live_line = (market_index, request.symbol)
        return dialog

    def market_line(self, symbol: str) -> str:
        """``Market: bid … ask … last …`` for the confirmation (STALE when the quote is old)."""
        inst = self.app.instrument_or_none(symbol)
        quote = self.state.quotes.get(symbol)
        if quote is None:
            return f"Market: no quote for {symbol} yet"
        market = (
            f"Market: bid {fmt.touch(quote.bid, quote.bid_size, inst, sep=' × ')}   "
            f"ask {fmt.touch(quote.ask, quote.ask_size, inst, sep=' × ')}   "
            f"last {fmt.price(quote.last, inst)}"
        )
        fresh = self.app.freshness
        if fresh.quote_stale(quote):
            market += f"   STALE ({fmt.age(fresh.quote_age(quote))} old)"
        return market

    # ------------------------------------------------------------------ working orders

    def cancel(self, account: str, order_id: str) -> Worker[Any]:
        return self._run(self._cancel(account, order_id), "cancel")

    async def _cancel(self, account: str, order_id: str) -> None:
        try:
            order = await self.engine.cancel(account, order_id)
        except EngineError as exc:
            self.app.notify(f"cancel failed: {exc}", severity="error", timeout=10)
            return
        self.app.notify(f"cancel {order_id}: {order.status.value.replace('_', ' ')}", timeout=3)

    def cancel_orders(self, orders: list[Order], what: str) -> Worker[Any]:
        """Cancel these working orders (the DOM's cancel-at-row), after a confirmation."""
        return self._run(self._cancel_orders(orders, what), "cancel")

    async def _cancel_orders(self, orders: list[Order], what: str) -> None:
        app = self.app
        if not orders:
            app.notify(f"no working orders {what}")
            return
        if app.confirm_on(orders[0].account):
            ok = await app.push_screen_wait(
                ConfirmDialog(
                    "Cancel orders",
                    f"CANCEL {len(orders)} order{'s' if len(orders) != 1 else ''} {what}?",
                    [self._order_line(o) for o in orders[:6]],
                    yes="Cancel orders",
                    danger=True,
                )
            )
            if not ok:
                return
        failed = []
        for order in orders:
            try:
                await self.engine.cancel(order.account, order.order_id)
            except EngineError as exc:
                failed.append(f"{order.order_id}: {exc}")
        if failed:
            app.notify("cancel failed: " + "; ".join(failed), severity="error", timeout=10)
        else:
            app.notify(f"cancelled {len(orders)} order{'s' if len(orders) != 1 else ''} {what}", timeout=3)

    def _order_line(self, o: Order) -> str:
        price = order_price(o, self.app.instrument_or_none(o.symbol))
        otype = o.order_type.value.replace("_", " ")
        return f"{o.order_id}: {o.side.value.upper()} {o.quantity - o.filled_quantity} {o.symbol} {otype} {price}"

    def cancel_all(self, account: str, symbol: str | None) -> Worker[Any]:
        return self._run(self._cancel_all(account, symbol), "cancel")

    async def _cancel_all(self, account: str, symbol: str | None) -> None:
        app = self.app
        working = [o for o in self.state.working_orders() if o.account == account and
                   (symbol is None or o.symbol == symbol)]  # fmt: skip
        what = f"{len(working)} working order{'s' if len(working) != 1 else ''}" + (f" in {symbol}" if symbol else "")
        if not working:
            app.notify(f"no working orders in {app.account_name(account)}" + (f" for {symbol}" if symbol else ""))
            return
        ok = await app.push_screen_wait(
            ConfirmDialog(
                "Cancel orders",
                f"CANCEL {what} in {app.account_name(account)}?",
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
            app.notify(f"cancel all failed: {exc}", severity="error", timeout=10)
            return
        app.notify(f"cancelled {len(done)} order{'s' if len(done) != 1 else ''}", timeout=4)

    async def modify(
        self,
        order: Order,
        *,
        quantity: int | None = None,
        limit: Decimal | None = None,
        stop: Decimal | None = None,
        what: str = "",
    ) -> str | None:
        """Change a working order in place (never a cancel and a new order); None, or why not."""
        try:
            await self.engine.modify(order.account, order.order_id, quantity=quantity, limit_price=limit,
                                     stop_price=stop)  # fmt: skip
        except (EngineError, ModelError) as exc:
            return str(exc)
        self.app.notify(f"modified {order.order_id}" + (f": {what}" if what else ""), timeout=3)
        return None

    def open_modify(self, order: Order) -> None:
        """The modify dialog for a working order (prices step by the tick with up/down)."""

        async def apply(qty: int | None, limit: Decimal | None, stop: Decimal | None) -> str | None:
            return await self.modify(order, quantity=qty, limit=limit, stop=stop)

        inst = self.app.instrument_or_none(order.symbol)
        self.app.push_screen(ModifyOrderScreen(order, apply, inst, lambda: self.state.quotes.get(order.symbol)))

    def move(self, order: Order, price: Decimal) -> Worker[Any]:
        """Move a working order to ``price`` (the DOM's drag): a modify of its limit or stop."""
        return self._run(self._move(order, price), "modify")

    async def _move(self, order: Order, price: Decimal) -> None:
        inst = self.app.instrument_or_none(order.symbol)
        otype = order.order_type
        if otype is OrderType.LIMIT:
            changes: dict[str, Decimal | None] = {"limit": price}
        elif otype is OrderType.STOP:
            changes = {"stop": price}
        elif otype is OrderType.STOP_LIMIT and order.stop_price is not None and order.limit_price is not None:
            # The limit keeps its distance from the stop.
            changes = {"stop": price, "limit": price + (order.limit_price - order.stop_price)}
        else:
            self.app.notify(f"{order.order_id}: a {otype.value.replace('_', ' ')} order has no price to move",
                            severity="error")  # fmt: skip
            return
        error = await self.modify(order, **changes, what=f"to {fmt.price(price, inst)}")  # type: ignore[arg-type]
        if error:
            self.app.notify(f"move {order.order_id} refused: {error}", severity="error", timeout=10)

    # ------------------------------------------------------------------ positions

    def flatten(self, account: str, symbol: str | None) -> Worker[Any]:
        return self._run(self._flatten(account, symbol), "flatten")

    async def _flatten(self, account: str, symbol: str | None) -> None:
        app = self.app
        name = app.account_name(account)
        what = f"{symbol} in {name}" if symbol else f"EVERYTHING in {name}"
        if app.confirm_on(account):
            ok = await app.push_screen_wait(
                ConfirmDialog(
                    "Flatten",
                    f"FLATTEN {what}?",
                    ["Cancels the working orders and closes the position" + ("" if symbol else "s") + " at market."],
                    yes="Flatten",
                    danger=True,
                    live=app.is_live(account),
                )
            )
            if not ok:
                return
        try:
            orders = await self.engine.flatten(account, symbol)
        except (EngineError, UnknownSymbol) as exc:
            app.notify(f"flatten failed: {exc}", severity="error", timeout=15)
            return
        app.notify(f"flatten {what}: {len(orders)} order{'s' if len(orders) != 1 else ''}", timeout=5)

    def position(self, account: str, symbol: str) -> Position | None:
        pos = self.state.positions.get((account, symbol))
        return pos if pos is not None and pos.quantity else None

    def reverse(self, account: str, symbol: str, source: OrderSource) -> Worker[Any]:
        """Turn a position around at market: one order for twice its size, through the checks."""
        return self._run(self._reverse(account, symbol, source), "orders")

    async def _reverse(self, account: str, symbol: str, source: OrderSource) -> None:
        pos = self.position(account, symbol)
        if pos is None:
            self.app.notify(f"reverse: no position in {symbol}", severity="error")
            return
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        request = OrderRequest(account=account, symbol=symbol, side=side, quantity=2 * abs(pos.quantity),
                               order_type=OrderType.MARKET, source=source)  # fmt: skip
        held = f"{'long' if pos.quantity > 0 else 'short'} {abs(pos.quantity)}"
        await self.send(request, headline=f"REVERSE {held} {symbol}: {self.describe(request)}")

    def protective_stops(self, account: str, symbol: str) -> list[Order]:
        """Working stop orders that close (part of) the position: what breakeven and trail move."""
        pos = self.position(account, symbol)
        if pos is None:
            return []
        exit_side = Side.SELL if pos.quantity > 0 else Side.BUY
        return [o for o in self.state.working_orders() if o.account == account and o.symbol == symbol
                and o.side is exit_side and o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)]  # fmt: skip

    def breakeven_price(self, pos: Position, inst: Instrument) -> Decimal:
        """The average price plus the round trip's fees, rounded away from the market's side to
        the tick, so a stop there closes the position without a loss after fees."""
        # Entry and exit each pay fee_per_side per contract; per unit of price that is 2 x fee / multiplier.
        offset = inst.fee_per_side * 2 / inst.point_value if inst.fee_per_side else Decimal(0)
        raw = pos.avg_price + offset if pos.quantity > 0 else pos.avg_price - offset
        ticks = raw / inst.tick_size
        ticks = ticks.to_integral_value(rounding="ROUND_CEILING" if pos.quantity > 0 else "ROUND_FLOOR")
        return ticks * inst.tick_size

    def breakeven(self, account: str, symbol: str, source: OrderSource) -> Worker[Any]:
        return self._run(self._stop_to(account, symbol, source, None), "orders")

    def trail(self, account: str, symbol: str, ticks: int, source: OrderSource) -> Worker[Any]:
        return self._run(self._stop_to(account, symbol, source, ticks), "orders")

    async def _stop_to(self, account: str, symbol: str, source: OrderSource, trail_ticks: int | None) -> None:
        """Breakeven (``trail_ticks`` None) or a trailing stop ``trail_ticks`` behind the market.

        A working protective stop is modified (never cancelled and re-sent); without one a new
        stop order for the whole position goes through the order path.
        """
        app = self.app
        verb = "breakeven" if trail_ticks is None else "trail"
        pos = self.position(account, symbol)
        inst = app.instrument_or_none(symbol)
        if pos is None or inst is None:
            app.notify(f"{verb}: no position in {symbol}", severity="error")
            return
        long = pos.quantity > 0
        exit_side = Side.SELL if long else Side.BUY
        if trail_ticks is None:
            price = self.breakeven_price(pos, inst)
            quote = self.state.quotes.get(symbol)
            market = None if quote is None else (quote.bid if long else quote.ask)
            if market is not None and (price >= market if long else price <= market):
                app.notify(f"breakeven: {symbol} at {fmt.price(market, inst)} has not moved past the breakeven "
                           f"{fmt.price(price, inst)} (average plus fees): a stop there would fill at once; "
                           "nothing sent", severity="error", timeout=10)  # fmt: skip
                return
        else:
            price = None
        stops = self.protective_stops(account, symbol)
        if trail_ticks is not None:
            request = OrderRequest(account=account, symbol=symbol, side=exit_side, quantity=abs(pos.quantity),
                                   order_type=OrderType.TRAILING_STOP, trail_amount=trail_ticks * inst.tick_size,
                                   source=source)  # fmt: skip
            if stops:
                # A trailing stop is its own order type: the old fixed stops are replaced by it
                # once it is accepted (cancelling them first would leave the position bare).
                order = await self.send(request, headline=f"TRAIL {trail_ticks} ticks: {self.describe(request)}")
                if order is not None and order.status is not OrderStatus.REJECTED:
                    for old in stops:
                        with contextlib.suppress(EngineError):
                            await self.engine.cancel(old.account, old.order_id)
                return
            await self.send(request, headline=f"TRAIL {trail_ticks} ticks: {self.describe(request)}")
            return
        assert price is not None
        if stops:
            for old in stops:
                what = f"stop to breakeven {fmt.price(price, inst)}"
                error = await self.modify(old, stop=price, limit=None, what=what)
                if error:
                    app.notify(f"breakeven refused: {error}", severity="error", timeout=10)
            return
        request = OrderRequest(account=account, symbol=symbol, side=exit_side, quantity=abs(pos.quantity),
                               order_type=OrderType.STOP, stop_price=price, source=source)  # fmt: skip
        await self.send(request, headline=f"BREAKEVEN stop: {self.describe(request)}")

    # ------------------------------------------------------------------ account-wide

    def kill_switch(self) -> Worker[Any]:
        return self._run(self._kill_switch(), "kill", exclusive=True)

    async def _kill_switch(self) -> None:
        app = self.app
        state = self.state
        open_pos = sum(1 for p in state.positions.values() if p.quantity)
        working = len(state.working_orders())
        refusing = self.locked_out_brokers()
        ok = await app.push_screen_wait(
            ConfirmDialog(
                "KILL SWITCH",
                "Flatten and cancel EVERYTHING in EVERY account?",
                [
                    f"{open_pos} open position{'s close' if open_pos != 1 else ' closes'} at market; "
                    f"{working} working order{'s are' if working != 1 else ' is'} cancelled.",
                    f"Accounts: {', '.join(app.account_name(a) for a in state.accounts) or 'none'}",
                    *refusing,
                ],
                yes="KILL",
                danger=True,
                live=state.is_live,
            )
        )
        if not ok:
            app.notify("kill switch not used", timeout=3)
            return
        try:
            orders = await self.engine.flatten(None)
        except EngineError as exc:
            app.notify(f"KILL SWITCH FAILED: {exc}", severity="error", timeout=30)
            return
        app.notify(f"kill switch: {len(orders)} flatten order{'s' if len(orders) != 1 else ''} sent",
                   severity="warning", timeout=10)  # fmt: skip
        for line in self.locked_out_brokers():
            app.notify(f"KILL SWITCH NOT ACCEPTED: {line}", severity="error", timeout=30)

    def locked_out_brokers(self) -> list[str]:
        """A line for each broker that refuses every request right now (a vendor lockout)."""
        now = self.app.wall()
        lines = []
        for c in sorted(self.state.connections.values(), key=lambda c: c.broker):
            if c.blocked_until is not None and c.blocked_until > now:
                until = c.blocked_until.astimezone(CT).strftime("%H:%M")
                lines.append(
                    f"{c.broker} will not accept it yet: locked out by the broker until {until} CT; "
                    "flatten those accounts at the broker itself if it cannot wait."
                )
        return lines

    def lock(self, account: str, reason: str) -> Worker[Any]:
        return self._run(self._lock(account, reason), "lock")

    async def _lock(self, account: str, reason: str) -> None:
        app = self.app
        ok = await app.push_screen_wait(
            ConfirmDialog(
                "Lock account",
                f"LOCK {app.account_name(account)} for the rest of the session?",
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
            app.notify(f"lock failed: {exc}", severity="error")


__all__ = ["OrderError", "OrderPath", "bracket_lines"]
