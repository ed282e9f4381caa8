"""Keys one at a time: each key goes to the widget that has focus once the previous key is done.

Why: Textual forwards every key to the focused widget the moment the app reads it, and a
widget's bindings are looked up when the key bubbles back to the app, each step through a
message queue. When keys arrive together (a paste without bracketed paste, a macro pad, a slow
SSH link), the whole burst is forwarded to the watchlist before ``:`` has opened the command
bar, and a focus change made by a binding (``focus()`` is itself queued) lands after later keys
were dispatched: ``:buy 2 MES mkt`` fired the watchlist's ``b`` (buy) hotkey, ``:xk`` removed a
symbol, ``F3 Tab Tab 5`` lost the 5.

How: the app keeps the keys (and pastes) it reads in a backlog and dispatches the next one only
when the previous one is done. A key is done when

1. a marker has followed it from the widget it was sent to through each ancestor's queue (the
   path it bubbles along) to the app, and gone round that path again while the messages the
   key's handlers posted there (a ``Trade`` from the buy hotkey, an ``Input.Submitted``) were
   still arriving, at least twice and at most :data:`MAX_PASSES` times;
2. it has gone twice round the app's own queue, so focus changes its handlers queued happened;
3. if the key changed the screen, that screen has been drawn (mounted, focus set);
4. if a handler started work that will show a screen or move the focus later (an order's
   confirmation after its pre-trade check, the add-symbol prompt), that work took a *hold*
   (:meth:`OrderedKeys.hold_keys`) and either its screen appeared or it released the hold.

A key whose handling never finishes (a widget removed under it) holds the rest back for at most
:data:`KEY_STALL_SECONDS`, work that holds keys for at most :data:`KEY_HOLD_SECONDS`; an app
priority key (the kill switch, quit) pressed while only a hold is pending does not wait for it.

A widget's bindings are looked up when its key has bubbled back to the app, against the focus of
that moment. If the screen or the focus changed on the way (a worker pushed a confirmation while
the key was in flight), the key is dropped: an Enter typed into the command bar must not answer
a dialog that appeared meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual import events, log

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.message_pump import MessagePump

KEY_STALL_SECONDS = 1.0
"""The longest one key's own handling may hold back the keys after it."""

KEY_HOLD_SECONDS = 3.0
"""The longest work a key started (a pre-trade check before its confirmation) may hold them back."""

MAX_PASSES = 4
"""How many times the marker goes round the key's path while messages keep arriving there."""


@dataclass(slots=True, eq=False)
class _Flight:
    """The key being handled."""

    seq: int
    event: events.Event
    screen: Any
    focused: Any
    path: list[MessagePump]
    passes: int = 0
    busy: bool = False
    holds: set[int] = field(default_factory=set)
    waiting: bool = False  # steps 1-3 are over; only holds are left


class OrderedKeys:
    """App mixin (put it before ``App`` in the bases): dispatch keys and pastes in order, one at a time."""

    _key_backlog: deque[events.Event]
    _key_flight: _Flight | None

    def _ordered_keys_init(self) -> None:
        self._key_backlog = deque()
        self._key_flight = None
        self._key_seqs = itertools.count(1)
        self._key_tokens = itertools.count(1)
        self._key_watchdog: asyncio.TimerHandle | None = None
        self._key_subscribed = False
        #: Keys dispatched, released by the watchdog, dropped (for tests and the bench).
        self.keys_dispatched = 0
        self.keys_stalled = 0
        self.keys_dropped = 0

    # ------------------------------------------------------------------ the backlog

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            if not hasattr(self, "_key_backlog"):
                self._ordered_keys_init()
            flight = self._key_flight
            if flight is not None and flight.waiting and not self._key_backlog and self._is_urgent(event):
                self._key_done(flight.seq)  # the kill switch does not wait for a pre-trade check
            self._key_backlog.append(event)
            if self._key_flight is None:
                await self._dispatch_next_key()
            return
        # A mixin for App: super() is Textual's App, which mypy cannot see from the mixin.
        await super().on_event(event)  # type: ignore[misc]

    def _is_urgent(self, event: events.Event) -> bool:
        """An app priority binding (kill switch, quit): it may pass work that holds the keys."""
        if not isinstance(event, events.Key):
            return False
        app: Any = self
        try:
            chain = app.screen._binding_chain
        except Exception:
            return False
        return any(
            binding.priority for node, bindings in chain if node is app
            for binding in bindings.key_to_bindings.get(event.key, ())
        )  # fmt: skip

    async def _dispatch_next_key(self) -> None:
        app: Any = self
        while self._key_backlog and self._key_flight is None and app.is_running:
            event = self._key_backlog.popleft()
            screen = app.screen
            target: DOMNode = app.focused or screen
            flight = _Flight(next(self._key_seqs), event, screen, app.focused, [app])
            self._key_flight = flight
            if not self._key_subscribed:
                self._key_subscribed = True
                app.screen_change_signal.subscribe(app, self._key_screen_changed)
            # Textual's own handling: priority bindings, else forward to the focused widget.
            await super().on_event(event)  # type: ignore[misc]  # mixin, as above
            self.keys_dispatched += 1
            if self._key_flight is not flight:
                continue  # finished already (the app is closing)
            flight.path = _path(target) if event.is_forwarded else [app]
            self._arm_watchdog(flight.seq, KEY_STALL_SECONDS)
            self._key_pass(flight.seq, 0)

    # ------------------------------------------------------------------ steps 1 and 2

    def _key_pass(self, seq: int, index: int) -> None:
        """Run in ``path[index - 1]``'s pump (or directly for 0): hand the marker to the next pump."""
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        app: Any = self
        path = flight.path
        while index < len(path):
            node = path[index]
            if node is app:
                if app.call_later(self._key_after_pass, seq):
                    return
                break
            if node.call_later(self._key_at, seq, index):
                return
            index += 1  # the widget is closing: its queue is gone, go on with its parent
        self._key_after_pass(seq)

    def _key_at(self, seq: int, index: int) -> None:
        """The marker reached ``path[index]``: note whether more messages wait there, pass it on."""
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        node: Any = flight.path[index]
        if node._message_queue.qsize():
            flight.busy = True
        self._key_pass(seq, index + 1)

    def _key_after_pass(self, seq: int) -> None:
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        flight.passes += 1
        if flight.passes < MAX_PASSES and (flight.passes < 2 or flight.busy):
            flight.busy = False
            self._key_pass(seq, 0)
            return
        self._key_settle(seq, flight.screen, 2)

    def _key_settle(self, seq: int, screen: Any, rounds: int) -> None:
        """Round the app's queue: let the focus changes the key's handlers queued happen first."""
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        app: Any = self
        if rounds > 1 and app.call_later(self._key_settle, seq, screen, rounds - 1):
            return
        current = app.screen if app.screen_stack else None
        # Step 3: the key changed the screen: wait for it to be drawn (mounted, focus set), then settle.
        if (
            current is not None
            and current is not screen
            and current.call_after_refresh(self._key_settle, seq, current, 2)
        ):
            return
        if current is not None and current is not flight.screen:
            self._key_done(seq)  # a screen came up (a confirmation): it is the key's visible result
            return
        self._key_check_holds(seq)

    # ------------------------------------------------------------------ step 4: holds

    def hold_keys(self) -> int:
        """Keep the keys after the one being handled waiting: for work it started that will show a
        screen or move the focus. Returns a token for :meth:`release_keys` (0: no key in flight)."""
        if not hasattr(self, "_key_backlog"):
            self._ordered_keys_init()
        flight = self._key_flight
        if flight is None or (flight.waiting and not flight.holds):
            return 0
        token = next(self._key_tokens)
        flight.holds.add(token)
        return token

    def release_keys(self, token: int) -> None:
        """The held work is over (or has shown its screen)."""
        flight = self._key_flight
        if not token or flight is None or token not in flight.holds:
            return
        flight.holds.discard(token)
        if flight.waiting and not flight.holds:
            app: Any = self
            app.call_later(self._key_check_holds, flight.seq)

    def _key_check_holds(self, seq: int) -> None:
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        if flight.holds:
            if not flight.waiting:
                flight.waiting = True
                self._arm_watchdog(seq, KEY_HOLD_SECONDS)
            return
        self._key_done(seq)

    def _key_screen_changed(self, screen: Any) -> None:
        """A screen came up while a hold was pending (the confirmation it was for): the key is done."""
        flight = self._key_flight
        if flight is not None and flight.waiting:
            screen.call_after_refresh(self._key_done, flight.seq)

    # ------------------------------------------------------------------ done

    def _arm_watchdog(self, seq: int, seconds: float) -> None:
        if self._key_watchdog is not None:
            self._key_watchdog.cancel()
        self._key_watchdog = asyncio.get_running_loop().call_later(seconds, self._key_stalled, seq)

    def _key_stalled(self, seq: int) -> None:
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        self.keys_stalled += 1
        log.warning(f"key {getattr(flight.event, 'key', 'paste')!r} took too long to handle; the next keys go on")
        app: Any = self
        app.call_later(self._key_done, seq)

    def _key_done(self, seq: int) -> None:
        flight = self._key_flight
        if flight is None or flight.seq != seq:
            return
        if self._key_watchdog is not None:
            self._key_watchdog.cancel()
            self._key_watchdog = None
        self._key_flight = None
        if self._key_backlog:
            app: Any = self
            app.call_later(self._dispatch_next_key)

    # ------------------------------------------------------------------ the binding lookup

    async def _on_key(self, event: events.Key) -> None:
        """A key bubbled back to the app: act on it only in the context it was sent to."""
        flight = getattr(self, "_key_flight", None)
        if flight is None or flight.event is not event:
            return
        app: Any = self
        if app.screen is not flight.screen or app.focused is not flight.focused:
            self.keys_dropped += 1
            log.warning(f"key {event.key!r} dropped: the screen or focus changed while it was handled")
            event.prevent_default()  # App._on_key (the binding lookup) does not run


def _path(node: DOMNode) -> list[MessagePump]:
    """``node`` and its ancestors up to the app: the queues a key bubbles through."""
    out: list[MessagePump] = []
    current: Any = node
    while current is not None:
        out.append(current)
        current = current._parent
    return out


__all__ = ["KEY_HOLD_SECONDS", "KEY_STALL_SECONDS", "MAX_PASSES", "OrderedKeys"]
