"""Shared helpers for the paper broker's integration tests (a clock the test moves, a scripted broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from tterm.brokers.paper import DEFAULT_ACCOUNTS, PaperBroker
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Quote

FUT = "paper:FUT50K"
CASH = "paper:CASH"


class FakeClock:
    """The two clock methods the paper broker uses, with a trade date and time the test moves."""

    def __init__(self) -> None:
        self.day = date(2025, 11, 3)
        self.at = datetime(2025, 11, 3, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def trade_date(self, at: datetime | None = None) -> date:
        return self.day

    def tick(self, seconds: float = 1.0) -> None:
        self.at += timedelta(seconds=seconds)

    def next_day(self) -> None:
        self.day += timedelta(days=1)
        self.at += timedelta(days=1)


def make(clock: FakeClock | None = None, **kw: Any) -> PaperBroker:
    clock = clock or FakeClock()
    master = InstrumentMaster(today=lambda: clock.day)
    kw.setdefault("scripted", True)
    kw.setdefault("seed", 1)
    return PaperBroker("paper", accounts=DEFAULT_ACCOUNTS, instruments=master, clock=clock, **kw)  # type: ignore[arg-type]


def drain(b: PaperBroker) -> list[Any]:
    """Everything on the broker's event stream so far (the engine is its only consumer)."""
    out = []
    while not b._events.empty():
        out.append(b._events.get_nowait())
    return out


async def push(b: PaperBroker, symbol: str, bid: str, ask: str, last: str | None = None, size: int = 0) -> None:
    await b.push_quote(
        Quote(symbol, bid=D(bid), ask=D(ask), last=D(last) if last else None, bid_size=size, ask_size=size)
    )
