"""tterm's own flatten: cancel working orders, close positions, lock the account; every step journaled.

The risk monitor decides *when* (a firm line, the cutoff, a news window, one of your limits);
:class:`Flattener` does it, the same way for every rule, on the engine's event loop. A failure at
any step is journaled and shown, and the next step still runs: a failed cancel must not keep a
position open, and a failed flatten still locks the account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from tterm.core.models import Notice, NoticeLevel

if TYPE_CHECKING:
    from tterm.core.engine import Engine
    from tterm.risk.guard import GuardAction, Guards

log = logging.getLogger(__name__)


class Flattener:
    """Runs flattens as tasks, one per account and scope (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running(self) -> list[asyncio.Task[None]]:
        return [t for t in self._tasks.values() if not t.done()]

    def busy(self, account: str, symbol: str | None = None) -> bool:
        task = self._tasks.get(_key(account, symbol))
        return task is not None and not task.done()

    def start(
        self,
        account: str,
        reason: str,
        *,
        exposed: bool = True,
        symbol: str | None = None,
        lock: bool = True,
        then: Callable[[], object] | None = None,
    ) -> asyncio.Task[None] | None:
        """Start flattening ``account`` (or one ``symbol`` in it); None without an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("risk: no event loop to flatten %s (%s)", account, reason)
            self.engine.journal.record(
                "error", {"action": "risk_flatten", "error": "no running event loop", "reason": reason}, account=account
            )
            return None
        key = _key(account, symbol)
        task = loop.create_task(self._run(account, reason, exposed, symbol, lock, then), name=f"risk-flatten-{key}")
        self._tasks[key] = task
        return task

    async def _run(
        self,
        account: str,
        reason: str,
        exposed: bool,
        symbol: str | None,
        lock: bool,
        then: Callable[[], object] | None,
    ) -> None:
        engine = self.engine
        if exposed:
            try:
                cancelled = await engine.cancel_all(account, symbol)
                self._step(account, "cancel_all", cancelled=[o.order_id for o in cancelled], symbol=symbol)
            except Exception as exc:
                log.exception("risk: cancel_all %s failed", account)
                engine.journal.record("error", {"action": "risk_cancel_all", "error": str(exc)}, account=account)
            try:
                orders = await engine.flatten(account, symbol)
                self._step(account, "flatten", orders=[o.order_id for o in orders], symbol=symbol)
            except Exception as exc:
                log.exception("risk: flatten %s failed", account)
                engine.journal.record("error", {"action": "risk_flatten", "error": str(exc)}, account=account)
                engine.ingest(
                    Notice(
                        level="error", text=f"{account}: tterm could not flatten: {exc}", account=account, source="risk"
                    )
                )
        if lock:
            try:
                await engine.lock(account, reason, by="risk")
            except Exception as exc:
                log.exception("risk: lock %s failed", account)
                engine.journal.record("error", {"action": "risk_lock", "error": str(exc)}, account=account)
        if then is not None:
            then()

    def _step(self, account: str, step: str, **data: object) -> None:
        payload: dict[str, object] = {"source": "risk", "event": "auto_flatten_step", "step": step}
        payload.update({k: v for k, v in data.items() if v is not None})
        self.engine.journal.record("notice", payload, account=account, ref="risk")


class GuardActor:
    """Carries out what :class:`~tterm.risk.guard.Guards` asks for: your limits and news rules.

    Each action acts once per trade date (a lock on a line reached while flat included) and again
    only if exposure is back ``retry_seconds`` after the last flatten; warnings are shown once.
    """

    def __init__(
        self,
        engine: Engine,
        flattener: Flattener,
        guards: Guards,
        *,
        notice: Callable[[NoticeLevel, str, str], None],
        reevaluate: Callable[[str], None],
        retry_seconds: float,
    ) -> None:
        self.engine = engine
        self.flattener = flattener
        self.guards = guards
        self._notice = notice
        self._reevaluate = reevaluate
        self._retry = timedelta(seconds=retry_seconds)
        #: (account, action key, trade date) -> when it last acted.
        self._done: dict[tuple[str, str, date], datetime] = {}

    def act(
        self,
        account: str,
        act: GuardAction,
        now: datetime,
        trade_date: date,
        *,
        exposed: bool,
        firm_enforcing: bool,
    ) -> None:
        if act.kind == "warn":
            if self.guards.warn_once(account, act.key):
                self._notice("warning", f"{account}: {act.text} (warning only: nothing is flattened)", account)
            return
        if firm_enforcing:
            return  # the firm-rule flatten already closes everything and locks
        key = (account, act.key, trade_date)
        symbol = act.symbol or None
        lock = act.kind == "flatten_lock"
        if symbol is not None:
            exposed = any(p.symbol == symbol for p in self.engine.positions(account))
        done = self._done.get(key)
        if not exposed:
            held = self.engine.lock_for(account)
            if not lock or done is not None or (held is not None and held.locked):
                return  # nothing to close (a lock still comes once, on a line reached while flat)
        elif self.flattener.busy(account, symbol) or (done is not None and now - done < self._retry):
            return
        retry = done is not None
        self._done[key] = now
        if len(self._done) > 4096:
            self._done = {k: v for k, v in self._done.items() if k[2] == trade_date}
        self.engine.journal.record(
            "notice",
            {
                "source": "risk",
                "event": "auto_flatten_retry" if retry else "auto_flatten",
                "rule": act.rule,
                "yours": act.rule.startswith("yours"),
                "reason": act.text,
                "symbol": act.symbol,
                "lock": lock,
                "trade_date": trade_date,
                "positions": [
                    {"symbol": p.symbol, "quantity": p.quantity, "avg_price": p.avg_price, "mark": p.mark}
                    for p in self.engine.book.open_positions(account)
                ],
            },
            account=account,
            ref="risk",
        )
        if not retry:
            if symbol:
                what = f"flattening {symbol} in"
            else:
                what = ("flattening and locking" if exposed else "locking") if lock else "flattening"
            self._notice("warning", f"{account}: tterm is {what} the account — {act.text}", account)
        self.flattener.start(
            account,
            act.text,
            exposed=exposed,
            symbol=symbol,
            lock=lock,
            then=lambda: self._reevaluate(account),
        )


def _key(account: str, symbol: str | None) -> str:
    return f"{account}:{symbol}" if symbol else account
