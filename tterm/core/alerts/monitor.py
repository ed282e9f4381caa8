"""The alert monitor: an engine processor (like the risk monitor) that holds the price alerts.

It sees every quote as the engine ingests it; an armed alert whose condition holds fires once:
its new state (``fired``, with the price and time) is written to the journal's state table and a
``alert`` journal row in the same transaction, committed at once, before anything else happens —
so after a crash or a restart a fired alert is never fired again, and an armed one is still armed
(it fires on the first quote that meets it). Then an :class:`AlertFired` is published on the bus
(the terminal shows a toast and rings the bell), and its webhook-out or command, if it names one,
runs in the background; what that did (or why it failed) is journaled, and a failure is also a
notice.

The engine streams quotes for every armed alert's contract (reference-counted like any
subscription) from the moment it is created or loaded, and lets go when it fires or is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tterm.core.alerts.actions import AlertActionError, AlertActions
from tterm.core.alerts.model import (
    Alert,
    AlertError,
    AlertField,
    AlertFired,
    AlertOp,
    AlertSpec,
    AlertState,
    side_of,
)
from tterm.core.models import ConnectionState, ConnectionStatus, ModelError, Notice, Quote

if TYPE_CHECKING:
    from tterm.core.engine import Engine

log = logging.getLogger(__name__)

STATE_KEY = "engine.alerts"
#: The most alerts that may be armed at once (each one is a quote subscription).
MAX_ARMED = 500
#: Fired alerts kept in the list (oldest dropped first); the journal keeps every one.
MAX_FIRED = 200


def _to_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.alert_id,
        "symbol": a.symbol,
        "listed": a.listed,
        "field": a.field.value,
        "op": a.op.value,
        "price": str(a.price),
        "state": a.state.value,
        "side": a.side,
        "webhook": a.webhook,
        "command": a.command,
        "note": a.note,
        "source": a.source,
        "created_at": a.created_at.isoformat(),
        "fired_at": a.fired_at.isoformat() if a.fired_at else None,
        "fired_price": str(a.fired_price) if a.fired_price is not None else None,
    }


def _from_json(d: dict[str, Any]) -> Alert:
    return Alert(
        alert_id=int(d["id"]),
        symbol=str(d["symbol"]),
        listed=str(d.get("listed", "")),
        field=AlertField(d.get("field", "last")),
        op=AlertOp(d["op"]),
        price=Decimal(d["price"]),
        state=AlertState(d.get("state", "armed")),
        side=int(d.get("side", 0)),
        webhook=str(d.get("webhook", "")),
        command=str(d.get("command", "")),
        note=str(d.get("note", "")),
        source=str(d.get("source", "")),
        created_at=datetime.fromisoformat(d["created_at"]),
        fired_at=datetime.fromisoformat(d["fired_at"]) if d.get("fired_at") else None,
        fired_price=Decimal(d["fired_price"]) if d.get("fired_price") is not None else None,
    )


class AlertMonitor:
    """The engine's price alerts (see the module docstring)."""

    def __init__(self, engine: Engine, *, actions: AlertActions | None = None) -> None:
        self.engine = engine
        self.actions = actions or AlertActions()
        self._alerts: dict[int, Alert] = {}
        self._by_symbol: dict[str, set[int]] = {}
        self._next_id = 1
        self._subscribed: set[str] = set()
        #: Contracts of armed alerts no broker could resolve yet (tried again when one connects).
        self._waiting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = False

    # ================================================================== lifecycle

    def configure(self, actions: AlertActions) -> None:
        """The configured webhooks and commands (the runtime sets them from ``[alerts]``)."""
        self.actions = actions

    def load(self) -> None:
        """Read the alerts back from the journal's state table (the engine's start calls this)."""
        if self._loaded:
            return
        self._loaded = True
        saved = self.engine.journal.get_state(STATE_KEY, None) or {}
        self._next_id = int(saved.get("next_id", 1))
        for raw in saved.get("alerts", []):
            try:
                alert = _from_json(raw)
            except (KeyError, ValueError, TypeError) as exc:
                self.engine.journal.record("error", {"action": "alert_load", "error": repr(exc), "alert": raw})
                continue
            self._alerts[alert.alert_id] = alert
            if alert.armed:
                self._by_symbol.setdefault(alert.symbol, set()).add(alert.alert_id)
            self._next_id = max(self._next_id, alert.alert_id + 1)

    async def start(self) -> None:
        """Stream quotes for the armed alerts (the brokers are connected by now)."""
        self.load()
        await self._resolve_and_watch(sorted(self._by_symbol), notice=True)

    async def _resolve_and_watch(self, symbols: list[str], *, notice: bool) -> None:
        for symbol in symbols:
            try:
                await self.engine.find_instrument(symbol)
            except ModelError as exc:
                if notice:
                    self._notice("warning", f"alerts on {symbol} wait for a broker that knows it: {exc}")
                self._waiting.add(symbol)
                continue
            self._waiting.discard(symbol)
            await self._watch(symbol)

    async def close(self) -> None:
        """Wait briefly for webhooks and commands in flight; then cancel them."""
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.actions.timeout + 1)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def settle(self) -> None:
        """Wait for the announcements and actions in flight (tests, one-shot commands)."""
        await asyncio.sleep(0)  # the announcements scheduled with call_soon
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ================================================================== commands

    def list(self) -> list[Alert]:
        """Armed alerts first (by id), then fired ones (newest first)."""
        armed = sorted((a for a in self._alerts.values() if a.armed), key=lambda a: a.alert_id)
        fired = sorted((a for a in self._alerts.values() if not a.armed), key=lambda a: -a.alert_id)
        return armed + fired

    def get(self, alert_id: int) -> Alert | None:
        return self._alerts.get(alert_id)

    async def add(self, spec: AlertSpec, *, source: str = "", replaces: int | None = None) -> Alert:
        """Create an alert (raises AlertError, with nothing created, for bad input).

        ``replaces`` names an alert this one takes the place of (an edit): it is removed once the
        new one is created, so a bad edit leaves the old alert as it was.
        """
        self.load()
        if not isinstance(spec.price, Decimal) or not spec.price.is_finite() or spec.price <= 0:
            raise AlertError(f"alert: the price must be positive, got {spec.price}")
        if replaces is not None and replaces not in self._alerts:
            raise AlertError(f"alert: no alert #{replaces} to replace")
        try:
            self.actions.check(spec.webhook, spec.command)
        except ValueError as exc:
            raise AlertError(f"alert: {exc}") from None
        if len(spec.note) > 200:
            raise AlertError("alert: the note is longer than 200 characters")
        try:
            inst = await self.engine.find_instrument(spec.symbol)
        except ModelError as exc:
            raise AlertError(f"alert: {exc}") from None
        try:
            price = inst.round_price(spec.price, "reject")
        except ModelError as exc:
            raise AlertError(f"alert: {exc}") from None
        armed = sum(1 for a in self._alerts.values() if a.armed) - (
            1 if replaces is not None and self._alerts[replaces].armed else 0
        )
        if armed >= MAX_ARMED:
            raise AlertError(f"alert: {MAX_ARMED} alerts are armed already; remove some first ('alerts')")
        quote = self.engine.quote(inst.symbol)
        value = spec.field.of(quote) if quote is not None else None
        alert = Alert(
            alert_id=self._next_id,
            symbol=inst.symbol,
            listed=spec.symbol if spec.symbol != inst.symbol else "",
            op=spec.op,
            price=price,
            field=spec.field,
            side=side_of(value, price) if value is not None and spec.op is AlertOp.CROSSES else 0,
            webhook=spec.webhook,
            command=spec.command,
            note=spec.note,
            source=source,
            created_at=self.engine._now(),
        )
        self._next_id += 1
        self._alerts[alert.alert_id] = alert
        self._by_symbol.setdefault(alert.symbol, set()).add(alert.alert_id)
        self._journal("created", alert, replaces=replaces)
        self._save()
        self.engine.journal.flush()
        self.engine.bus.publish(alert)
        if replaces is not None:
            self._remove(replaces, why=f"replaced by #{alert.alert_id}")
        await self._watch(alert.symbol)
        if quote is not None:
            self._check(alert.symbol, quote)  # a condition that already holds fires now
        return self._alerts.get(alert.alert_id, alert)

    async def remove(self, alert_id: int) -> Alert:
        """Remove an alert (armed or fired); AlertError when there is none with that number."""
        self.load()
        if alert_id not in self._alerts:
            known = ", ".join(f"#{i}" for i in sorted(self._alerts)) or "none"
            raise AlertError(f"alert rm: no alert #{alert_id} (alerts: {known})")
        return self._remove(alert_id, why="removed")

    def _remove(self, alert_id: int, *, why: str) -> Alert:
        alert = self._alerts.pop(alert_id)
        was_armed = alert.armed
        self._disarm(alert)
        gone = replace(alert, state=AlertState.REMOVED)
        self._journal("removed", gone, why=why, was=alert.state.value)
        self._save()
        self.engine.journal.flush()
        self.engine.bus.publish(gone)
        if was_armed:
            self._release_soon(alert.symbol)
        return gone

    # ================================================================== the processor

    def on_event(self, event: Any) -> None:
        """Check the armed alerts of a quote's contract; a fault is journaled, never raised."""
        if type(event) is ConnectionStatus and event.state is ConnectionState.CONNECTED and self._waiting:
            waiting = sorted(s for s in self._waiting if s in self._by_symbol)
            self._waiting.clear()
            self._spawn(self._resolve_and_watch(waiting, notice=False))
            return
        if type(event) is not Quote or event.symbol not in self._by_symbol:
            return
        try:
            self._check(event.symbol, event)
        except Exception as exc:
            log.exception("alert check failed on %r", event)
            self.engine.journal.record("error", {"action": "alerts", "error": repr(exc)})

    def _check(self, symbol: str, quote: Quote) -> None:
        changed = False
        for alert_id in sorted(self._by_symbol.get(symbol, ())):
            alert = self._alerts[alert_id]
            value = alert.field.of(quote)
            if value is None:
                continue
            hit, side = alert.evaluate(value)
            if hit:
                self._fire(alert, value)
            elif side != alert.side:
                self._alerts[alert_id] = replace(alert, side=side)
                changed = True
        if changed:
            self._save()

    def _fire(self, alert: Alert, value: Decimal) -> None:
        now = self.engine._now()
        fired = alert.fired(value, now)
        self._alerts[alert.alert_id] = fired
        self._disarm(alert)
        text = f"ALERT #{alert.alert_id}: {alert.describe()} — {alert.field.value} {value}"
        if alert.note:
            text += f" ({alert.note})"
        event = AlertFired(alert=fired, price=value, text=text, ts=now)
        self._journal("fired", fired, price=value, text=text)
        self._trim_fired()
        self._save()
        # Durable before anyone hears of it: a restart must find it fired, never fire it again.
        self.engine.journal.flush()
        self._soon(lambda: self._announce(event))
        self._release_soon(alert.symbol)

    def _announce(self, event: AlertFired) -> None:
        self.engine.bus.publish(event.alert)
        self.engine.bus.publish(event)
        alert = event.alert
        if alert.webhook:
            self._spawn(self._act("webhook", alert.webhook, event))
        if alert.command:
            self._spawn(self._act("command", alert.command, event))

    async def _act(self, kind: str, name: str, event: AlertFired) -> None:
        alert = event.alert
        try:
            if kind == "webhook":
                result = await self.actions.post(name, event)
            else:
                result = await self.actions.run(name, event)
        except AlertActionError as exc:
            self._journal("action_failed", alert, action=kind, name=name, error=str(exc))
            self.engine.ingest(
                Notice(level="error", text=f"alert #{alert.alert_id}: {exc}", source="alerts", ts=self.engine._now())
            )
            return
        except Exception as exc:  # never lost: journaled and shown
            log.exception("alert %s %s failed", kind, name)
            self._journal("action_failed", alert, action=kind, name=name, error=repr(exc))
            self.engine.ingest(Notice(level="error", text=f"alert #{alert.alert_id}: {kind} {name} failed: {exc}",
                                      source="alerts", ts=self.engine._now()))  # fmt: skip
            return
        self._journal("action_done", alert, action=kind, name=name, result=result)

    # ================================================================== internals

    def _disarm(self, alert: Alert) -> None:
        ids = self._by_symbol.get(alert.symbol)
        if ids is not None:
            ids.discard(alert.alert_id)
            if not ids:
                del self._by_symbol[alert.symbol]

    def _trim_fired(self) -> None:
        fired = sorted(a.alert_id for a in self._alerts.values() if not a.armed)
        for alert_id in fired[: max(0, len(fired) - MAX_FIRED)]:
            del self._alerts[alert_id]

    async def _watch(self, symbol: str) -> None:
        if symbol in self._subscribed or symbol not in self._by_symbol:
            return
        self._subscribed.add(symbol)
        await self.engine.subscribe([symbol])

    def _release_soon(self, symbol: str) -> None:
        if symbol in self._by_symbol or symbol not in self._subscribed:
            return
        self._subscribed.discard(symbol)

        async def release() -> None:
            if symbol not in self._by_symbol:
                await self.engine.unsubscribe([symbol])
            else:  # a new alert on it arrived meanwhile
                self._subscribed.add(symbol)

        self._spawn(release())

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _soon(self, fn: Any) -> None:
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:
            fn()

    def _save(self) -> None:
        self.engine.journal.set_state(
            STATE_KEY, {"next_id": self._next_id, "alerts": [_to_json(a) for a in self._alerts.values()]}
        )

    def _journal(self, event: str, alert: Alert, **extra: Any) -> None:
        self.engine.journal.record(
            "alert",
            {"event": event, "alert": _to_json(alert), "text": alert.describe(), **extra},
            ref=f"alert-{alert.alert_id}",
        )

    def _notice(self, level: str, text: str) -> None:
        notice = Notice(level=level, text=text, source="alerts", ts=self.engine._now())  # type: ignore[arg-type]
        self._soon(lambda: self.engine.ingest(notice))
