"""What tterm knows of a Tastytrade login's accounts, orders, fills, positions and balances.

State arrives two ways and goes through one door (:meth:`AccountSync.submit`), handled in
order by one task, so an order's state always comes before its fills and the fills before the
position and balance they produced:

- the account streamer's notifications (B7), whole objects on every change: ``Order``,
  ``ComplexOrder`` (its member orders), ``AccountBalance``, ``CurrentPosition``; other types are
  ignored;
- a REST resync (live orders, positions, balances of every account) at start and after every
  streamer (re)connect, so a fill made while the stream was down still arrives, once.

Each order is mapped whole; only what changed is emitted. A fill is emitted once (its id is the
order's id and the vendor's fill id), with the fees Tastytrade booked for it: the day's Trade
transactions are read for the order's id (commission, clearing, regulatory and index fees); if
none is booked within ``fill_fee_wait`` the fill goes out without a fee and a warning is logged.
A record that does not validate or map (missing fields, nulls, unknown statuses, absurd numbers)
is skipped with a log line and a notice, never fatal to the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from tterm.brokers.common.clock import Clock
from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade.instruments import TastytradeInstruments
from tterm.brokers.tastytrade.rest import TastytradeRest
from tterm.brokers.tastytrade.schemas import (
    AccountLink,
    Balance,
    ComplexOrderRecord,
    CurrentPosition,
    OrderRecord,
    Transaction,
)
from tterm.core.broker import BrokerError
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    BrokerEvent,
    Fill,
    ModelError,
    Notice,
    Order,
    Position,
)
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)


class AccountSync:
    """Accounts, orders, fills, positions and balances of one login, kept from the streamer and REST."""

    def __init__(
        self,
        broker: str,
        rest: TastytradeRest,
        provider: TastytradeInstruments,
        *,
        clock: Clock,
        redactor: Redactor,
        emit: Callable[[BrokerEvent], None],
        today: Callable[[], date],
        is_live: bool,
        fee_wait: float,
    ) -> None:
        self.broker = broker
        self.rest = rest
        self.provider = provider
        self.clock = clock
        self.redactor = redactor
        self.emit = emit
        self.today = today
        self.is_live = is_live
        self.fee_wait = fee_wait
        self.accounts: dict[str, Account] = {}
        self.numbers: dict[str, str] = {}  # core account id -> vendor account number
        self.margin: dict[str, bool] = {}
        self.orders: dict[str, m.Mapped] = {}
        self.known: dict[str, m.Known] = {}  # client order id -> what tterm placed
        self.fills: dict[str, Fill] = {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.snapshots: dict[str, AccountSnapshot] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._tx: dict[str, list[Transaction]] = {}
        self.skipped = 0

    # ------------------------------------------------------------------ accounts

    def account_id(self, number: str) -> str:
        return f"{self.broker}:{number}"

    def vendor(self, account: str) -> str:
        number = self.numbers.get(account)
        if number is None:
            raise m.Refused(f"{account} is not an account of this Tastytrade login")
        return number

    def set_accounts(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                link = AccountLink.model_validate(row)
            except ValidationError as exc:
                self._skip("an account", exc)
                continue
            rec = link.account
            if rec.is_closed:
                continue
            core = self.account_id(rec.account_number)
            margin = rec.margin_or_cash.lower() == "margin"
            self.numbers[core] = rec.account_number
            self.margin[core] = margin
            name = rec.nickname or f"{rec.account_type_name} {rec.account_number}".strip()
            self.accounts[core] = Account(
                id=core,
                broker=self.broker,
                vendor_id=rec.account_number,
                name=name,
                kind=AccountKind.MARGIN if margin else AccountKind.CASH,
                is_live=self.is_live,
            )

    def held(self, account: str, symbol: str) -> int:
        pos = self.positions.get((account, symbol))
        return pos.quantity if pos is not None else 0

    # ------------------------------------------------------------------ the one door

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.broker}-account-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._idle.set()

    def submit(self, kind: str, data: Any) -> None:
        """A streamer notification (or a resync row), handled in arrival order."""
        self._idle.clear()
        self._queue.put_nowait((kind, data))

    async def settle(self) -> None:
        """Wait until everything submitted so far has been applied."""
        if self._task is None or self._task.done():
            # The handler is not running (stopped, or not started): apply what waits here.
            while not self._queue.empty():
                kind, data = self._queue.get_nowait()
                await self._apply_logged(kind, data)
            self._idle.set()
            return
        while not self._queue.empty() or not self._idle.is_set():
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            kind, data = await self._queue.get()
            await self._apply_logged(kind, data)
            if self._queue.empty():
                self._idle.set()

    async def _apply_logged(self, kind: str, data: Any) -> None:
        try:
            await self.apply(kind, data)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one record end the stream
            self.skipped += 1
            log.exception("%s: a %s record could not be applied; skipped", self.broker, kind)

    async def apply(self, kind: str, data: Any) -> None:
        if kind == "Order":
            await self._order(data)
        elif kind == "ComplexOrder":
            await self._complex(data)
        elif kind == "AccountBalance":
            self._balance(data)
        elif kind == "CurrentPosition":
            self._position(data)
        # TradingStatus, ExternalTransaction, OrderChain, QuoteAlert, ...: not used (B7).

    # ------------------------------------------------------------------ records

    def _skip(self, what: str, exc: Exception) -> None:
        self.skipped += 1
        if isinstance(exc, ValidationError):
            err = exc.errors()[0] if exc.errors() else {}
            why = f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        else:
            why = str(exc)
        text = self.redactor.scrub(f"{what} from Tastytrade was skipped ({why})")
        log.warning("%s: %s", self.broker, text)
        self.emit(Notice(level="warning", text=text, source=self.broker))

    def map_order(self, rec: OrderRecord) -> m.Mapped:
        account = self.account_id(rec.account_number)
        known = self.known.get(rec.external_identifier or "")
        return m.order_of(
            rec,
            account=account,
            broker=self.broker,
            resolve=self.provider.resolve,
            known=known,
            strategy_name=self.provider.strategy_name,
        )

    async def _order(self, data: Any) -> Order | None:
        try:
            rec = OrderRecord.model_validate(data)
            if rec.id is None:
                raise m.MappingError("an order without an id")
            if self.account_id(rec.account_number) not in self.accounts:
                raise m.MappingError(f"order {rec.id} of an account this login does not hold")
            mapped = self.map_order(rec)
        except (ValidationError, ModelError) as exc:
            self._skip("an order", exc)
            return None
        return await self.absorb(mapped)

    async def absorb(self, mapped: m.Mapped) -> Order:
        """Take one mapped order: emit it if it changed, then its new fills (with fees).

        The fees are read before anything is emitted: an order's fill state and its fills go out
        together, so nothing downstream (a bracket's exits) acts on a fill the book has not seen.
        """
        order = mapped.order
        new = [f for f in mapped.fills if f.fill_id not in self.fills]
        fees: dict[str, Decimal] = {}
        if new:
            fees = await self._fees(self.numbers.get(order.account, ""), mapped, new)
        prev = self.orders.get(order.order_id)
        self.orders[order.order_id] = mapped
        if prev is None or _state(prev.order) != _state(order):
            self.emit(order)
        for fill in new:
            if fill.fill_id in self.fills:
                continue
            fill = _with_fee(fill, fees.get(fill.fill_id, ZERO))
            self.fills[fill.fill_id] = fill
            self.emit(fill)
        return order

    async def _complex(self, data: Any) -> None:
        try:
            rec = ComplexOrderRecord.model_validate(data)
        except ValidationError as exc:
            self._skip("a complex order", exc)
            return
        for member in [*([rec.trigger_order] if rec.trigger_order else []), *rec.orders]:
            if member.id is None:
                continue
            try:
                mapped = self.map_order(member)
            except ModelError as exc:
                self._skip("an order of a complex order", exc)
                continue
            await self.absorb(mapped)

    def _balance(self, data: Any) -> None:
        try:
            rec = Balance.model_validate(data)
        except ValidationError as exc:
            self._skip("a balance", exc)
            return
        account = self.account_id(rec.account_number)
        if account not in self.accounts:
            return
        held = [p for (a, _), p in self.positions.items() if a == account]
        realized = sum((p.realized_pnl for p in held), ZERO)
        open_pnl = sum((p.unrealized_pnl for p in held if p.quantity), ZERO)
        fees = sum((f.fee for f in self.fills.values() if f.account == account and f.ts.date() == self.today()), ZERO)
        snap = m.snapshot_of(
            rec,
            account=account,
            margin=self.margin.get(account, False),
            realized=realized,
            open_pnl=open_pnl,
            fees_today=fees,
        )
        prev = self.snapshots.get(account)
        self.snapshots[account] = snap
        if prev is None or (prev.balance, prev.equity, prev.buying_power) != (snap.balance, snap.equity,
                                                                             snap.buying_power):  # fmt: skip
            self.emit(snap)

    def _position(self, data: Any) -> None:
        try:
            rec = CurrentPosition.model_validate(data)
            account = self.account_id(rec.account_number)
            if account not in self.accounts:
                return
            inst = self.provider.resolve(rec.symbol, rec.instrument_type)
            if rec.streamer_symbol:
                self.provider.note(inst.symbol, rec.symbol, rec.instrument_type, rec.streamer_symbol)
            pos = m.position_of(rec, account=account, inst=inst)
        except (ValidationError, ModelError) as exc:
            self._skip("a position", exc)
            return
        key = (account, pos.symbol)
        prev = self.positions.get(key)
        self.positions[key] = pos
        if prev is None or (prev.quantity, prev.avg_price, prev.realized_pnl) != (pos.quantity, pos.avg_price,
                                                                                pos.realized_pnl):  # fmt: skip
            self.emit(pos)

    # ------------------------------------------------------------------ fees

    async def _fees(self, number: str, mapped: m.Mapped, fills: list[Fill]) -> dict[str, Decimal]:
        """Fee of each new fill: the n-th fill of a leg is the n-th Trade transaction of the order in
        that symbol (read per symbol, for today only)."""
        out: dict[str, Decimal] = {}
        rec = mapped.record
        if not number or rec is None:
            return out
        order_id = int(mapped.order.order_id)
        vendor = {}
        for leg in rec.legs:
            with contextlib.suppress(ModelError):
                vendor[m.core_symbol(leg.symbol, leg.instrument_type)] = leg.symbol
        wanted = {f.symbol for f in fills}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fee_wait
        while True:
            booked: dict[str, list[Transaction]] = {}
            try:
                for core in wanted:
                    rows = await self.rest.transactions(number, self.today(), symbol=vendor.get(core, core))
                    txs = []
                    for row in rows:
                        with contextlib.suppress(ValidationError):
                            txs.append(Transaction.model_validate(row))
                    booked[core] = sorted((t for t in txs if t.order_id == order_id), key=lambda t: t.id)
            except (BrokerError, OSError) as exc:
                log.warning("%s: fees of order %s could not be read (%s)", self.broker, order_id,
                            self.redactor.scrub(str(exc)))  # fmt: skip
                return out
            matched = True
            for fill in fills:
                same = [f.fill_id for f in mapped.fills if f.symbol == fill.symbol]  # the vendor's order
                n = same.index(fill.fill_id)
                rows_for = booked.get(fill.symbol, [])
                if n < len(rows_for):
                    out[fill.fill_id] = rows_for[n].fees
                else:
                    matched = False
            if matched or loop.time() >= deadline:
                if not matched:
                    log.warning("%s: Tastytrade booked no fees yet for order %s; its fill goes without", self.broker,
                                order_id)  # fmt: skip
                return out
            await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ resync over REST

    async def resync(self) -> None:
        """Every account's balances, positions and today's orders, read fresh (after a gap)."""
        for core, number in list(self.numbers.items()):
            await self._positions_of(core, number)
            for row in await self.rest.live_orders(number):
                self.submit("Order", row)
            self.submit("AccountBalance", await self.rest.balances(number))
        await self.settle()

    async def fresh_positions(self, account: str) -> None:
        """The account's positions now (an order's open or close depends on them)."""
        await self._positions_of(account, self.vendor(account))
        await self.settle()

    async def _positions_of(self, account: str, number: str) -> None:
        rows = await self.rest.positions(number)
        listed: set[str] = set()
        for row in rows:
            self.submit("CurrentPosition", row)
            with contextlib.suppress(ValidationError, ModelError):
                rec = CurrentPosition.model_validate(row)
                listed.add(self.provider.resolve(rec.symbol, rec.instrument_type).symbol)
        await self.settle()
        # A position closed while the stream was down is not listed any more: it is flat now.
        for (acct, symbol), pos in list(self.positions.items()):
            if acct == account and symbol not in listed and pos.quantity != 0:
                flat = Position(account=acct, symbol=symbol, quantity=0, realized_pnl=pos.realized_pnl)
                self.positions[(acct, symbol)] = flat
                self.emit(flat)


def _state(order: Order) -> tuple[object, ...]:
    return (order.status, order.quantity, order.filled_quantity, order.limit_price, order.stop_price,
            order.avg_fill_price, order.reject_reason, order.order_type)  # fmt: skip


def _with_fee(fill: Fill, fee: Decimal) -> Fill:
    from dataclasses import replace

    return replace(fill, fee=fee)
