"""The paper broker: tterm's embedded default. No account, no network, a plausible market.

It simulates a broker end to end: accounts from the settings, a market with a ten-level book per
symbol (a seeded random walk, or a replay of a CSV; see :mod:`.market`), options priced from
their underlying (:mod:`.options`), strict order validation (:mod:`.checks`), the matching engine
(:mod:`.matching`: single orders, trailing stops, multi-leg combos, brackets, OCO and OTOCO),
fees, balances and positions in :mod:`.ledger`, bars built from its own trades on a replayable
history (:mod:`.bars`), and persistence in :mod:`.store` so a restart resumes exactly. Everything
it does goes out on the Broker event stream like any real adapter's.

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
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tterm.brokers.paper.bookkeeping import Bookkeeping
from tterm.brokers.paper.cash import CashRules
from tterm.brokers.paper.checks import OrderChecks
from tterm.brokers.paper.feed import DEFAULT_SYMBOLS
from tterm.brokers.paper.groups import exit_role
from tterm.brokers.paper.ledger import DEFAULT_ACCOUNTS, Ledger, PaperAccountSpec
from tterm.brokers.paper.market import PaperMarket
from tterm.brokers.paper.matching import MatchingEngine, ModifyRejected, Working, tick_error
from tterm.brokers.paper.persist import Persistence
from tterm.brokers.paper.replay import ReplayFeed
from tterm.brokers.paper.store import PaperStore
from tterm.core.broker import ALL_ORDER_TYPES, ALL_TIMEFRAMES, Broker, BrokerError, Capabilities, UnknownOrder
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountKind,
    AccountSnapshot,
    Bar,
    ConnectionState,
    Fill,
    GroupKind,
    Instrument,
    ModelError,
    Notice,
    OptionChain,
    Order,
    OrderGroup,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    Timeframe,
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


class PaperBroker(Bookkeeping, Persistence, Broker):
    """A simulated broker holding several paper accounts (see the module docstring)."""

    capabilities = Capabilities(
        brackets=True,
        oco=True,
        otoco=True,
        multi_leg=True,
        futures=True,
        equities=True,
        options=True,
        client_order_id_lookup=True,
        order_types=ALL_ORDER_TYPES,
        bars=True,
        timeframes=ALL_TIMEFRAMES,
        depth=True,
        trades=True,
        option_chain=True,
        search=True,
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
        self._base: list[Instrument] = []
        for sym in symbols:
            try:
                self._base.append(instruments.resolve(sym))
            except UnknownSymbol as exc:
                raise ValueError(f"paper broker symbols: {exc}") from None
        self._orders: dict[str, Order] = {}
        self._by_coid: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._counter = 0
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
        self._market = PaperMarket(
            name,
            instruments=instruments,
            seed=seed,
            quote_hz=self._quote_hz,
            now=self._now,
            today=lambda: self._trade_date,
            replay=ReplayFeed(replay, instruments) if replay is not None else None,
            scripted=scripted,
            store=self._store,
            emit=self.emit,
            on_quote=self._on_quote,
            current=self._engine.quote,
            learned=self._learn,
        )
        self._cash = CashRules(self._ledger, self._engine)
        self._checks = OrderChecks(
            ledger=self._ledger,
            cash=self._cash,
            engine=self._engine,
            instruments=instruments,
            ensure_market=self._market.ensure,
            trade_date=lambda: self._trade_date,
            now=self._now,
        )
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
            self._market.ensure(inst)
        self.touch()
        replay = self._market.replay
        if replay is not None:
            detail = f"replaying {replay.path.name}"
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
        self._flush(marks=True, partial_bars=True)
        if self._store is not None:
            self._store.close()
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _run(self) -> None:
        interval = 1.0 / self._quote_hz
        replay = self._market.replay
        try:
            while True:
                await asyncio.sleep(interval)
                self._roll_if_new_day()
                if replay is not None:
                    for _ in range(max(1, len(replay.symbols))):
                        if self._market.replay_step() is None:
                            self._notice_replay_done()
                            return
                else:
                    self._market.step()
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

        Raises ValueError for an unknown symbol, a price off the tick grid, a crossed quote, or a
        last outside the bid and ask.
        """
        self._check_open()
        try:
            inst = self._instruments.resolve(quote.symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise ValueError(str(exc)) from None
        for label in ("bid", "ask", "last", "prev_close"):
            price = getattr(quote, label)
            if price is not None:
                err = tick_error(inst, price, label)
                if err:
                    raise ValueError(f"push_quote: {err}")
        if quote.bid is not None and quote.ask is not None:
            if quote.bid > quote.ask:
                raise ValueError(f"push_quote: {inst.symbol} bid {quote.bid} is above ask {quote.ask}")
            if quote.last is not None and not quote.bid <= quote.last <= quote.ask:
                raise ValueError(
                    f"push_quote: {inst.symbol} last {quote.last} is outside bid {quote.bid} / ask {quote.ask}"
                )
        if quote.symbol != inst.symbol:
            quote = replace(quote, symbol=inst.symbol)
        self._roll_if_new_day()
        self._market.push(inst, quote)
        self._flush()

    async def step(self) -> list[Quote]:
        """Advance the market once: every walked symbol moves one update (or one replay row)."""
        self._check_open()
        self._roll_if_new_day()
        if self._market.replay is None:
            for inst in self._universe():
                self._market.ensure(inst)
        quotes = self._market.step()
        if self._market.replay is not None and not quotes:
            self._notice_replay_done()
        self._flush()
        return quotes

    def _notice_replay_done(self) -> None:
        replay = self._market.replay
        if not self._replay_done_noticed and replay is not None:
            self._replay_done_noticed = True
            self.emit(
                Notice(
                    "info",
                    f"replay of {replay.path.name} finished; the market stays at its last quote",
                    source=self.name,
                )
            )

    def _universe(self) -> list[Instrument]:
        """Symbols the market keeps quoting: the base set, subscriptions, orders and positions."""
        seen: dict[str, Instrument] = {i.symbol: i for i in self._base}
        for sym in self._market.subscribed:
            if sym not in seen:
                seen[sym] = self._instruments.resolve(sym)
        for w in self._engine.working.values():
            for _, leg in w.legs:
                seen.setdefault(leg.symbol, leg)
            if not w.legs:
                seen.setdefault(w.order.symbol, w.instrument)
        for pos in self._ledger.positions.values():
            if pos.quantity:
                seen.setdefault(pos.symbol, pos.instrument)
        return list(seen.values())

    def _on_quote(self, quote: Quote) -> None:
        """Every market update, after its subscribers had it: match, and now and then save."""
        self.touch()
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

    def _learn(self, inst: Instrument) -> None:
        self.learned(inst)

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
        for inst in self._resolve_all(symbols):
            self._market.quotes.add(inst.symbol)
            known = self._engine.quote(inst.symbol)
            self._market.ensure(inst)  # a market opened now publishes its first quote itself
            if known is not None:
                self.emit(known)

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        for inst in self._resolve_all(symbols):
            self._market.quotes.discard(inst.symbol)

    async def subscribe_depth(self, symbols: Iterable[str]) -> None:
        """Ten levels a side, best first, on every change; the current picture at once."""
        for inst in self._resolve_all(symbols):
            self._market.subscribe_depth(inst)

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        for inst in self._resolve_all(symbols):
            self._market.depth.discard(inst.symbol)

    async def subscribe_trades(self, symbols: Iterable[str]) -> None:
        """Every print with its aggressor; the last few prints at once."""
        for inst in self._resolve_all(symbols):
            self._market.subscribe_trades(inst)

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        for inst in self._resolve_all(symbols):
            self._market.trades.discard(inst.symbol)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """Bars from the market's own trades, on top of a history synthesized from the seed."""
        self._check_open()
        [inst] = self._resolve_all([symbol])
        return self._market.history(inst, timeframe, start, end)

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """A simulated chain for an equity: listed expiries, strikes, quotes, IV and Greeks."""
        self._check_open()
        [inst] = self._resolve_all([underlying])
        chain = self._market.chain(inst, expiry)
        self._flush()
        return chain

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        return self._market.search(text, limit)

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        try:
            return self._instruments.resolve(symbol)
        except (UnknownSymbol, ModelError):
            return None

    def _resolve_all(self, symbols: Iterable[str]) -> list[Instrument]:
        if isinstance(symbols, str):
            symbols = [symbols]
        return [self._market.resolve(sym) for sym in symbols]

    # ------------------------------------------------------------------ orders

    def preflight(self, request: OrderRequest) -> str:
        """The refusal :meth:`place` would give (the same checks), for the router's preview."""
        if self._closed:
            return f"paper broker {self.name} is closed"
        return self._checks.validate(request)[2]

    async def place(self, request: OrderRequest) -> Order:
        """Validate and accept ``request``; a reject comes back as a REJECTED order, never raised."""
        self._check_open()
        self._roll_if_new_day()
        existing = self._by_coid.get(request.client_order_id)
        if existing is not None:
            return self._orders[existing]
        inst, legs, reason = self._checks.validate(request)
        order = self._pending(request, inst)
        if reason or inst is None:
            self._reject(order, reason)
        else:
            self._engine.submit(
                order,
                inst,
                trade_date=self._trade_date,
                bracket=request.bracket,
                reduce_only=request.reduce_only,
                legs=legs,
            )
        self._flush()
        return self._orders[order.order_id]

    def _pending(self, request: OrderRequest, inst: Instrument | None) -> Order:
        order = Order.from_request(
            request,
            order_id=self._new_id("order"),
            status=OrderStatus.PENDING,
            broker=self.name,
            symbol=inst.symbol if inst is not None else None,
            ts=self._now(),
        )
        self._by_coid[order.client_order_id] = order.order_id
        self._record(order)
        self.touch()
        return order

    def _reject(self, order: Order, reason: str) -> None:
        self._record(order.evolve(status=OrderStatus.REJECTED, reject_reason=reason, updated_at=self._now()))

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """An OCO pair or an OTOCO (trigger, take-profit, stop) as one request.

        Every order is validated first; if any is refused, every order of the group is rejected
        with the reason (naming the one at fault) and nothing works.
        """
        self._check_open()
        self._roll_if_new_day()
        known = [self._by_coid.get(o.client_order_id) for o in group.orders]
        if group.orders and all(known):
            return [self._orders[oid] for oid in known if oid]
        if any(known):
            raise BrokerError(
                "some client order ids of this group are already used by other orders; give each order a new one",
                sent=False,
            )
        reason = self._checks.validate_group(group)
        checked: list[tuple[OrderRequest, Instrument | None]] = []
        for n, r in enumerate(group.orders, 1):
            if group.kind is GroupKind.OTOCO and n > 1:
                inst, why = self._checks.validate_exit(r)
            else:
                inst, _, why = self._checks.validate(r)
            checked.append((r, inst))
            if why and not reason:
                reason = f"order {n} of the {group.kind.value.upper()}: {why}"
        orders = [self._pending(r, inst) for r, inst in checked]
        if reason:
            for o in orders:
                self._reject(o, reason)
            self._flush()
            return [self._orders[o.order_id] for o in orders]
        accepted: list[Working] = []
        for o, (r, inst) in zip(orders, checked, strict=True):
            assert inst is not None
            w = self._engine.accept(o, inst, trade_date=self._trade_date, reduce_only=r.reduce_only)
            accepted.append(w)
        gid = self._new_id("oco")
        if group.kind is GroupKind.OCO:
            self._engine.link_oco(accepted[0], accepted[1], gid)
        else:
            trigger, *exits = accepted
            for w in exits:
                w.reduce_only = True
                w.order = w.order.evolve(role=exit_role(w.order.order_type))
            self._engine.hold_exits(trigger, exits, gid)
        for w in accepted:
            self._engine.activate(w)
        self._flush()
        return [self._orders[o.order_id] for o in orders]

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
        cash = self._ledger.accounts[account].spec.kind is AccountKind.CASH
        if cash and not w.legs and not w.held and isinstance(quantity, int | None):
            # Re-check the whole remaining order at its new terms, excluding its old reservation.
            new_qty = quantity if quantity is not None else order.quantity
            reason = self._cash.cash_check(
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
        if cash and w.legs and (quantity is not None or limit_price is not None):
            request = OrderRequest(
                account=account,
                symbol=order.symbol,
                side=order.side,
                quantity=(quantity if isinstance(quantity, int) else order.quantity) - order.filled_quantity,
                order_type=order.order_type,
                limit_price=limit_price if limit_price is not None else order.limit_price,
                legs=order.legs,
            )
            if request.quantity > 0:
                reason = self._cash.combo_cash_check(request, list(w.legs), exclude=order_id)
                if reason:
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

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions, shorts first: a cash account's spread is
        bought back before its long leg is sold, so it never holds an uncovered short."""
        results: list[Order] = []
        for order in await self.orders(account):
            if order.is_open and (symbol is None or order.symbol == symbol):
                with contextlib.suppress(UnknownOrder):
                    results.append(await self.cancel(account, order.order_id))
        held = [p for p in await self.positions(account) if p.quantity and (symbol is None or p.symbol == symbol)]
        for pos in sorted(held, key=lambda p: p.quantity > 0):
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            request = OrderRequest(
                account=account,
                symbol=pos.symbol,
                side=side,
                quantity=abs(pos.quantity),
                order_type=OrderType.MARKET,
                reduce_only=True,
                source=OrderSource.RISK,
            )
            results.append(await self.place(request))
        return results

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

    def _capacity(self, w: Working, qty: int, price: Decimal) -> tuple[int, str]:
        return self._cash.capacity(w, qty, price)

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
