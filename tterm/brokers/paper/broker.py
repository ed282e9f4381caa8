"""The paper broker: tterm's embedded default. No account, no network, a plausible market.

It simulates a broker end to end: accounts from the settings, a market (a seeded random walk, or
a replay of a CSV), strict order validation, the matching engine in :mod:`.matching`, fees,
balances and positions in :mod:`.ledger`, and persistence in :mod:`.store` so a restart resumes
exactly. Everything it does goes out on the Broker event stream like any real adapter's.

Two ways to run the market:

- free-running (default): ``connect()`` starts a task that updates every walked symbol
  ``quote_hz`` times a second (a replay advances about ``quote_hz`` rows per replayed symbol);
- ``scripted=True``: nothing moves on its own. Tests drive it with :meth:`PaperBroker.push_quote`
  (set the market of one symbol) or :meth:`PaperBroker.step` (advance the walk or the replay
  once). The matching engine runs on every quote either way.

The simulated market runs around the clock; the trade date (for DAY expiry and today's fills)
comes from the CME clock when one is given, else from the instrument master's date.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tterm.brokers.paper.feed import DEFAULT_SYMBOLS, SimulatedFeed, WalkState
from tterm.brokers.paper.ledger import DEFAULT_ACCOUNTS, AccountState, Ledger, Lot, PaperAccountSpec, PositionState
from tterm.brokers.paper.matching import (
    Effect,
    Execution,
    MatchingEngine,
    ModifyRejected,
    Working,
    stop_side_error,
    tick_error,
    touch,
)
from tterm.brokers.paper.replay import ReplayFeed
from tterm.brokers.paper.store import AccountRow, PaperStore, PositionRow, StoredState
from tterm.core.broker import Broker, BrokerError, Capabilities, UnknownOrder
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    AssetClass,
    ConnectionState,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    utcnow,
)

if TYPE_CHECKING:
    from tterm.core.clock import CmeClock

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_SYMBOLS",
    "ModifyRejected",
    "PaperAccountSpec",
    "PaperBroker",
]

#: How often (seconds) balances are re-sent and the market saved while nothing fills.
SNAPSHOT_INTERVAL = 1.0


class PaperBroker(Broker):
    """A simulated broker holding several paper accounts (see the module docstring)."""

    capabilities = Capabilities(
        brackets=True,
        oco=True,
        multi_leg=False,
        futures=True,
        equities=True,
        options=True,
        client_order_id_lookup=True,
    )

    def __init__(
        self,
        name: str = "paper",
        *,
        accounts: Sequence[PaperAccountSpec] = DEFAULT_ACCOUNTS,
        instruments: InstrumentMaster,
        clock: CmeClock | None = None,
        seed: int | None = None,
        quote_hz: float = 4.0,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        store_path: Path | None = None,
        scripted: bool = False,
        replay: Path | None = None,
    ) -> None:
        super().__init__(name, is_live=False)
        if not accounts:
            raise ValueError("the paper broker needs at least one account")
        if not quote_hz > 0:
            raise ValueError(f"quote_hz must be positive, got {quote_hz}")
        self._instruments = instruments
        self._clock = clock
        self._quote_hz = float(quote_hz)
        self._scripted = scripted
        self._ledger = Ledger(name, list(accounts), now=self._now)
        self._engine = MatchingEngine(sink=self._on_effect, new_id=self._new_id, capacity=self._capacity, now=self._now)
        self._feed = SimulatedFeed(seed, now=self._now)
        self._replay = ReplayFeed(replay, instruments) if replay is not None else None
        self._base: list[Instrument] = []
        for sym in symbols:
            try:
                self._base.append(instruments.resolve(sym))
            except UnknownSymbol as exc:
                raise ValueError(f"paper broker symbols: {exc}") from None
        self._subscribed: set[str] = set()
        self._orders: dict[str, Order] = {}
        self._by_coid: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._counter = 0
        self._saved_marks: dict[str, WalkState] = {}
        self._trade_date = self._current_trade_date()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._replay_done_noticed = False
        self._last_periodic = time.monotonic()
        # What changed since the last save.
        self._dirty_positions: set[tuple[str, str]] = set()
        self._new_fills: list[Fill] = []
        self._dirty_orders: set[str] = set()
        self._store = PaperStore(store_path) if store_path is not None else None
        if self._store is not None:
            self._load()

    # ------------------------------------------------------------------ time

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else utcnow()

    def _current_trade_date(self) -> date:
        if self._clock is not None:
            return self._clock.trade_date(self._clock.now())
        return self._instruments.today()

    def _new_id(self, kind: str) -> str:
        self._counter += 1
        prefix = {"order": "PO", "fill": "PF", "oco": "OCO"}.get(kind, kind.upper())
        return f"{prefix}{self._counter:06d}"

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Open the simulated market; with ``scripted=False`` start the quote task."""
        if self._closed:
            raise BrokerError("this paper broker was closed; create a new one")
        if self._task is not None:
            return
        self._roll_if_new_day()
        for inst in self._universe():
            self._ensure_market(inst)
        self.touch()
        if self._replay is not None:
            detail = f"replaying {self._replay.path.name}"
        else:
            detail = "scripted market" if self._scripted else f"simulated market, {self._quote_hz:g} quotes/s"
        self.set_state(ConnectionState.CONNECTED, detail)
        for acct in self._ledger.accounts:
            self.emit(self._snapshot(acct))
        for pos in self._ledger.positions.values():
            if pos.quantity:
                self.emit(self._ledger.position_model(pos, self._mark(pos.symbol)))
        if not self._scripted:
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-market")
        self._flush()

    async def close(self) -> None:
        """Stop the market, save everything, and end the event stream."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._flush(marks=True)
        if self._store is not None:
            self._store.close()
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _run(self) -> None:
        interval = 1.0 / self._quote_hz
        try:
            while True:
                await asyncio.sleep(interval)
                if self._replay is not None:
                    for _ in range(max(1, len(self._replay.symbols))):
                        if not self._replay_step():
                            return
                else:
                    for sym in self._feed.symbols:
                        self._process(self._feed.step(sym))
                self._flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A fault in the simulation must be seen, not swallowed: report it and go down.
            self.emit(Notice("error", f"paper market stopped: {type(exc).__name__}: {exc}", source=self.name))
            self.set_state(ConnectionState.DOWN, f"market task failed: {exc}")

    # ------------------------------------------------------------------ scripted market

    async def push_quote(self, quote: Quote) -> None:
        """Set the market of ``quote.symbol`` (continuous symbols are resolved) and match on it.

        Raises ValueError for an unknown symbol, a price off the tick grid, or a crossed quote.
        """
        self._check_open()
        try:
            inst = self._instruments.resolve(quote.symbol)
        except UnknownSymbol as exc:
            raise ValueError(str(exc)) from None
        for label in ("bid", "ask", "last", "prev_close"):
            price = getattr(quote, label)
            if price is not None:
                err = tick_error(inst, price, label)
                if err:
                    raise ValueError(f"push_quote: {err}")
        if quote.bid is not None and quote.ask is not None and quote.bid > quote.ask:
            raise ValueError(f"push_quote: {inst.symbol} bid {quote.bid} is above ask {quote.ask}")
        if quote.symbol != inst.symbol:
            quote = replace(quote, symbol=inst.symbol)
        if self._replay is None:
            self._ensure_walk(inst)
            self._feed.anchor(quote)
        self._process(quote)
        self._flush()

    async def step(self) -> list[Quote]:
        """Advance the market once: every walked symbol moves one update (or one replay row)."""
        self._check_open()
        quotes: list[Quote] = []
        if self._replay is not None:
            q = self._replay.next()
            if q is None:
                self._notice_replay_done()
            else:
                quotes.append(q)
                self._process(q)
        else:
            for inst in self._universe():
                self._ensure_walk(inst)
            for sym in self._feed.symbols:
                q = self._feed.step(sym)
                quotes.append(q)
                self._process(q)
        self._flush()
        return quotes

    def _replay_step(self) -> bool:
        assert self._replay is not None
        q = self._replay.next()
        if q is None:
            self._notice_replay_done()
            return False
        self._process(q)
        return True

    def _notice_replay_done(self) -> None:
        if not self._replay_done_noticed and self._replay is not None:
            self._replay_done_noticed = True
            self.emit(
                Notice(
                    "info",
                    f"replay of {self._replay.path.name} finished; the market stays at its last quote",
                    source=self.name,
                )
            )

    def _universe(self) -> list[Instrument]:
        """Symbols the market keeps quoting: the base set, subscriptions, orders and positions."""
        seen: dict[str, Instrument] = {i.symbol: i for i in self._base}
        for sym in self._subscribed:
            if sym not in seen:
                seen[sym] = self._instruments.resolve(sym)
        for w in self._engine.working.values():
            seen.setdefault(w.order.symbol, w.instrument)
        for pos in self._ledger.positions.values():
            if pos.quantity:
                seen.setdefault(pos.symbol, pos.instrument)
        return list(seen.values())

    def _ensure_walk(self, inst: Instrument) -> None:
        if self._feed.has(inst.symbol):
            return
        leader = self._leader(inst)
        if leader is not None:
            self._ensure_walk(leader)
        self._feed.add(inst, self._saved_marks.get(inst.symbol), leader=leader)

    def _leader(self, inst: Instrument) -> Instrument | None:
        """The mini contract a micro future tracks (ESZ6 for MESZ6), if there is one."""
        if inst.asset_class is not AssetClass.FUTURE or not inst.root:
            return None
        try:
            spec = self._instruments.spec(inst.root)
            parsed = self._instruments.parse_contract(inst.symbol, on=inst.expiry)
            if not spec.mini or parsed is None:
                return None
            return self._instruments.contract(spec.mini, parsed[1], parsed[2])
        except ModelError:
            return None

    def _ensure_market(self, inst: Instrument) -> None:
        """Free-running walk: make sure ``inst`` is walked and has a current quote."""
        if self._replay is not None:
            return
        self._ensure_walk(inst)
        if not self._scripted and self._engine.quote(inst.symbol) is None:
            q = self._feed.current(inst.symbol)
            if q is not None:
                self._process(q)

    def _process(self, quote: Quote) -> None:
        self._roll_if_new_day()
        self.touch()
        if quote.symbol in self._subscribed:
            self.emit(quote)
        self._engine.on_quote(quote)
        now = time.monotonic()
        if now - self._last_periodic >= SNAPSHOT_INTERVAL:
            self._last_periodic = now
            self._periodic()

    def _periodic(self) -> None:
        """Re-send balances of accounts holding positions, and save the market."""
        held = {p.account for p in self._ledger.positions.values() if p.quantity}
        for acct in held:
            self.emit(self._snapshot(acct))
        self._flush(marks=True)

    # ------------------------------------------------------------------ state queries

    async def accounts(self) -> list[Account]:
        return self._ledger.account_models()

    async def snapshots(self) -> list[AccountSnapshot]:
        return [self._snapshot(a) for a in self._ledger.accounts]

    async def positions(self, account: str | None = None) -> list[Position]:
        return [
            self._ledger.position_model(p, self._mark(p.symbol))
            for p in self._ledger.positions.values()
            if p.quantity and (account is None or p.account == account)
        ]

    async def orders(self, account: str | None = None) -> list[Order]:
        return [o for o in self._orders.values() if account is None or o.account == account]

    async def fills(self, account: str | None = None) -> list[Fill]:
        return [f for f in self._fills if account is None or f.account == account]

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        oid = self._by_coid.get(client_order_id)
        if oid is None:
            return None
        order = self._orders[oid]
        return order if order.account == account else None

    # ------------------------------------------------------------------ market data

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        insts = self._resolve_all(symbols)
        for inst in insts:
            self._subscribed.add(inst.symbol)
            self._ensure_market(inst)
            q = self._engine.quote(inst.symbol)
            if q is not None:
                self.emit(q)

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        for inst in self._resolve_all(symbols):
            self._subscribed.discard(inst.symbol)

    def _resolve_all(self, symbols: Iterable[str]) -> list[Instrument]:
        if isinstance(symbols, str):
            symbols = [symbols]
        out = []
        for sym in symbols:
            try:
                out.append(self._instruments.resolve(sym))
            except UnknownSymbol as exc:
                raise BrokerError(str(exc)) from None
        return out

    # ------------------------------------------------------------------ orders

    async def place(self, request: OrderRequest) -> Order:
        """Validate and accept ``request``; a reject comes back as a REJECTED order, never raised."""
        self._check_open()
        self._roll_if_new_day()
        existing = self._by_coid.get(request.client_order_id)
        if existing is not None:
            return self._orders[existing]
        inst, reason = self._validate(request)
        now = self._now()
        order = Order.from_request(
            request,
            order_id=self._new_id("order"),
            status=OrderStatus.PENDING,
            broker=self.name,
            symbol=inst.symbol if inst is not None else None,
            ts=now,
        )
        self._by_coid[order.client_order_id] = order.order_id
        self._record(order)
        self.touch()
        if reason or inst is None:
            self._record(order.evolve(status=OrderStatus.REJECTED, reject_reason=reason, updated_at=now))
        else:
            self._engine.submit(
                order,
                inst,
                trade_date=self._trade_date,
                bracket=request.bracket,
                reduce_only=request.reduce_only,
            )
        self._flush()
        return self._orders[order.order_id]

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order; raises UnknownOrder (not working) or ModifyRejected (invalid)."""
        self._check_open()
        self._roll_if_new_day()
        order = self._open_order(account, order_id, "modified")
        w = self._engine.working[order_id]
        if self._ledger.accounts[account].spec.kind is AccountKind.CASH and isinstance(quantity, int | None):
            # Re-check the whole remaining order at its new terms, excluding its old reservation.
            new_qty = quantity if quantity is not None else order.quantity
            reason = self._cash_check(
                account,
                w.instrument,
                order.side,
                new_qty - order.filled_quantity,
                limit_price if limit_price is not None else order.limit_price,
                stop_price if stop_price is not None else order.stop_price,
                order.order_type,
                exclude=order_id,
            )
            if reason and new_qty > order.filled_quantity:
                raise ModifyRejected(f"order {order_id}: {reason}")
        self.touch()
        self._engine.modify(order_id, quantity=quantity, limit_price=limit_price, stop_price=stop_price)
        self._flush()
        return self._orders[order_id]

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order; raises UnknownOrder if it is not working in ``account``."""
        self._check_open()
        self._roll_if_new_day()
        self._open_order(account, order_id, "cancelled")
        self.touch()
        self._engine.cancel(order_id)
        self._flush()
        return self._orders[order_id]

    def _open_order(self, account: str, order_id: str, verb: str) -> Order:
        order = self._orders.get(order_id)
        if order is None or order.account != account:
            raise UnknownOrder(f"{self.name} has no order {order_id} in account {account}")
        if not order.is_open or order_id not in self._engine.working:
            raise UnknownOrder(f"order {order_id} is {order.status.value}; it can no longer be {verb}")
        return order

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"paper broker {self.name} is closed")

    # ------------------------------------------------------------------ validation

    def _validate(self, r: OrderRequest) -> tuple[Instrument | None, str]:
        """The instrument and "" for a valid request; otherwise the plain reason it is refused."""
        acct = self._ledger.accounts.get(r.account)
        if acct is None:
            known = ", ".join(self._ledger.accounts)
            return None, f"unknown account {r.account!r} (paper accounts: {known})"
        if r.legs:
            return None, "multi-leg orders are not supported by the paper broker; send each leg on its own"
        if isinstance(r.quantity, bool) or not isinstance(r.quantity, int) or r.quantity <= 0:
            return None, f"quantity must be a positive whole number, got {r.quantity!r}"
        try:
            inst = self._instruments.resolve(r.symbol)
        except UnknownSymbol as exc:
            return None, str(exc)
        if inst.expiry is not None and inst.expiry < self._trade_date:
            return inst, f"{inst.symbol} expired on {inst.expiry}; trade the current contract"
        if not acct.spec.trades(inst.asset_class):
            if acct.spec.kind is AccountKind.CASH:
                return inst, (
                    f"{acct.id} is a cash account: it trades equities and options, not "
                    f"{inst.asset_class.value}s ({inst.symbol})"
                )
            return (
                inst,
                f"{acct.id} is a futures account: it trades futures only, not {inst.symbol} ({inst.asset_class.value})",
            )
        t = r.order_type
        if t.needs_limit and r.limit_price is None:
            return inst, f"a {t.value.replace('_', '-')} order needs a limit price"
        if t.needs_stop and r.stop_price is None:
            return inst, f"a {t.value.replace('_', '-')} order needs a stop price"
        if not t.needs_limit and r.limit_price is not None:
            return (
                inst,
                f"a {t.value} order takes no limit price (got {r.limit_price}); use a limit or stop-limit order",
            )
        if not t.needs_stop and r.stop_price is not None:
            return inst, f"a {t.value} order takes no stop price (got {r.stop_price}); use a stop or stop-limit order"
        for label, price in (("limit price", r.limit_price), ("stop price", r.stop_price)):
            if price is not None:
                err = tick_error(inst, price, label)
                if err:
                    return inst, err
        self._ensure_market(inst)
        quote = self._engine.quote(inst.symbol)
        if t is OrderType.MARKET and (quote is None or touch(quote, r.side) is None):
            return inst, f"no market in {inst.symbol} yet: a market order needs a quote to fill against"
        if t.needs_stop:
            assert r.stop_price is not None
            err = stop_side_error(r.side, r.stop_price, quote)
            if err:
                return inst, err
        if r.bracket is not None:
            err = self._bracket_error(r, inst, quote)
            if err:
                return inst, err
        net = self._ledger.net(r.account, inst.symbol)
        if r.reduce_only:
            if net == 0 or (net > 0) == (r.side is Side.BUY):
                return inst, (
                    f"reduce-only {r.side.value} would open or add to a position ({inst.symbol} position is {net:+d})"
                )
            if r.quantity > abs(net):
                return (
                    inst,
                    f"reduce-only {r.side.value} of {r.quantity} is larger than the {abs(net)} held in {inst.symbol}",
                )
        if acct.spec.kind is AccountKind.CASH:
            reason = self._cash_check(r.account, inst, r.side, r.quantity, r.limit_price, r.stop_price, t, quote=quote)
            if reason:
                return inst, reason
        return inst, ""

    def _bracket_error(self, r: OrderRequest, inst: Instrument, quote: Quote | None) -> str:
        b = r.bracket
        assert b is not None
        for label, price in (("take-profit", b.take_profit_price), ("stop-loss", b.stop_loss_price)):
            if price is not None:
                err = tick_error(inst, price, f"bracket {label}")
                if err:
                    return err
        if r.order_type.needs_limit:
            ref, what = r.limit_price, "entry limit"
        elif r.order_type is OrderType.STOP:
            ref, what = r.stop_price, "entry stop"
        else:
            ref, what = (touch(quote, r.side) if quote else None), "market"
        if ref is None:
            return ""
        above, below = ("above", "below") if r.side is Side.BUY else ("below", "above")
        if b.take_profit_price is not None and (b.take_profit_price - ref) * r.side.sign <= 0:
            return f"bracket take-profit {b.take_profit_price} must be {above} the {what} {ref} for a {r.side.value}"
        if b.stop_loss_price is not None and (ref - b.stop_loss_price) * r.side.sign <= 0:
            return f"bracket stop-loss {b.stop_loss_price} must be {below} the {what} {ref} for a {r.side.value}"
        return ""

    def _ref_price(
        self,
        side: Side,
        order_type: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        quote: Quote | None,
    ) -> Decimal | None:
        """The price a cash check assumes an order will pay."""
        if order_type.needs_limit:
            return limit_price
        market = touch(quote, side) if quote is not None else None
        if order_type is OrderType.STOP and stop_price is not None:
            return max(stop_price, market) if market is not None else stop_price
        return market

    def _reserved(self, account: str, *, exclude: str | None = None) -> Decimal:
        """Cash set aside for the account's working buy orders."""
        total = ZERO
        for w in self._engine.working.values():
            o = w.order
            if o.account != account or o.side is not Side.BUY or o.order_id == exclude:
                continue
            price = self._ref_price(o.side, o.order_type, o.limit_price, o.stop_price, self._engine.quote(o.symbol))
            if price is not None:
                total += (price * w.instrument.point_value + w.instrument.fee_per_side) * o.remaining
        return total

    def _committed_sells(self, account: str, symbol: str, *, exclude: str | None = None) -> int:
        """Shares already offered by working sell orders (an OCO pair counts once)."""
        total = 0
        groups: set[str] = set()
        skipped = self._engine.working.get(exclude or "")
        if skipped is not None and skipped.order.oco_group:
            groups.add(skipped.order.oco_group)  # an OCO sibling offers the same shares as the excluded order
        for w in self._engine.working.values():
            o = w.order
            if o.account != account or o.symbol != symbol or o.side is not Side.SELL or o.order_id == exclude:
                continue
            if o.oco_group:
                if o.oco_group in groups:
                    continue
                groups.add(o.oco_group)
            total += o.remaining
        return total

    def _cash_check(
        self,
        account: str,
        inst: Instrument,
        side: Side,
        quantity: int,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        order_type: OrderType,
        *,
        quote: Quote | None = None,
        exclude: str | None = None,
    ) -> str:
        """Why a cash account cannot take this order ("" if it can): no shorting, no overspending."""
        acct = self._ledger.accounts[account]
        if acct.spec.kind is not AccountKind.CASH:
            return ""
        quote = quote or self._engine.quote(inst.symbol)
        if side is Side.SELL:
            held = max(self._ledger.net(account, inst.symbol), 0)
            offered = self._committed_sells(account, inst.symbol, exclude=exclude)
            if quantity > held - offered:
                extra = f", {offered} already offered in working orders" if offered else ""
                return (
                    f"a cash account cannot sell short: {acct.id} holds {held} {inst.symbol}{extra}; "
                    f"cannot sell {quantity}"
                )
            return ""
        price = self._ref_price(side, order_type, limit_price, stop_price, quote)
        if price is None:
            return ""
        need = (price * inst.point_value + inst.fee_per_side) * quantity
        available = acct.balance - self._ledger.cost_basis(account) - self._reserved(account, exclude=exclude)
        if need > available:
            return (
                f"not enough cash: buying {quantity} {inst.symbol} at about {price} needs ${need:,.2f}; "
                f"{acct.id} has ${max(available, ZERO):,.2f} available"
            )
        return ""

    def _capacity(self, w: Working, qty: int, price: Decimal) -> tuple[int, str]:
        """The most of a fill the account can take at ``price`` (reduce-only, cash rules)."""
        o = w.order
        net = self._ledger.net(o.account, o.symbol)
        allowed = qty
        reason = ""
        if w.reduce_only:
            closable = abs(net) if net != 0 and (net > 0) != (o.side is Side.BUY) else 0
            if closable < allowed:
                allowed = closable
                reason = (
                    f"reduce-only: {o.symbol} position is {net:+d}; only {closable} could be closed, "
                    "the rest is cancelled"
                )
        acct = self._ledger.accounts[o.account]
        if acct.spec.kind is AccountKind.CASH:
            if o.side is Side.SELL:
                held = max(net, 0)
                if held < allowed:
                    allowed = held
                    reason = (
                        f"a cash account cannot sell short: {acct.id} holds {held} {o.symbol}; the rest is cancelled"
                    )
            else:
                inst = w.instrument
                cash = acct.balance - self._ledger.cost_basis(o.account)
                unit = price * inst.point_value + inst.fee_per_side
                affordable = int((cash / unit).to_integral_value(rounding=ROUND_FLOOR)) if unit > 0 else allowed
                if affordable < allowed:
                    allowed = max(affordable, 0)
                    reason = (
                        f"not enough cash: ${max(cash, ZERO):,.2f} buys {allowed} {o.symbol} at {price}; "
                        "the rest is cancelled"
                    )
        return allowed, reason

    # ------------------------------------------------------------------ effects -> events

    def _record(self, order: Order) -> None:
        self._orders[order.order_id] = order
        self._dirty_orders.add(order.order_id)
        self.emit(order)

    def _on_effect(self, effect: Effect) -> None:
        if isinstance(effect, Order):
            self._by_coid.setdefault(effect.client_order_id, effect.order_id)
            self._record(effect)
            return
        self._on_execution(effect)

    def _on_execution(self, ex: Execution) -> None:
        o = ex.order
        inst = ex.instrument
        fee = inst.fee_per_side * ex.quantity
        fill = Fill(
            fill_id=self._new_id("fill"),
            order_id=o.order_id,
            client_order_id=o.client_order_id,
            account=o.account,
            symbol=o.symbol,
            side=o.side,
            quantity=ex.quantity,
            price=ex.price,
            fee=fee,
            broker=self.name,
            ts=self._now(),
        )
        pos = self._ledger.apply_fill(o.account, inst, o.side, ex.quantity, ex.price, fee)
        self._fills.append(fill)
        self._new_fills.append(fill)
        self._dirty_positions.add((pos.account, pos.symbol))
        self.emit(fill)
        self._record(o)
        self.emit(self._ledger.position_model(pos, self._mark(pos.symbol)))
        self.emit(self._snapshot(o.account))

    def _mark(self, symbol: str) -> Decimal | None:
        q = self._engine.quote(symbol)
        return q.mark if q is not None else None

    def _snapshot(self, account: str) -> AccountSnapshot:
        reserved = self._reserved(account) if self._ledger.accounts[account].spec.kind is AccountKind.CASH else ZERO
        return self._ledger.snapshot(account, self._mark, reserved)

    # ------------------------------------------------------------------ trade date

    def _roll_if_new_day(self) -> None:
        today = self._current_trade_date()
        if today <= self._trade_date:
            return
        self._trade_date = today
        self._engine.expire(today)
        # The expired orders are saved as finished before the day is cleared, with the id counter
        # (the day's ids leave the file next).
        self._flush(counter=True)
        self._ledger.roll_day()
        self._fills = []
        self._orders = {oid: o for oid, o in self._orders.items() if o.is_open}
        self._by_coid = {o.client_order_id: oid for oid, o in self._orders.items()}
        if self._store is not None:
            self._store.new_day()
            self._dirty_positions.update(self._ledger.positions)
        self._flush()
        for acct in self._ledger.accounts:
            self.emit(self._snapshot(acct))

    # ------------------------------------------------------------------ persistence

    def _flush(self, *, marks: bool = False, counter: bool = False) -> None:
        """Save everything that changed since the last save, in one transaction.

        The id counter is saved with the market (``marks``: about once a second, and at close) and
        at the day's turn, not with every operation: every id handed out is in a saved order or
        fill of the day, and a restart continues after the highest of them (see ``_load``).
        """
        dirty = self._dirty_orders | self._engine.dirty
        self._dirty_orders = set()
        self._engine.dirty = set()
        groups_dirty = self._engine.groups_dirty
        self._engine.groups_dirty = False
        positions = self._dirty_positions
        self._dirty_positions = set()
        fills, self._new_fills = self._new_fills, []
        if self._store is None:
            return
        if not (dirty or groups_dirty or positions or fills or marks or counter):
            return
        # In creation order, so a restart lists today's orders as they were placed. Ids carry a
        # zero-padded counter, so (length, id) sorts them by creation without scanning every order
        # of the day on each save.
        orders = [
            (self._orders[oid], self._engine.working.get(oid))
            for oid in sorted(dirty, key=lambda i: (len(i), i))
            if oid in self._orders
        ]
        pos_rows = []
        for key in positions:
            p = self._ledger.positions.get(key)
            if p is not None:
                lots = tuple((lot.quantity, lot.price) for lot in p.lots)
                pos_rows.append(PositionRow(p.account, p.instrument, p.quantity, lots, p.realized, p.fees))
        mark_rows = []
        if marks:
            for sym, q in self._engine.quotes.items():
                if q.bid is not None and q.ask is not None:
                    mark_rows.append(WalkState(sym, q.bid, q.ask, q.last, q.prev_close, q.volume))
        self._store.write(
            meta=(
                {"counter": str(self._counter), "trade_date": self._trade_date.isoformat()}
                if marks or counter
                else {"trade_date": self._trade_date.isoformat()}
            ),
            accounts=[_account_row(a) for a in self._ledger.accounts.values()],
            positions=pos_rows,
            orders=orders,
            groups=list(self._engine.groups.values()) if groups_dirty else None,
            fills=fills,
            marks=mark_rows,
        )

    def _load(self) -> None:
        assert self._store is not None
        st = self._store.load()
        # The saved counter can lag the last operations (it is saved about once a second): the
        # ids in the file say how far it really went.
        self._counter = max(int(st.meta.get("counter", "0")), _highest_id(st))
        if "trade_date" in st.meta:
            self._trade_date = date.fromisoformat(st.meta["trade_date"])
        for row in st.accounts:
            acct = self._ledger.accounts.get(row.id)
            if acct is None:
                continue  # an account no longer in the settings keeps its saved row untouched
            acct.balance = row.balance
            acct.start_of_day_balance = row.start_of_day
            acct.day_realized = row.day_realized
            acct.fees_today = row.fees_today
        for p in st.positions:
            if p.account in self._ledger.accounts:
                self._ledger.positions[(p.account, p.instrument.symbol)] = PositionState(
                    p.account, p.instrument, p.quantity, [Lot(q, px) for q, px in p.lots], p.realized, p.fees
                )
        for o in st.orders:
            self._orders[o.order_id] = o
            self._by_coid[o.client_order_id] = o.order_id
        self._engine.restore(st.working, st.groups)
        self._fills = list(st.fills)
        for m in st.marks:
            self._saved_marks[m.symbol] = m
            self._engine.set_quote(
                Quote(
                    symbol=m.symbol,
                    bid=m.bid,
                    ask=m.ask,
                    last=m.last,
                    prev_close=m.prev_close,
                    volume=m.volume,
                    ts=self._now(),
                )
            )

    # ------------------------------------------------------------------ introspection

    @property
    def trade_date(self) -> date:
        return self._trade_date

    def quote(self, symbol: str) -> Quote | None:
        """The current market in ``symbol`` (a contract or continuous symbol), if there is one."""
        try:
            inst = self._instruments.resolve(symbol)
        except (UnknownSymbol, ModelError):
            return None
        return self._engine.quote(inst.symbol)


def _id_number(value: str | None) -> int:
    """The counter inside one of our ids (``PO000123`` -> 123); 0 for anything else."""
    if not value:
        return 0
    digits = value.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return int(digits) if digits.isdigit() and digits != value else 0


def _highest_id(st: StoredState) -> int:
    """The highest counter value any saved order, fill or bracket group carries."""
    numbers = [0]
    for o in st.orders:
        numbers += (_id_number(o.order_id), _id_number(o.parent_id), _id_number(o.oco_group))
    for f in st.fills:
        numbers += (_id_number(f.fill_id), _id_number(f.order_id))
    for g in st.groups:
        numbers += (_id_number(g.group_id), _id_number(g.entry_id), _id_number(g.tp_id), _id_number(g.sl_id))
    return max(numbers)


def _account_row(a: AccountState) -> AccountRow:
    return AccountRow(a.id, a.balance, a.start_of_day_balance, a.day_realized, a.fees_today)
