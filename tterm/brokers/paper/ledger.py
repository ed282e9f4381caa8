"""Paper accounts: balances, positions and P&L, moved by fills.

``balance`` is cash including realized P&L net of fees, for every kind of account; ``equity`` adds
open P&L at the marks. A cash account's spendable cash (its ``buying_power``) is the balance less
what it paid for what it holds (plus what it received for options it wrote), less the cash set
aside to cover short options and for its working orders (``reserved``): it cannot spend more.
Positions use the average-price method: adding to a position moves the average, reducing it
realizes ``(exit - average) * point value`` per contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tterm.brokers.paper.matching import average
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    AssetClass,
    Instrument,
    ModelError,
    Position,
    Side,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class PaperAccountSpec:
    """One paper account from the settings. ``id`` is the broker-local id (``FUT50K``).

    ``kind`` CASH trades equities and options and can neither short nor spend more cash than it
    holds; FUTURES trades futures only. ``profile`` names the prop-firm rule profile, if any.
    """

    id: str
    name: str
    kind: AccountKind
    balance: Decimal
    profile: str = ""
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.id or ":" in self.id or self.id != self.id.strip():
            raise ModelError(f"paper account id {self.id!r} must be non-empty, without ':' or spaces around it")
        if self.kind not in (AccountKind.CASH, AccountKind.FUTURES):
            raise ModelError(
                f"paper account {self.id}: kind {self.kind.value!r} is not simulated; use 'cash' or 'futures'"
            )
        if not isinstance(self.balance, Decimal) or not self.balance.is_finite() or self.balance < 0:
            raise ModelError(f"paper account {self.id}: starting balance {self.balance!r} must be a Decimal >= 0")

    def trades(self, asset_class: AssetClass) -> bool:
        if self.kind is AccountKind.FUTURES:
            return asset_class is AssetClass.FUTURE
        return asset_class in (AssetClass.EQUITY, AssetClass.OPTION)


#: The accounts a fresh install gets: a cash account and a 50K funded-style futures account.
DEFAULT_ACCOUNTS: tuple[PaperAccountSpec, ...] = (
    PaperAccountSpec(id="CASH", name="Paper Cash", kind=AccountKind.CASH, balance=Decimal(100000)),
    PaperAccountSpec(
        id="FUT50K",
        name="Paper 50K",
        kind=AccountKind.FUTURES,
        balance=Decimal(50000),
        profile="topstep-50k-combine",
    ),
)


@dataclass(slots=True)
class AccountState:
    """Balances of one account; ``id`` is the engine-wide id (``paper:FUT50K``)."""

    id: str
    spec: PaperAccountSpec
    balance: Decimal
    start_of_day_balance: Decimal
    day_realized: Decimal = ZERO
    fees_today: Decimal = ZERO


@dataclass(slots=True)
class Lot:
    """Contracts or shares opened at one price, closed first-in first-out."""

    quantity: int
    price: Decimal


@dataclass(slots=True)
class PositionState:
    """A position as FIFO lots; ``quantity`` is signed, every lot is on the same side."""

    account: str
    instrument: Instrument
    quantity: int = 0
    lots: list[Lot] = field(default_factory=list)
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    ts: datetime = field(default_factory=utcnow)

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def avg_price(self) -> Decimal:
        """Average open price (on tick when exact); zero when flat."""
        qty = sum(lot.quantity for lot in self.lots)
        if qty == 0:
            return ZERO
        return average(sum((lot.price * lot.quantity for lot in self.lots), ZERO), qty, self.instrument)

    @property
    def open_cost(self) -> Decimal:
        """Sum of price x quantity over the open lots (unsigned)."""
        return sum((lot.price * lot.quantity for lot in self.lots), ZERO)


class Ledger:
    """Every paper account's balance and positions."""

    def __init__(self, broker: str, specs: list[PaperAccountSpec], *, now: Callable[[], datetime] = utcnow) -> None:
        self.broker = broker
        self._now = now
        self.accounts: dict[str, AccountState] = {}
        for spec in specs:
            aid = f"{broker}:{spec.id}"
            if aid in self.accounts:
                raise ModelError(f"paper account id {spec.id!r} is listed twice")
            self.accounts[aid] = AccountState(aid, spec, spec.balance, spec.balance)
        self.positions: dict[tuple[str, str], PositionState] = {}

    def account_models(self) -> list[Account]:
        return [
            Account(
                id=a.id,
                broker=self.broker,
                vendor_id=a.spec.id,
                name=a.spec.name,
                kind=a.spec.kind,
                currency=a.spec.currency,
                is_live=False,
                profile=a.spec.profile,
            )
            for a in self.accounts.values()
        ]

    def position(self, account: str, symbol: str) -> PositionState | None:
        return self.positions.get((account, symbol))

    def net(self, account: str, symbol: str) -> int:
        pos = self.positions.get((account, symbol))
        return pos.quantity if pos else 0

    def apply_fill(
        self, account: str, inst: Instrument, side: Side, quantity: int, price: Decimal, fee: Decimal
    ) -> PositionState:
        """Move the position and balance of ``account`` by one fill; returns the position.

        A fill against the position closes the oldest lots first (FIFO), realizing
        ``(exit - lot price) * point value`` per contract; any excess opens the other way.
        Every figure stays exact: realized plus open P&L always equals the fills' cash flows
        plus the position valued at the mark.
        """
        acct = self.accounts[account]
        key = (account, inst.symbol)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = PositionState(account, inst)
        signed = side.sign * quantity
        realized = ZERO
        if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
            pos.lots.append(Lot(quantity, price))
        else:
            direction = 1 if pos.quantity > 0 else -1
            left = quantity
            while left and pos.lots:
                lot = pos.lots[0]
                take = min(lot.quantity, left)
                realized += inst.money(price - lot.price, take) * direction
                lot.quantity -= take
                left -= take
                if lot.quantity == 0:
                    pos.lots.pop(0)
            if left:
                pos.lots.append(Lot(left, price))  # reversed through flat
        pos.quantity += signed
        pos.realized += realized - fee
        pos.fees += fee
        pos.ts = self._now()
        acct.balance += realized - fee
        acct.day_realized += realized - fee
        acct.fees_today += fee
        return pos

    def open_pnl(self, pos: PositionState, mark: Decimal | None) -> Decimal:
        if pos.quantity == 0 or mark is None:
            return ZERO
        direction = 1 if pos.quantity > 0 else -1
        return pos.instrument.point_value * direction * (mark * abs(pos.quantity) - pos.open_cost)

    def position_model(self, pos: PositionState, mark: Decimal | None) -> Position:
        return Position(
            account=pos.account,
            symbol=pos.symbol,
            quantity=pos.quantity,
            avg_price=pos.avg_price,
            mark=mark,
            realized_pnl=pos.realized,
            unrealized_pnl=self.open_pnl(pos, mark),
            fees=pos.fees,
            ts=self._now(),
        )

    def cost_basis(self, account: str) -> Decimal:
        """What the account paid for what it holds (cash accounts hold only longs)."""
        return sum(
            (
                p.instrument.point_value * p.open_cost
                for (acct, _), p in self.positions.items()
                if acct == account and p.quantity > 0
            ),
            ZERO,
        )

    def net_cost(self, account: str) -> Decimal:
        """What the account paid for its longs less what it received for its shorts."""
        return sum(
            (
                p.instrument.point_value * p.open_cost * (1 if p.quantity > 0 else -1)
                for (acct, _), p in self.positions.items()
                if acct == account and p.quantity
            ),
            ZERO,
        )

    def snapshot(
        self, account: str, marks: Callable[[str], Decimal | None], reserved: Decimal = ZERO
    ) -> AccountSnapshot:
        acct = self.accounts[account]
        open_pnl = sum(
            (self.open_pnl(p, marks(p.symbol)) for (a, _), p in self.positions.items() if a == account),
            ZERO,
        )
        buying_power = None
        if acct.spec.kind is AccountKind.CASH:
            buying_power = acct.balance - self.net_cost(account) - reserved
        return AccountSnapshot(
            account=account,
            balance=acct.balance,
            equity=acct.balance + open_pnl,
            day_realized_pnl=acct.day_realized,
            open_pnl=open_pnl,
            fees_today=acct.fees_today,
            buying_power=buying_power,
            start_of_day_balance=acct.start_of_day_balance,
            ts=self._now(),
        )

    def roll_day(self) -> None:
        """A new trade date: the day's realized P&L and fees start again from zero."""
        for acct in self.accounts.values():
            acct.start_of_day_balance = acct.balance
            acct.day_realized = ZERO
            acct.fees_today = ZERO
        for key, pos in list(self.positions.items()):
            if pos.quantity == 0:
                del self.positions[key]
            else:
                pos.realized = ZERO
                pos.fees = ZERO
