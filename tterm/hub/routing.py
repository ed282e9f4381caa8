"""Signal routing: one alert -> a plan per account -> orders through the engine, in order, once.

:meth:`SignalRouter.accept` runs synchronously inside the HTTP handler (no await, so the
duplicate check and the insert are atomic): strategy, staleness, ticker, accounts, dedup key,
and a preview through the pre-trade checks. Then each account's part goes onto the ordered queue
of its (account, contract) pair — alerts for one symbol in one account never race — and a worker
turns it into a plan against the position *at that moment*:

- **buy / sell** (TradersPost, PickMyTrade): open or add; against an opposite position, a
  reversal as one operation: cancel the symbol's working orders, close with a reduce-only market
  order, **wait for the exit fill**, then enter. ``sentiment`` flat or same-side gives an exit
  (full or partial) instead, as TradersPost defines it.
- **exit**: cancel the symbol's orders and close the position (or part of it); **cancel**: cancel.
- **target** (``market_position``): trade the difference between the target and the position,
  through flat when it changes side, so a missed or repeated alert heals itself.
- **order** (a text verb): exactly that order.

Each plan is written to the :class:`~tterm.hub.store.SignalStore` before its first step runs,
with deterministic client order ids. After a crash, :meth:`SignalRouter.recover` asks the broker
about every step that was being sent, marks what it finds, and resumes the rest (or marks it
failed when the alert has gone stale), so an acknowledged alert is executed or marked failed,
and never executed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    Bracket,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    PositionDrift,
    Quote,
    RiskAction,
    Side,
    SignalOutcome,
    SignalStatus,
    utcnow,
)
from tterm.hub import wire
from tterm.hub.store import SignalStore, StepRow
from tterm.hub.webhook import AccountPick, Action, ErrorCode, Sentiment, Signal, WebhookError, round_ticks

if TYPE_CHECKING:
    from tterm.config import HubStrategySettings
    from tterm.core.engine import Engine

log = logging.getLogger(__name__)

wire.register(Signal)
wire.register(AccountPick)


@dataclass(frozen=True, slots=True)
class StrategyAccount:
    account: str
    multiplier: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class Strategy:
    """Where one strategy's alerts trade (built from ``[hub.strategies.<id>]``)."""

    id: str
    accounts: tuple[StrategyAccount, ...]
    symbols: Mapping[str, str] = field(default_factory=dict)
    quantity: int | None = None
    pyramiding: bool = False
    enabled: bool = True

    @classmethod
    def from_settings(cls, sid: str, s: HubStrategySettings) -> Strategy:
        return cls(
            id=sid,
            accounts=tuple(StrategyAccount(a.account, a.multiplier) for a in s.accounts),
            symbols=dict(s.symbols),
            quantity=s.quantity,
            pyramiding=s.pyramiding,
            enabled=s.enabled,
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """What the webhook reply says: the alert's id and, per account, what it will do."""

    signal_id: str
    previews: dict[str, str]
    symbol: str


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an account's plan: ``cancel``, ``order``, ``wait`` (for a position) or ``flatten``."""

    kind: str
    label: str
    request: OrderRequest | None = None
    symbol: str = ""
    expected: int = 0

    def to_data(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "request": wire.encode(self.request) if self.request is not None else None,
            "symbol": self.symbol,
            "expected": self.expected,
        }

    @classmethod
    def from_row(cls, row: StepRow) -> Step:
        d = row.data
        req = wire.decode(d["request"], OrderRequest) if d.get("request") else None
        return cls(kind=row.kind, label=d["label"], request=req, symbol=d["symbol"], expected=d["expected"])


@dataclass(slots=True)
class _Job:
    signal_id: str
    signal: Signal
    strategy: Strategy
    account: str
    index: int
    multiplier: Decimal
    symbol: str
    resume: bool = False


@dataclass(slots=True)
class Recovery:
    """What :meth:`SignalRouter.recover` found after a restart, per account part of an alert."""

    resumed: int = 0
    completed: int = 0
    failed: int = 0
    found: int = 0
    not_found: int = 0

    @property
    def total(self) -> int:
        return self.resumed + self.completed + self.failed

    def describe(self) -> str:
        return (
            f"{self.resumed} unfinished alert part(s) resumed, {self.completed} found complete, {self.failed} "
            f"marked failed; {self.found} order(s) in flight were found at the broker, {self.not_found} had "
            "not reached it"
        )


class _Skip(Exception):
    """Nothing to do in this account (already flat, already at target...)."""


class _Fail(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def scale(quantity: int, multiplier: Decimal) -> int:
    """``quantity`` times an account's multiplier, rounded toward zero: never more than asked."""
    sign = -1 if quantity < 0 else 1
    return sign * int((abs(quantity) * multiplier).to_integral_value(rounding=ROUND_FLOOR))


class SignalRouter:
    """Accepts parsed alerts and carries them out per account (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        store: SignalStore,
        *,
        strategies: Mapping[str, Strategy],
        stale_after: float = 60.0,
        exit_fill_timeout: float = 30.0,
        drift_grace: float = 10.0,
        drift_interval: float = 1.0,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        recent: int = 200,
        coid_limit: int = 100_000,
    ) -> None:
        self.engine = engine
        self.store = store
        self.strategies = dict(strategies)
        self.stale_after = stale_after
        self.exit_fill_timeout = exit_fill_timeout
        self.drift_grace = drift_grace
        self.drift_interval = drift_interval
        self._now = now
        self._monotonic = monotonic
        self._queues: dict[tuple[str, str], asyncio.Queue[_Job]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._busy: dict[tuple[str, str], int] = {}
        self._pending: dict[str, set[str]] = {}
        self._waits: dict[tuple[str, str], list[tuple[Callable[[], bool], asyncio.Future[None]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._drift_since: dict[tuple[str, str], float] = {}
        self._drifted: set[tuple[str, str]] = set()
        self.recent: deque[SignalOutcome] = deque(maxlen=recent)
        #: signal id -> time.perf_counter() at receipt, and client order id -> signal id (bench metrics).
        self.received_perf: dict[str, float] = {}
        self.coid_signal: dict[str, str] = {}
        #: (monotonic time, client order id) in the order they went into ``coid_signal``: see _remember_coid.
        self._coid_born: deque[tuple[float, str]] = deque()
        self._coid_at: dict[str, float] = {}
        self.coid_limit = coid_limit
        self.idle = asyncio.Event()
        self.idle.set()
        self.recovery = Recovery()
        #: In flight: each alert's accounts, and the statuses of those finished so far.
        self._targets: dict[str, list[str]] = {}
        self._statuses: dict[str, dict[str, tuple[str, str]]] = {}
        self._quoted: set[str] = set()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        # Above every id already in the store: a joined store writes later (on the journal's
        # writer thread), so an id taken in an earlier run could not be refused at the insert.
        last = getattr(store, "last_signal_id", "")
        try:
            self._last_sid = int(last, 16) if last else 0
        except ValueError:
            self._last_sid = 0
        #: Market orders sent per (account, symbol) whose fills may not be in the book yet: the
        #: next alert on that pair is planned once they are in.
        self._unsettled: dict[tuple[str, str], list[str]] = {}

    # ================================================================== lifecycle

    async def start(self, *, recover: bool = True) -> None:
        """Watch the engine's positions and orders, recover unfinished alerts, start the drift check."""
        self._tasks.append(asyncio.create_task(self._watch(), name="hub-watch"))
        for strategy in self.strategies.values():
            for target in strategy.symbols.values():
                with contextlib.suppress(UnknownSymbol):
                    self._ensure_quotes(self.engine.instruments.resolve(target).symbol)
        if recover:
            await self.recover()
        self._tasks.append(asyncio.create_task(self._drift_loop(), name="hub-drift"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._workers.values(), *self._side_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._workers.values(), *self._side_tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._workers.clear()

    # ================================================================== accept (synchronous)

    def strategy(self, strategy_id: str) -> Strategy:
        strat = self.strategies.get(strategy_id)
        if strat is None or not strat.enabled:
            known = ", ".join(sorted(s for s, v in self.strategies.items() if v.enabled)) or "none configured"
            why = "is disabled" if strat is not None else "is not configured"
            raise WebhookError(ErrorCode.UNKNOWN_STRATEGY, f"strategy {strategy_id!r} {why} (strategies: {known})")
        return strat

    def check_fresh(self, signal: Signal) -> None:
        """Refuse an alert older than ``stale_after`` (or as far in the future: a wrong clock)."""
        if signal.alert_time is None:
            return
        age = (self._now() - signal.alert_time).total_seconds()
        if age > self.stale_after:
            raise WebhookError(
                ErrorCode.STALE,
                f"alert time {signal.alert_time.isoformat()} is {age:.0f} s old (limit {self.stale_after:g} s); "
                "not traded",
            )
        if -age > self.stale_after:
            raise WebhookError(
                ErrorCode.STALE,
                f"alert time {signal.alert_time.isoformat()} is {-age:.0f} s in the future; check the clocks "
                "(the alert should carry {{timenow}})",
            )

    def instrument_for(self, strategy: Strategy, ticker: str) -> Instrument:
        """The contract an alert's ticker trades: the strategy's symbol map, else the instrument master."""
        mapped = strategy.symbols.get(ticker) or strategy.symbols.get(ticker.rpartition(":")[2])
        try:
            return self.engine.instruments.resolve(mapped or ticker)
        except UnknownSymbol as exc:
            hint = f" (mapped from {ticker})" if mapped else ""
            raise WebhookError(
                ErrorCode.UNKNOWN_TICKER,
                f"{exc}{hint}; map it under [hub.strategies.{strategy.id}.symbols]",
            ) from None

    def targets(self, strategy: Strategy, signal: Signal) -> list[StrategyAccount]:
        """The accounts an alert trades: the strategy's, or the subset the payload names."""
        if not signal.accounts:
            return list(strategy.accounts)
        out: list[StrategyAccount] = []
        for pick in signal.accounts:
            match = [
                a for a in strategy.accounts if a.account == pick.account or a.account.partition(":")[2] == pick.account
            ]
            if not match:
                allowed = ", ".join(a.account for a in strategy.accounts)
                raise WebhookError(
                    ErrorCode.UNAUTHORIZED,
                    f"account {pick.account!r} is not mapped to strategy {strategy.id!r} (its accounts: {allowed})",
                    status=403,
                )
            acct = match[0]
            out.append(
                StrategyAccount(acct.account, pick.multiplier if pick.multiplier is not None else acct.multiplier)
            )
        return out

    @staticmethod
    def dedup_key(strategy: Strategy, signal: Signal) -> str | None:
        """Strategy + ticker + the alert's own id or time, plus a digest of what it asks, so a
        repeat is caught while two different alerts in the same second (an exit and an entry)
        are not mistaken for one. None when the alert carries neither id nor time."""
        stamp = signal.alert_id or (signal.alert_time.isoformat() if signal.alert_time else "")
        if not stamp:
            return None
        what = "|".join(
            str(x)
            for x in (
                signal.action.value,
                signal.side,
                signal.sentiment,
                signal.quantity,
                signal.target,
                signal.order_type.value,
                signal.limit_price,
                signal.stop_price,
            )
        )
        digest = hashlib.sha256(what.encode()).hexdigest()[:16]
        return f"{strategy.id}|{signal.ticker}|{stamp}|{digest}"

    def accept(self, strategy_id: str, signal: Signal, *, received_perf: float | None = None) -> Ack:
        """Validate, de-duplicate, preview and queue one alert. Raises :class:`WebhookError`.

        Synchronous on purpose: between the duplicate check and the insert nothing else runs.
        """
        strategy = self.strategy(strategy_id)
        self.check_fresh(signal)
        if signal.action is Action.ORDER and signal.quantity is None:
            raise WebhookError(ErrorCode.MALFORMED, "the order has no quantity")
        symbol = ""
        if signal.ticker:
            symbol = self.instrument_for(strategy, signal.ticker).symbol
            self._ensure_quotes(symbol)
        elif signal.action not in (Action.EXIT, Action.CANCEL):
            raise WebhookError(ErrorCode.MALFORMED, "no ticker")
        targets = self.targets(strategy, signal)
        if signal.action in (Action.BUY, Action.SELL, Action.ADD, Action.ORDER) and (
            signal.quantity is None
            and strategy.quantity is None
            and not (
                signal.sentiment is Sentiment.FLAT
                or (signal.action is Action.BUY and signal.sentiment is Sentiment.SHORT)
                or (signal.action is Action.SELL and signal.sentiment is Sentiment.LONG)
            )
        ):
            raise WebhookError(
                ErrorCode.INVALID_ACTION,
                f"{signal.action.value} without a quantity, and strategy {strategy.id!r} has no default quantity",
            )
        received = self._now()
        key = self.dedup_key(strategy, signal)
        encoded = wire.encode(signal)
        accounts = [(t.account, str(t.multiplier)) for t in targets]
        for attempt in range(3):
            sid = self._new_signal_id()
            try:
                existing = self.store.insert_signal(
                    signal_id=sid,
                    dedup_key=key,
                    strategy=strategy.id,
                    ticker=signal.ticker,
                    symbol=symbol,
                    form=signal.form,
                    received_at=received,
                    alert_time=signal.alert_time,
                    signal=encoded,
                    targets=accounts,
                )
                break
            except sqlite3.IntegrityError:
                # The id is taken (a clock that went back since an earlier run): draw another.
                if attempt == 2:
                    raise
        if existing is not None:
            raise WebhookError(
                ErrorCode.DUPLICATE,
                f"this alert was already received as {existing}; it is not traded again",
                signal_id=existing,
            )
        if received_perf is not None:
            self.received_perf[sid] = received_perf
        if signal.action is Action.TARGET and signal.target is not None and symbol:
            for t in targets:
                self.store.set_expected(strategy.id, t.account, symbol, scale(signal.target, t.multiplier), received)
        previews, rejected = self._preview(sid, signal, strategy, targets, symbol)
        if rejected and len(rejected) == len(targets):
            reasons = "; ".join(f"{a}: {r}" for a, r in rejected.items())
            for acct, reason in rejected.items():
                self._finish_account(
                    sid, strategy.id, acct, symbol, SignalStatus.REJECTED, reason, ErrorCode.RISK_REJECTED
                )
            self._finish_signal(sid, strategy.id, symbol, (t.account for t in targets))
            raise WebhookError(ErrorCode.RISK_REJECTED, f"refused by the pre-trade checks: {reasons}", signal_id=sid)
        # On the bus for the hub screen; the journal already has it as the webhook row.
        self._publish(
            SignalOutcome(
                signal_id=sid,
                strategy=strategy.id,
                status=SignalStatus.ACCEPTED,
                summary=signal.describe(),
                symbol=symbol,
            ),
            journal=False,
        )
        self._pending[sid] = {t.account for t in targets}
        self._targets[sid] = [t.account for t in targets]
        for index, t in enumerate(targets):
            self._enqueue(_Job(sid, signal, strategy, t.account, index, t.multiplier, symbol))
        return Ack(signal_id=sid, previews=previews, symbol=symbol)

    def _new_signal_id(self) -> str:
        """16 hex digits: the time in milliseconds (11), then 5 random ones, kept strictly
        increasing in this process. Time-ordered ids make every index keyed by them (the hub
        store's signals, steps and outcomes; the journal's ``ref``, which holds them and the
        client order ids built from them) grow at one end instead of dirtying a random page per
        alert on each commit."""
        value = (int(time.time() * 1000) << 20) | secrets.randbits(20)
        if value <= self._last_sid:
            value = self._last_sid + 1
        self._last_sid = value
        return f"{value:016x}"[-16:]

    def _preview(
        self, sid: str, signal: Signal, strategy: Strategy, targets: list[StrategyAccount], symbol: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """What each account will do if it ran now, and which accounts' first order the pre-trade
        checks refuse. An account whose queue is busy is planned when its turn comes."""
        previews: dict[str, str] = {}
        rejected: dict[str, str] = {}
        for index, t in enumerate(targets):
            if self._busy.get((t.account, symbol or "*")):
                previews[t.account] = "queued behind earlier alerts"
                continue
            coids = self._unsettled.get((t.account, symbol)) if symbol else None
            if coids and not all(self._settled(t.account, c) for c in coids):
                # The orders before it have not filled into the book yet: planned against the
                # position as it stands now, a target or reduce-only exit would be judged stale
                # (refused with a 422 although its turn would find it right). Planned in its turn.
                previews[t.account] = "planned when the earlier alerts' orders have filled"
                continue
            if symbol and ((q := self.engine.quote(symbol)) is None or q.mark is None):
                previews[t.account] = f"planned when the first {symbol} quote arrives"
                continue
            job = _Job(sid, signal, strategy, t.account, index, t.multiplier, symbol)
            try:
                steps = self.plan(job)
            except _Skip as exc:
                previews[t.account] = f"nothing to do: {exc}"
                continue
            except _Fail as exc:
                previews[t.account] = f"cannot: {exc}"
                continue
            previews[t.account] = "; then ".join(s.label for s in steps)
            first = next((s.request for s in steps if s.request is not None), None)
            if first is not None and self.engine.account(t.account) is not None:
                _, decision = self.engine.router.prepare(first)
                if decision.action is RiskAction.REJECT:
                    rejected[t.account] = decision.reason
        return previews, rejected

    # ================================================================== market data

    def _ensure_quotes(self, symbol: str) -> None:
        """Stream quotes for a symbol the hub trades: the pre-trade checks need a market."""
        if symbol in self._quoted:
            return
        self._quoted.add(symbol)

        async def subscribe() -> None:
            try:
                await self.engine.subscribe([symbol])
            except Exception as exc:
                self._quoted.discard(symbol)
                self.engine.journal.record(
                    "error", {"action": "webhook-subscribe", "symbol": symbol, "error": str(exc)}
                )

        task = asyncio.create_task(subscribe(), name=f"hub-subscribe-{symbol}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _wait_quote(self, symbol: str) -> None:
        """Wait (up to ``exit_fill_timeout``) for the first quote; without one the checks say why."""

        def priced() -> bool:
            q = self.engine.quote(symbol)
            return q is not None and q.mark is not None

        if priced():
            return
        with contextlib.suppress(_Fail):
            await self._wait_until(("quote", symbol), priced, "quote")

    # ================================================================== queues

    def _enqueue(self, job: _Job) -> None:
        key = (job.account, job.symbol or "*")
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.create_task(self._worker(key, queue), name=f"hub-{key[0]}-{key[1]}")
        self._busy[key] = self._busy.get(key, 0) + 1
        self.idle.clear()
        queue.put_nowait(job)

    async def _worker(self, key: tuple[str, str], queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not kill the queue; the account's part is marked failed
                log.exception("hub job %s in %s failed", job.signal_id, job.account)
                self.engine.journal.record(
                    "error",
                    {"action": "webhook-route", "signal": job.signal_id, "error": repr(exc)},
                    account=job.account,
                    ref=job.signal_id,
                )
                self._finish_account(
                    job.signal_id,
                    job.strategy.id,
                    job.account,
                    job.symbol,
                    SignalStatus.FAILED,
                    f"internal error: {exc}",
                    ErrorCode.FAILED,
                )
            finally:
                self._busy[key] -= 1
                if self._busy[key] == 0:
                    del self._busy[key]
                    self._drift_since.pop(key, None)
                if not self._busy:
                    self.idle.set()

    # ================================================================== planning

    def _coid(self, job: _Job, seq: int) -> str:
        return f"wh{job.signal_id}{job.index:03d}{seq:02d}"

    def plan(self, job: _Job) -> list[Step]:
        """The steps for one account against its position now. Raises _Skip / _Fail."""
        sig = job.signal
        if self.engine.account(job.account) is None:
            raise _Fail(ErrorCode.FAILED, f"account {job.account} is not available (broker not running?)")
        if not job.symbol:
            if sig.action is Action.CANCEL:
                return [Step("cancel", f"cancel every working order in {job.account}")]
            return [Step("flatten", f"flatten every position in {job.account}")]
        inst = self.engine.instruments.resolve(job.symbol)
        pos = self.engine.book.quantity(job.account, job.symbol)
        steps: list[Step] = []
        seq = 0

        def order(side: Side, qty: int, *, exit_: bool) -> Step:
            nonlocal seq
            req = self._request(job, inst, side, qty, exit_=exit_, coid=self._coid(job, seq))
            seq += 1
            return Step("order", req.describe(), request=req, symbol=job.symbol)

        def cancel() -> Step:
            nonlocal seq
            seq += 1
            return Step("cancel", f"cancel working {job.symbol} orders", symbol=job.symbol)

        def wait(expected: int) -> Step:
            nonlocal seq
            seq += 1
            return Step(
                "wait",
                f"wait until {job.symbol} is {'flat' if expected == 0 else expected}",
                symbol=job.symbol,
                expected=expected,
            )

        def has_orders() -> bool:
            return any(o.symbol == job.symbol for o in self.engine.open_orders(job.account))

        def close(n: int | None) -> list[Step]:
            """Close ``n`` (None: all) of the position; a full close cancels the symbol's orders first."""
            if pos == 0:
                raise _Skip(f"no {job.symbol} position")
            qty = abs(pos) if n is None else min(n, abs(pos))
            side = Side.SELL if pos > 0 else Side.BUY
            pre = [cancel()] if (qty == abs(pos) and has_orders()) else []
            return [*pre, order(side, qty, exit_=True)]

        qty = self._quantity(job)
        action = sig.action
        if action is Action.ORDER:
            assert sig.side is not None and qty is not None
            return [order(sig.side, qty, exit_=False)]
        if action is Action.CANCEL:
            if not has_orders():
                raise _Skip(f"no working {job.symbol} orders")
            return [cancel()]
        if action is Action.EXIT:
            return close(qty)
        if action is Action.TARGET:
            assert sig.target is not None
            target = scale(sig.target, job.multiplier)
            if target == pos:
                raise _Skip(f"already at the target ({target:+d} {job.symbol})")
            if pos != 0 and (target == 0 or (target > 0) != (pos > 0)):
                steps = close(None)
                if target != 0:
                    steps += [wait(0), order(Side.BUY if target > 0 else Side.SELL, abs(target), exit_=False)]
                return steps
            delta = target - pos
            side = Side.BUY if delta > 0 else Side.SELL
            reducing = pos != 0 and abs(target) < abs(pos)
            return [order(side, abs(delta), exit_=reducing)]
        if action is Action.ADD:
            if sig.sentiment is Sentiment.LONG:
                side = Side.BUY
            elif sig.sentiment is Sentiment.SHORT:
                side = Side.SELL
            elif pos != 0:
                side = Side.BUY if pos > 0 else Side.SELL
            else:
                raise _Skip("add: no position to add to, and no sentiment to say which side")
            if pos != 0 and (pos > 0) != (side is Side.BUY):
                raise _Skip(f"add {side.value} would reduce the {pos:+d} position; send exit or sell instead")
            assert qty is not None
            return [order(side, qty, exit_=False)]
        # BUY / SELL
        assert sig.side is not None
        side = sig.side
        opposite = pos != 0 and (pos > 0) != (side is Side.BUY)
        same = pos != 0 and not opposite
        if sig.sentiment is Sentiment.FLAT or (
            sig.sentiment is not None and sig.sentiment.value != ("long" if side is Side.BUY else "short")
        ):
            # TradersPost: sell+flat exits a long in full; sell+bullish with a quantity exits part of it.
            if not opposite:
                held = "flat" if pos == 0 else f"{pos:+d}"
                raise _Skip(f"{side.value} to exit, but the {job.symbol} position is {held}")
            return close(None if sig.sentiment is Sentiment.FLAT else qty)
        assert qty is not None
        pre = [cancel()] if sig.cancel_first and has_orders() else []
        if opposite:
            steps = close(None)
            if sig.close_only_on_reverse:
                return steps
            return [*steps, wait(0), order(side, qty, exit_=False)]
        if same and not (job.strategy.pyramiding or sig.allow_add):
            raise _Skip(
                f"already {'long' if pos > 0 else 'short'} {abs(pos)} {job.symbol}; send action add "
                "(or enable pyramiding) to add"
            )
        return [*pre, order(side, qty, exit_=False)]

    def _quantity(self, job: _Job) -> int | None:
        sig = job.signal
        base = sig.quantity
        if base is None:
            if sig.action in (Action.EXIT, Action.TARGET, Action.CANCEL) or sig.sentiment is not None:
                return None
            base = job.strategy.quantity
        if base is None:
            return None
        qty = scale(base, job.multiplier)
        if qty <= 0:
            raise _Skip(f"multiplier {job.multiplier} turns {base} into 0 contracts")
        return qty

    def _request(self, job: _Job, inst: Instrument, side: Side, qty: int, *, exit_: bool, coid: str) -> OrderRequest:
        sig = job.signal
        if exit_:
            return OrderRequest(
                account=job.account,
                symbol=inst.symbol,
                side=side,
                quantity=qty,
                order_type=OrderType.MARKET,
                reduce_only=True,
                client_order_id=coid,
                source=OrderSource.WEBHOOK,
                strategy=job.strategy.id,
            )
        limit = sig.limit_price
        if sig.order_type.needs_limit and limit is None:
            limit = sig.price if sig.price is not None else self._current_price(inst, side)
            if limit is None:
                raise _Fail(
                    ErrorCode.INVALID_ACTION, f"limit at the current price, but there is no {inst.symbol} quote"
                )
        return OrderRequest(
            account=job.account,
            symbol=inst.symbol,
            side=side,
            quantity=qty,
            order_type=sig.order_type,
            limit_price=limit,
            stop_price=sig.stop_price,
            tif=sig.tif,
            bracket=self._bracket(sig, inst, side, limit),
            client_order_id=coid,
            source=OrderSource.WEBHOOK,
            strategy=job.strategy.id,
        )

    def _current_price(self, inst: Instrument, side: Side) -> Decimal | None:
        q = self.engine.quote(inst.symbol)
        if q is None:
            return None
        price = q.ask if side is Side.BUY else q.bid
        return price if price is not None else q.mark

    def _bracket(self, sig: Signal, inst: Instrument, side: Side, limit: Decimal | None) -> Bracket | None:
        """Take-profit and stop-loss in the forms the alert gave them.

        TradersPost's ``amount`` is read as a distance in price units and ``percent`` as a percent
        of the entry price (their docs describe both only loosely: reference B.2); PickMyTrade's
        ``dollar_tp``/``dollar_sl`` are dollars per contract (B.3).
        """
        if not sig.has_bracket:
            return None
        ref = limit if limit is not None else sig.stop_price
        if ref is None:
            ref = sig.price if sig.price is not None else self._current_price(inst, side)

        def leg(
            price: Decimal | None,
            amount: Decimal | None,
            percent: Decimal | None,
            dollars: Decimal | None,
            ticks: int | None,
            what: str,
        ) -> tuple[int | None, Decimal | None]:
            if price is not None:
                return None, price
            if ticks is not None:
                return ticks, None
            if amount is not None:
                return round_ticks(amount, inst.tick_size), None
            if dollars is not None:
                return round_ticks(dollars, inst.tick_value), None
            if percent is not None:
                if ref is None:
                    raise _Fail(ErrorCode.INVALID_ACTION, f"a {what} in percent needs a price, and there is no quote")
                return round_ticks(ref * percent / 100, inst.tick_size), None
            return None, None

        tp_ticks, tp_price = leg(
            sig.tp_price, sig.tp_amount, sig.tp_percent, sig.tp_dollars, sig.tp_ticks, "take-profit"
        )
        sl_ticks, sl_price = leg(sig.sl_price, sig.sl_amount, sig.sl_percent, sig.sl_dollars, sig.sl_ticks, "stop-loss")
        try:
            return Bracket(
                take_profit_ticks=tp_ticks,
                stop_loss_ticks=sl_ticks,
                take_profit_price=tp_price,
                stop_loss_price=sl_price,
            )
        except ModelError as exc:
            raise _Fail(ErrorCode.INVALID_ACTION, str(exc)) from None

    # ================================================================== execution

    async def _run(self, job: _Job) -> None:
        if job.symbol:
            await self._wait_quote(job.symbol)
            await self._settle(job.account, job.symbol)
        rows = self.store.steps(job.signal_id, job.account) if job.resume else []
        if rows:
            steps = [(row, Step.from_row(row)) for row in rows]
        else:
            try:
                plan = self.plan(job)
            except _Skip as exc:
                self._finish_account(
                    job.signal_id,
                    job.strategy.id,
                    job.account,
                    job.symbol,
                    SignalStatus.SKIPPED,
                    f"nothing to do: {exc}",
                    "",
                )
                return
            except _Fail as exc:
                self._finish_account(
                    job.signal_id, job.strategy.id, job.account, job.symbol, SignalStatus.FAILED, str(exc), exc.code
                )
                return
            planned = [(s.kind, s.to_data(), s.request.client_order_id if s.request else "") for s in plan]
            # An order first in the plan is written as "sending" at once: it goes out next, with no
            # await in between, and a crash after this line is looked up at the broker.
            first = "sending" if plan[0].kind == "order" else "planned"
            self.store.record_steps(job.signal_id, job.account, planned, first=first)
            steps = [
                (
                    StepRow(
                        job.signal_id, job.account, seq, kind, data, coid, first if seq == 0 else "planned", "", ""
                    ),
                    step,
                )
                for seq, ((kind, data, coid), step) in enumerate(zip(planned, plan, strict=True))
            ]
        done: list[str] = []
        coids: list[str] = []
        for row, step in steps:
            if step.request is not None:
                coids.append(step.request.client_order_id)
            if row.status in ("sent", "done"):
                done.append(f"{step.label} ({row.detail or row.status})")
                continue
            try:
                detail, order_id = await self._execute(job, row, step)
            except _Fail as exc:
                self.store.set_step(job.signal_id, job.account, row.seq, "failed", detail=str(exc))
                for later_row, _ in steps[steps.index((row, step)) + 1 :]:
                    self.store.set_step(job.signal_id, job.account, later_row.seq, "skipped", detail="not sent")
                summary = "; ".join([*done, f"{step.label}: {exc}"])
                if len(steps) > 1 and steps[-1][1] is not step:
                    summary += "; nothing after it was sent"
                status = SignalStatus.REJECTED if exc.code is ErrorCode.RISK_REJECTED else SignalStatus.FAILED
                self._finish_account(
                    job.signal_id, job.strategy.id, job.account, job.symbol, status, summary, exc.code, tuple(coids)
                )
                return
            if steps[-1][0] is not row:
                # (After the last step the account's outcome is written at once, which is what recovery reads.)
                self.store.set_step(
                    job.signal_id,
                    job.account,
                    row.seq,
                    "sent" if order_id else "done",
                    order_id=order_id,
                    detail=detail,
                )
            done.append(f"{step.label} ({detail})")
        self._finish_account(
            job.signal_id,
            job.strategy.id,
            job.account,
            job.symbol,
            SignalStatus.DONE,
            "; ".join(done),
            "",
            tuple(coids),
        )

    async def _execute(self, job: _Job, row: StepRow, step: Step) -> tuple[str, str]:
        """Run one step; returns (what happened, order id). Raises _Fail."""
        engine = self.engine
        if step.kind == "cancel":
            cancelled = await engine.cancel_all(job.account, step.symbol or None)
            return f"{len(cancelled)} cancelled", ""
        if step.kind == "flatten":
            try:
                orders = await engine.flatten(job.account)
            except Exception as exc:
                raise _Fail(ErrorCode.FAILED, f"flatten failed: {exc}") from None
            return f"{len(orders)} orders", ""
        if step.kind == "wait":
            await self._wait_position(job.account, step.symbol, step.expected)
            return "reached", ""
        assert step.request is not None
        req = step.request
        if row.status != "sending":
            self.store.set_step(job.signal_id, job.account, row.seq, "sending")
        self._remember_coid(req.client_order_id, job.signal_id)
        market = req.order_type is OrderType.MARKET and bool(step.symbol)
        try:
            order = await engine.place(req)
        except Exception as exc:
            engine.journal.record(
                "error",
                {"action": "webhook-place", "signal": job.signal_id, "error": str(exc)},
                account=job.account,
                ref=req.client_order_id,
            )
            raise _Fail(ErrorCode.FAILED, f"not placed: {exc}") from None
        if market and order.status is not OrderStatus.REJECTED:
            self._unsettled.setdefault((job.account, step.symbol), []).append(req.client_order_id)
        if order.status is OrderStatus.REJECTED:
            local = order.order_id.startswith("local-")
            code = ErrorCode.RISK_REJECTED if local else ErrorCode.BROKER_REJECTED
            raise _Fail(code, f"{'refused' if local else 'rejected by the broker'}: {order.reject_reason}")
        return f"order {order.order_id} {order.status.value.replace('_', ' ')}", order.order_id

    def _settled(self, account: str, coid: str) -> bool:
        """The market order ``coid`` is done and every fill of it has reached the book."""
        order = self.engine.order_by_client_id(account, coid)
        if order is None or order.status is OrderStatus.REJECTED:
            # None: the engine does not know the order by tterm's id (it answered with another
            # one); planning against the book as it stands beats holding the queue for 30 s.
            return True
        # The engine counts a fill the moment it ingests it (the bus, which wakes the wait, is a
        # loop pass or two behind): most alerts find the orders before them settled already.
        return not order.is_open and self.engine.filled_in_book(account, coid) >= order.filled_quantity

    async def _settle(self, account: str, symbol: str) -> None:
        """Before an alert is planned on (account, symbol): wait until the market orders the alerts
        before it sent there have filled and their fills are in the book, so the plan (a target's
        difference, a reversal) starts from the position they made, not from the one before them.
        A broker's fill arrives after its acknowledgement; without this wait an alert that follows
        quickly traded against a stale position (bench_hub at 500 alerts/s: reduce-only exits
        refused, targets skipped as already reached)."""
        key = (account, symbol)
        coids = self._unsettled.get(key)
        if not coids:
            return
        try:
            await self._wait_until(key, lambda: all(self._settled(account, c) for c in coids), "fill")
        except _Fail:
            self.engine.journal.record(
                "error",
                {
                    "action": "webhook-settle",
                    "orders": list(coids),
                    "error": f"no fill within {self.exit_fill_timeout:g} s; the next alert is planned "
                    "against the position as it stands",
                },
                account=account,
            )
        finally:
            self._unsettled.pop(key, None)

    def _remember_coid(self, coid: str, signal_id: str) -> None:
        """Map a client order id to its alert, forgetting old ones so the map stays bounded.

        An entry is kept while its alert is in flight and for the dedupe window after it was
        sent (``stale_after``: an alert older than that is refused as stale, so nothing can ask
        about its orders as a live repeat), and ``coid_limit`` entries at most. Idempotency never
        rests on this map: the store's UNIQUE dedup key refuses a repeated alert, and the client
        order ids are derived from the alert's id, so a resend carries the same id.
        """
        now = self._monotonic()
        self.coid_signal[coid] = signal_id
        self._coid_at[coid] = now
        born = self._coid_born
        born.append((now, coid))
        window = self.stale_after
        while born:
            at, old = born[0]
            over = len(born) > self.coid_limit
            if not over and now - at <= window:
                break
            sid = self.coid_signal.get(old)
            if not over and sid is not None and sid in self._pending:
                break  # still in flight: keep it (and everything after it) a while longer
            born.popleft()
            if self._coid_at.get(old) == at:  # not remembered again since (a resend after a restart)
                del self._coid_at[old]
                self.coid_signal.pop(old, None)

    async def _wait_position(self, account: str, symbol: str, expected: int) -> None:
        """Wait until the book shows ``expected`` for (account, symbol): the exit fills before the entry."""
        try:
            await self._wait_until(
                (account, symbol), lambda: self.engine.book.quantity(account, symbol) == expected, "exit"
            )
        except _Fail:
            held = self.engine.book.quantity(account, symbol)
            raise _Fail(
                ErrorCode.FAILED,
                f"the exit did not fill within {self.exit_fill_timeout:g} s ({symbol} is {held:+d}); entry not sent",
            ) from None

    async def _wait_until(self, key: tuple[str, str], reached: Callable[[], bool], what: str) -> None:
        """Wait until ``reached()``, re-checked on every engine event for ``key``; _Fail on timeout."""
        if reached():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waits = self._waits.setdefault(key, [])
        entry = (reached, fut)
        waits.append(entry)
        try:
            await asyncio.wait_for(fut, self.exit_fill_timeout)
        except TimeoutError:
            raise _Fail(ErrorCode.FAILED, f"no {what} within {self.exit_fill_timeout:g} s") from None
        finally:
            with contextlib.suppress(ValueError):
                waits.remove(entry)
            if not waits:
                self._waits.pop(key, None)

    async def _watch(self) -> None:
        """Wake position waits on every position or order event of their (account, symbol)."""
        while True:
            sub = self.engine.bus.subscribe("hub-watch", wants=(Position, Order, Quote, Fill))
            try:
                async for event in sub:
                    key = ("quote", event.symbol) if isinstance(event, Quote) else (event.account, event.symbol)
                    waits = self._waits.get(key)
                    if waits:
                        for check, fut in list(waits):
                            if not fut.done() and check():
                                fut.set_result(None)
                if not sub.overflowed:
                    return
                # Fell behind: re-check every wait against the book, then subscribe again.
                for waits in list(self._waits.values()):
                    for check, fut in list(waits):
                        if not fut.done() and check():
                            fut.set_result(None)
            finally:
                sub.close()

    # ================================================================== outcomes

    def _publish(self, outcome: SignalOutcome, *, journal: bool = True) -> None:
        self.recent.append(outcome)
        if journal:
            self.engine.journal.record("signal", outcome, account=outcome.account, ref=outcome.signal_id)
        self.engine.bus.publish(outcome)

    def _finish_account(
        self,
        sid: str,
        strategy: str,
        account: str,
        symbol: str,
        status: SignalStatus,
        summary: str,
        error: ErrorCode | str,
        coids: tuple[str, ...] = (),
    ) -> None:
        now = self._now()
        self.store.set_outcome(sid, account, status.value, summary, str(error), now)
        self._statuses.setdefault(sid, {})[account] = (status.value, str(error))
        self._publish(
            SignalOutcome(
                signal_id=sid,
                strategy=strategy,
                status=status,
                summary=summary,
                account=account,
                symbol=symbol,
                error=str(error),
                client_order_ids=coids,
                ts=now,
            )
        )
        pending = self._pending.get(sid)
        if pending is not None:
            pending.discard(account)
            if not pending:
                del self._pending[sid]
                accounts = self._targets.pop(sid, None)
                if accounts is None:
                    row = self.store.signal(sid)
                    accounts = [a for a, _ in row.targets] if row else [account]
                self._finish_signal(sid, strategy, symbol, accounts)

    def _finish_signal(self, sid: str, strategy: str, symbol: str, accounts: Iterable[str]) -> None:
        accounts = list(accounts)
        known = self._statuses.pop(sid, {})
        if all(a in known for a in accounts):
            outcomes = {a: (st, "", err) for a, (st, err) in known.items()}
        else:
            outcomes = self.store.outcomes(sid)
        statuses = [outcomes.get(a, ("failed", "", ""))[0] for a in accounts]
        if all(s == "skipped" for s in statuses):
            status = SignalStatus.SKIPPED
        elif all(s in ("done", "skipped") for s in statuses):
            status = SignalStatus.DONE
        elif all(s in ("rejected", "skipped") for s in statuses):
            status = SignalStatus.REJECTED
        else:
            status = SignalStatus.FAILED
        counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(accounts)} account(s)"
        errors = sorted({outcomes[a][2] for a in accounts if a in outcomes and outcomes[a][2]})
        self.store.set_signal_status(sid, status.value, summary, ",".join(errors))
        self.received_perf.pop(sid, None)
        self._publish(
            SignalOutcome(
                signal_id=sid,
                strategy=strategy,
                status=status,
                summary=summary,
                symbol=symbol,
                error=",".join(errors),
            )
        )

    # ================================================================== crash recovery

    async def recover(self) -> Recovery:
        """Finish what a previous run acknowledged: ask the broker about every step that was being
        sent, resume fresh alerts, mark stale ones failed."""
        stats = Recovery()
        now = self._now()
        for row in self.store.unfinished():
            signal = wire.decode(row.signal, Signal)
            stamp = row.alert_time or row.received_at
            fresh = (now - stamp).total_seconds() <= self.stale_after
            strategy = self.strategies.get(row.strategy)
            done = self.store.outcomes(row.id)
            accounts = [a for a, _ in row.targets]
            self._pending[row.id] = {a for a in accounts if a not in done}
            if not self._pending[row.id]:
                del self._pending[row.id]
                self._finish_signal(row.id, row.strategy, row.symbol, accounts)
                continue
            for index, (account, mult) in enumerate(row.targets):
                if account in done:
                    continue
                steps = self.store.steps(row.id, account)
                unknown = ""
                for st in steps:
                    if st.status != "sending":
                        continue
                    try:
                        found = await self._find_at_broker(account, st.client_order_id)
                    except Exception as exc:
                        unknown = f"could not ask the broker whether order {st.client_order_id} exists ({exc})"
                        break
                    if found is not None:
                        stats.found += 1
                        self.store.set_step(
                            row.id,
                            account,
                            st.seq,
                            "sent",
                            order_id=found.order_id,
                            detail=f"order {found.order_id} found at the broker after a restart",
                        )
                    else:
                        stats.not_found += 1
                        self.store.set_step(row.id, account, st.seq, "planned", detail="not at the broker")
                if unknown:
                    # Never resend blind: a person must look at the broker.
                    stats.failed += 1
                    self._finish_account(
                        row.id,
                        row.strategy,
                        account,
                        row.symbol,
                        SignalStatus.FAILED,
                        f"{unknown}; nothing resent, check the account",
                        ErrorCode.FAILED,
                    )
                    continue
                steps = self.store.steps(row.id, account)
                remaining = not steps or any(s.status == "planned" for s in steps)
                if not remaining:
                    stats.completed += 1
                    self._finish_account(
                        row.id,
                        row.strategy,
                        account,
                        row.symbol,
                        SignalStatus.DONE,
                        "completed before the hub restarted",
                        "",
                        tuple(s.client_order_id for s in steps if s.client_order_id),
                    )
                    continue
                if not fresh or strategy is None:
                    why = (
                        f"strategy {row.strategy!r} is no longer configured"
                        if strategy is None
                        else f"the alert is older than {self.stale_after:g} s"
                    )
                    for s in steps:
                        if s.status == "planned":
                            self.store.set_step(row.id, account, s.seq, "failed", detail="not sent after restart")
                    stats.failed += 1
                    self._finish_account(
                        row.id,
                        row.strategy,
                        account,
                        row.symbol,
                        SignalStatus.FAILED,
                        f"the hub stopped before this was done and {why}; not sent",
                        ErrorCode.FAILED,
                    )
                    continue
                if row.symbol:
                    self._ensure_quotes(row.symbol)
                self._enqueue(_Job(row.id, signal, strategy, account, index, Decimal(mult), row.symbol, resume=True))
                stats.resumed += 1
        self.recovery = stats
        if stats.total:
            self.engine.ingest(Notice(level="warning", text=f"hub restart: {stats.describe()}", source="hub"))
        return stats

    async def _find_at_broker(self, account: str, client_order_id: str) -> Order | None:
        acct = self.engine.account(account)
        broker = self.engine.brokers.get(acct.broker) if acct is not None else None
        if broker is None:
            return None
        try:
            return await broker.find_order(account, client_order_id)
        except Exception as exc:
            self.engine.journal.record(
                "error",
                {"action": "webhook-recover", "client_order_id": client_order_id, "error": str(exc)},
                account=account,
                ref=client_order_id,
            )
            raise

    # ================================================================== drift

    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self.drift_interval)
            try:
                self.check_drift()
            except Exception:
                log.exception("drift check failed")

    def check_drift(self) -> list[PositionDrift]:
        """Compare each target strategy's expected position with the actual one; raise an alarm
        (a PositionDrift event and a warning notice) when they disagree for ``drift_grace`` seconds
        with nothing queued, and clear it when they agree again."""
        now = self._monotonic()
        wanted: dict[tuple[str, str], tuple[int, list[str]]] = {}
        for strategy, account, symbol, qty in self.store.expected():
            total, names = wanted.get((account, symbol), (0, []))
            wanted[(account, symbol)] = (total + qty, [*names, strategy])
        events: list[PositionDrift] = []
        for (account, symbol), (expected, names) in wanted.items():
            key = (account, symbol)
            if self._busy.get(key) or (account, symbol) in self._waits:
                self._drift_since.pop(key, None)
                continue
            actual = self.engine.book.quantity(account, symbol)
            strategies = ",".join(names)
            if actual == expected:
                self._drift_since.pop(key, None)
                if key in self._drifted:
                    self._drifted.discard(key)
                    events.append(PositionDrift(strategies, account, symbol, expected, actual))
                    self.engine.ingest(
                        Notice(
                            level="info",
                            text=f"{account} {symbol} is back at the expected {expected:+d}",
                            account=account,
                            source="hub",
                        )
                    )
                continue
            since = self._drift_since.setdefault(key, now)
            if key in self._drifted or now - since < self.drift_grace:
                continue
            self._drifted.add(key)
            events.append(PositionDrift(strategies, account, symbol, expected, actual))
            self.engine.ingest(
                Notice(
                    level="warning",
                    text=(
                        f"position drift in {account} {symbol}: strategy {strategies} expects {expected:+d}, "
                        f"the account holds {actual:+d}"
                    ),
                    account=account,
                    source="hub",
                )
            )
        for event in events:
            self.engine.journal.record("notice", event, account=event.account, ref="drift")
            self.engine.bus.publish(event)
        return events

    @property
    def drifted(self) -> set[tuple[str, str]]:
        return set(self._drifted)
