"""Is what the screen shows current? One answer for the watchlist, the ticket and the status bar.

A price is stale when its quote is older than ``[risk] stale_after_seconds`` (the age at which
the pre-trade checks refuse new positions on it; 30 s when that check is off), when the link to
the hub is down (an attached terminal then knows nothing current), or when every broker
connection is down. The age of a connection's last message is amber from
:data:`AGE_WARN_SECONDS` and red from the staleness limit.

Plain Python (no Textual): the app builds one :class:`Freshness` a second and on every
connection change, and hands it to the widgets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tterm.core.models import ConnectionState, ConnectionStatus, Quote

HUB_LINK = "hub"
"""The connection an attached terminal's link to the hub is reported under: the same name as
``tterm.hub.remote.HUB_LINK`` (the TUI does not import the hub; a test checks they agree)."""

AGE_WARN_SECONDS = 5.0
"""A connection whose last message is older than this shows its age in amber."""

DEFAULT_STALE_SECONDS = 30.0
"""The staleness limit when the pre-trade staleness check is turned off (``stale_after_seconds = 0``)."""

Level = Literal["ok", "warn", "down"]


@dataclass(frozen=True, slots=True)
class Freshness:
    """The state of the feeds at ``wall`` (real time, as the engine stamps messages)."""

    wall: datetime
    stale_after: float = DEFAULT_STALE_SECONDS
    link: ConnectionStatus | None = None
    """The link to the hub (None when the engine runs in-process)."""
    sources_down: bool = False
    """Every broker connection is down, stale or reconnecting: no price can be current."""

    @property
    def link_down(self) -> bool:
        return self.link is not None and self.link.state is not ConnectionState.CONNECTED

    @property
    def everything_stale(self) -> bool:
        """Nothing on screen can be current (the hub link or every source is down)."""
        return self.link_down or self.sources_down

    def quote_age(self, quote: Quote) -> float:
        return max(0.0, (self.wall - quote.ts).total_seconds())

    def quote_stale(self, quote: Quote | None) -> bool:
        if quote is None:
            return False  # no price is shown: nothing to mark
        return self.everything_stale or self.quote_age(quote) > self.stale_after

    def age_level(self, seconds: float) -> Level:
        if seconds >= self.stale_after:
            return "down"
        if seconds >= AGE_WARN_SECONDS:
            return "warn"
        return "ok"

    def connection_age(self, status: ConnectionStatus) -> float | None:
        """Seconds since the connection's last message; for the hub link when it is down, since it went down."""
        if status.broker == HUB_LINK:
            if status.state is ConnectionState.CONNECTED:
                return None
            return max(0.0, (self.wall - status.ts).total_seconds())
        if status.last_message_at is None:
            return None
        return max(0.0, (self.wall - status.last_message_at).total_seconds())


def freshness(connections: Iterable[ConnectionStatus], wall: datetime, stale_after_seconds: float) -> Freshness:
    """The freshness the connections describe, with the configured staleness limit."""
    link = None
    brokers = []
    for status in connections:
        if status.broker == HUB_LINK:
            link = status
        else:
            brokers.append(status)
    sources_down = bool(brokers) and all(c.state is not ConnectionState.CONNECTED for c in brokers)
    limit = float(stale_after_seconds) if stale_after_seconds else DEFAULT_STALE_SECONDS
    return Freshness(wall=wall, stale_after=limit, link=link, sources_down=sources_down)


__all__ = ["AGE_WARN_SECONDS", "DEFAULT_STALE_SECONDS", "Freshness", "freshness"]
