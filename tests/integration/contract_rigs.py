"""Rigs for the broker contract suite: one per broker, each a real adapter on its fake.

A rig starts its fake server (real loopback sockets) or simulated market, builds the adapter the
way tterm does, and offers the few things the shared test bodies need that differ per vendor:
moving the market deterministically and dropping the connection. A new adapter joins the suite by
adding a rig class here and its name to ``RIGS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tests.fakes import FakeClock
from tterm.core.broker import Broker
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import AccountKind, OrderRequest, OrderSource, OrderType, Quote, Side


class Rig(Protocol):
    """What the contract suite needs of a broker under test."""

    name: str
    broker: Broker
    master: InstrumentMaster
    account: str
    symbol: str
    tick: Decimal

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        """Top of book for ``symbol`` at the vendor (resting orders it crosses fill)."""

    async def drop(self) -> None:
        """Break the broker's live connection(s) the way a network fault would."""

    def today(self) -> date: ...

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        """An order this broker (not tterm's router) refuses, and a word its reason contains."""

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        """Quote an equity (an option chain's underlying) at about ``price`` at the vendor."""

    #: False where there is no network connection to break (the paper broker).
    has_connection: bool


#: A Tuesday, 09:00 in Chicago: the market is open whenever the suite runs.
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@dataclass
class PaperRig:
    """The embedded paper broker, scripted (nothing moves unless the test moves it)."""

    tmp: Path
    name: str = "paper"
    account: str = "paper:FUT50K"
    symbol: str = ""
    tick: Decimal = Decimal("0.25")
    has_connection: bool = False

    def __post_init__(self) -> None:
        from tterm.brokers.paper.broker import PaperBroker
        from tterm.brokers.paper.ledger import PaperAccountSpec
        from tterm.core.clock import CmeClock, default_calendar

        self.clock = CmeClock(default_calendar(), now=lambda: NOW)
        self.master = InstrumentMaster(calendar=self.clock.calendar, today=self.clock.trade_date)
        self.symbol = self.master.front("MES").symbol
        self.broker = PaperBroker(
            "paper",
            accounts=[
                PaperAccountSpec(id="FUT50K", name="Paper 50K", kind=AccountKind.FUTURES, balance=Decimal(50000)),
                PaperAccountSpec(id="CASH", name="Paper Cash", kind=AccountKind.CASH, balance=Decimal(10000)),
            ],
            instruments=self.master,
            clock=self.clock,
            seed=11,
            store_path=self.tmp / "paper.sqlite3",
            scripted=True,
        )

    def today(self) -> date:
        return self.clock.trade_date()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        await self.broker.push_quote(Quote(symbol=self.symbol, bid=bid, ask=ask, last=bid, bid_size=50, ask_size=50))  # type: ignore[attr-defined]

    async def drop(self) -> None:
        raise AssertionError("the paper broker has no connection to drop")

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        price = self.master.resolve(symbol).round_price(price)
        await self.broker.push_quote(  # type: ignore[attr-defined]
            Quote(symbol=symbol, bid=price, ask=price + Decimal("0.01"), last=price, bid_size=500, ask_size=500)
        )

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        # More AAPL than the cash account can pay for: only the broker knows its buying power.
        req = OrderRequest(
            account="paper:CASH",
            symbol="AAPL",
            side=Side.BUY,
            quantity=100_000,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=Decimal("100.00"),
        )
        return req, "cash"


@dataclass
class TradovateRig:
    """The Tradovate adapter on the strict fake (REST + both WebSockets over loopback)."""

    tmp: Path
    name: str = "tradovate"
    account: str = "tv:DEMO123456"
    symbol: str = "MESZ6"
    tick: Decimal = Decimal("0.25")
    has_connection: bool = True

    async def start(self) -> None:
        from tests.fakes.tradovate import FakeTradovate
        from tests.integration.test_tradovate import FAST
        from tterm.brokers.tradovate import build

        self.fake = FakeTradovate(clock=FakeClock(NOW))
        await self.fake.start()
        self.fake.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.25")
        self.master = InstrumentMaster(today=lambda: self.fake.clock.now().date())
        self.broker = build(
            "tv",
            self.fake.options(**FAST),
            self.fake.secrets(),
            instruments=self.master,
            clock=self.fake.clock,
            data_dir=self.tmp,
        )

    def today(self) -> date:
        return self.fake.clock.now().date()

    async def stop(self) -> None:
        await self.fake.stop()

    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        self.fake.set_quote(self.symbol, bid=str(bid), ask=str(ask), last=str(bid))

    async def drop(self) -> None:
        await self.fake.drop_sockets()

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        raise AssertionError("Tradovate trades futures only")

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        self.fake.reject_next("RiskRejected", "Exceeds the account's max position")
        req = OrderRequest(
            account=self.account,
            symbol=self.symbol,
            side=Side.BUY,
            quantity=1,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=Decimal("6640.00"),
        )
        return req, "max position"


@dataclass
class SchwabRig:
    """The Schwab adapter on the strict fake (OAuth, Trader and Market Data REST, the streamer),
    logged in the way a person does it. Shares: MSFT, quoted where the suite puts it."""

    tmp: Path
    name: str = "schwab"
    account: str = "sw:12345678"
    symbol: str = "MSFT"
    tick: Decimal = Decimal("0.01")
    has_connection: bool = True

    async def start(self) -> None:
        from tests.integration.schwab_adapter_support import log_in, make_broker, start_fake

        self.fake = await start_fake(FakeClock(NOW))
        self.fake.set_price(self.symbol, "6650.00", bid="6650.00", ask="6650.25")
        self.master = InstrumentMaster(today=lambda: self.fake.clock.now().date())
        self.broker = make_broker(self.fake, self.tmp, master=self.master)
        await log_in(self.fake, self.broker)

    def today(self) -> date:
        return self.fake.clock.now().date()

    async def stop(self) -> None:
        await self.fake.stop()

    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        self.fake.set_price(self.symbol, bid, bid=bid, ask=ask)

    async def drop(self) -> None:
        await self.fake.drop_streams()

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        self.fake.set_price(symbol, price)

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        # More MSFT than the cash account can pay for: only Schwab knows its buying power.
        req = OrderRequest(
            account="sw:87654321",
            symbol=self.symbol,
            side=Side.BUY,
            quantity=100_000,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=Decimal("6640.00"),
        )
        return req, "buying power"


@dataclass
class TastytradeRig:
    """The Tastytrade adapter on the strict fake (OAuth, REST, the account streamer, DXLink).
    Futures: MESZ6 in the margin account; chains of AAPL; the cash account takes the spread."""

    tmp: Path
    name: str = "tastytrade"
    account: str = "tt:5WT00001"
    symbol: str = "MESZ6"
    tick: Decimal = Decimal("0.25")
    has_connection: bool = True

    async def start(self) -> None:
        from tests.integration.tastytrade_support import make_broker, start_fake

        self.fake = await start_fake(FakeClock(NOW))
        # The cash account may trade defined-risk spreads (the fake refuses any sale to open at "Limited").
        self.fake.accounts.by_number["5WT00002"].options_level = "Defined Risk Spreads"
        self.fake.set_quote("/MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
        self.master = InstrumentMaster(today=lambda: self.fake.clock.now().date())
        self.broker = make_broker(self.fake, self.tmp, master=self.master)

    def today(self) -> date:
        return self.fake.clock.now().date()

    async def stop(self) -> None:
        await self.fake.stop()

    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        self.fake.set_quote("/MESZ6", bid=str(bid), ask=str(ask), last=str(bid))

    async def drop(self) -> None:
        await self.fake.drop()

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        price = price.quantize(Decimal("0.01"))
        self.fake.set_quote(symbol, bid=str(price - Decimal("0.01")), ask=str(price + Decimal("0.01")), last=str(price))

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        # Accepted (201), then Rejected on the streamer with the vendor's reason.
        self.fake.reject_next("Order exceeds the account's maximum position size")
        req = OrderRequest(
            account=self.account,
            symbol=self.symbol,
            side=Side.BUY,
            quantity=1,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=Decimal("6640.00"),
        )
        return req, "maximum position"


@dataclass
class ProjectXRig:
    """The ProjectX (TopstepX) adapter on the strict fake gateway (REST and both SignalR hubs)."""

    tmp: Path
    name: str = "projectx"
    account: str = "px:536"
    symbol: str = "MESZ6"
    tick: Decimal = Decimal("0.25")
    has_connection: bool = True

    async def start(self) -> None:
        from tests.integration.projectx_support import make_broker, start_fake

        self.fake = await start_fake(FakeClock(NOW))
        self.master = InstrumentMaster(today=lambda: self.fake.clock.now().date())
        self.broker = make_broker(self.fake, self.tmp, master=self.master)

    def today(self) -> date:
        return self.fake.clock.now().date()

    async def stop(self) -> None:
        await self.fake.stop()

    async def set_market(self, bid: Decimal, ask: Decimal) -> None:
        await self.fake.set_quote(self.symbol, bid=bid, ask=ask, last=bid)

    async def drop(self) -> None:
        self.fake.drop_sockets()

    async def set_equity(self, symbol: str, price: Decimal) -> None:
        raise AssertionError("ProjectX trades futures only")

    def provoke_reject(self) -> tuple[OrderRequest, str]:
        self.fake.reject_next("Order/place", 3, "Insufficient funds to place the order.")
        req = OrderRequest(
            account=self.account,
            symbol=self.symbol,
            side=Side.BUY,
            quantity=1,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=Decimal("6640.00"),
        )
        return req, "insufficient funds"


RIGS: dict[str, Callable[[Path], Any]] = {
    "paper": PaperRig,
    "projectx": ProjectXRig,
    "schwab": SchwabRig,
    "tastytrade": TastytradeRig,
    "tradovate": TradovateRig,
}
