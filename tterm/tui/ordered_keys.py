"""Keys one at a time: each key goes to the widget that has focus once the previous key is done.

Why: Textual forwards every key to the focused widget the moment the app reads it, and a
widget's bindings are looked up when the key bubbles back to the app, each step through a
message queue. When keys arrive together (a paste without bracketed paste, a macro pad, a slow
SSH link), the whole burst is forwarded to the watchlist before ``:`` has opened the command
bar, and a focus change made by a binding (``focus()`` is itself queued) lands after later keys
were dispatched: ``:buy 2 MES mkt`` fired the watchlist's ``b`` (buy) hotkey, ``:xk`` removed a
symbol, ``F3 Tab Tab 5`` lost the 5.

How: the app keeps the keys (and pastes) it reads in a backlog and dispatches the next one only
when the previous one has been handled all the way: a marker follows the key from the widget it
was sent to, through each ancestor's queue (the path the key bubbles along), to the app, and then
twice round the app's own queue, so focus changes its handlers queued have happened. If the key
pushed or popped a screen, the marker also waits for that screen's first refresh (its widgets
mounted and focused). A key whose handling never finishes (a widget removed under it) holds the
rest back for at most :data:`KEY_STALL_SECONDS`.

A widget's bindings are looked up when its key has bubbled back to the app, against the focus of
that moment. If the screen or the focus changed on the way (a worker pushed a confirmation while
the key was in flight), the key is dropped: an Enter typed into the command bar must not answer
a dialog that appeared meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from textual import events, log

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.message_pump import MessagePump

KEY_STALL_SECONDS = 1.0
"""The longest one key's handling may hold back the keys after it."""


class OrderedKeys:
    """App mixin (put it before ``App`` in the bases): dispatch keys and pastes in order, one at a time."""

    _key_backlog: deque[events.Event]
    _key_busy: int
    _key_seq: int
    _key_watchdog: asyncio.TimerHandle | None

    def _ordered_keys_init(self) -> None:
        self._key_backlog = deque()
        self._key_busy = 0
        self._key_seq = 0
        self._key_watchdog = None
        self._key_context: tuple[events.Event, Any, Any] | None = None
        #: Keys dispatched and keys released by the watchdog (for tests and the bench).
        self.keys_dispatched = 0
        self.keys_stalled = 0
        self.keys_dropped = 0

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            if not hasattr(self, "_key_backlog"):
                self._ordered_keys_init()
            self._key_backlog.append(event)
            if not self._key_busy:
                await self._dispatch_next_key()
            return
        await super().on_event(event)  # type: ignore[misc]

    async def _dispatch_next_key(self) -> None:
        app: Any = self
        while self._key_backlog and not self._key_busy and app.is_running:
            event = self._key_backlog.popleft()
            screen = app.screen
            target: DOMNode = app.focused or screen
            self._key_context = (event, screen, app.focused)
            # Textual's own handling: priority bindings, else forward to the focused widget.
            await super().on_event(event)  # type: ignore[misc]
            self.keys_dispatched += 1
            self._key_seq += 1
            seq = self._key_busy = self._key_seq
            loop = asyncio.get_running_loop()
            self._key_watchdog = loop.call_later(KEY_STALL_SECONDS, self._key_stalled, seq)
            path = _path(target) if event.is_forwarded else [app]
            self._key_step(seq, path, screen)

    async def _on_key(self, event: events.Key) -> None:
        """A key bubbled back to the app: act on it only in the context it was sent to."""
        context = self._key_context
        if context is None or context[0] is not event:
            return
        app: Any = self
        _, screen, focused = context
        if app.screen is not screen or app.focused is not focused:
            self.keys_dropped += 1
            log.warning(f"key {event.key!r} dropped: the screen or focus changed while it was handled")
            event.prevent_default()  # App._on_key (the binding lookup) does not run

    def _key_step(self, seq: int, path: list[MessagePump], screen: Any) -> None:
        """Run in each pump of ``path`` in turn, after the key it was queued behind."""
        if seq != self._key_busy:
            return
        app: Any = self
        while path:
            node, rest = path[0], path[1:]
            if node is app:
                if app.call_later(self._key_settle, seq, screen, 2):
                    return
                break
            if node.call_later(self._key_step, seq, rest, screen):
                return
            path = rest  # the widget is closing: its queue is gone, go on with its parent
        self._key_done(seq)

    def _key_settle(self, seq: int, screen: Any, rounds: int) -> None:
        """Round the app's queue: let the focus changes the key's handlers queued happen first."""
        if seq != self._key_busy:
            return
        app: Any = self
        if rounds > 1 and app.call_later(self._key_settle, seq, screen, rounds - 1):
            return
        current = app.screen if app.screen_stack else None
        # The key changed the screen: wait for it to be drawn (mounted, focus set), then settle.
        if (
            current is not None
            and current is not screen
            and current.call_after_refresh(self._key_settle, seq, current, 2)
        ):
            return
        self._key_done(seq)

    def _key_stalled(self, seq: int) -> None:
        if seq != self._key_busy:
            return
        self.keys_stalled += 1
        log.warning(f"a key took over {KEY_STALL_SECONDS}s to handle; the next keys go on")
        app: Any = self
        app.call_later(self._key_done, seq)

    def _key_done(self, seq: int) -> None:
        if seq != self._key_busy:
            return
        if self._key_watchdog is not None:
            self._key_watchdog.cancel()
            self._key_watchdog = None
        self._key_busy = 0
        if self._key_backlog:
            app: Any = self
            app.call_later(self._dispatch_next_key)


def _path(node: DOMNode) -> list[MessagePump]:
    """``node`` and its ancestors up to the app: the queues a key bubbles through."""
    out: list[MessagePump] = []
    current: Any = node
    while current is not None:
        out.append(current)
        current = current._parent
    return out


__all__ = ["KEY_STALL_SECONDS", "OrderedKeys"]
