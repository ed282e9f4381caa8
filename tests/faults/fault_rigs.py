"""Fault rigs: one per broker fake, each wrapping that broker's contract rig.

A fault rig knows how to hurt its fake (drop the connections, go silent, answer 429 or a penalty,
expire the token, answer slowly, lose an answer, restart the server) and how to read the fake's
own book (positions and orders), which is the truth the engine must end up agreeing with. A new
broker joins the fault suite by adding a class here (a few lines over its contract rig, using its
fake's switches) and its name to ``FAULT_RIGS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tests.integration.contract_rigs import Rig, SchwabRig, TradovateRig
from tterm.brokers.tradovate.lockout import LOCKOUT

#: Faults that hit the order request itself (armed just before it is sent).
REQUEST_FAULTS = frozenset({"429", "penalty", "slow", "lost_answer", "drop_request", "token"})
#: Faults that last until healed (the rig's heal() ends them).
LASTING_FAULTS = frozenset({"silent"})
#: Request faults whose effect lasts past the request: heal() ends them before recovery is judged.
HEALED_REQUEST_FAULTS = frozenset({"429"})


@dataclass(frozen=True)
class VendorOrder:
    """An order as the fake holds it, in words the harness compares (not vendor JSON)."""

    order_id: str
    price: Decimal | None
    status: str  # working | filled | cancelled | rejected | pending
    buy: bool


class FaultRig(Protocol):
    """What the fault suite needs of a broker under test."""

    rig: Rig
    #: Every fault this fake can inject (names as in REQUEST_FAULTS / LASTING_FAULTS / strike()).
    faults: tuple[str, ...]
    #: How long a lasting fault lasts: longer than the adapter's staleness limit, so it is noticed.
    silence: float

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def arm(self, fault: str) -> None:
        """Make the next order request meet ``fault`` (one of REQUEST_FAULTS)."""

    async def strike(self, fault: str) -> None:
        """Inflict ``fault`` now (drop, restart, silent, token)."""

    async def heal(self, fault: str) -> None:
        """End a lasting fault (no-op for the others)."""

    def vendor_position(self) -> int:
        """The fake's net position in the rig's account and symbol."""

    def vendor_orders(self) -> list[VendorOrder]:
        """The fake's orders in the rig's account and symbol."""


class _Base:
    """What the fakes share: the request faults on the rig's order path, strikes and heals."""

    rig: Any
    path: str

    @property
    def name(self) -> str:
        return str(self.rig.name)

    @property
    def fake(self) -> Any:
        return self.rig.fake

    async def start(self) -> None:
        await self.rig.start()

    async def stop(self) -> None:
        await self.rig.stop()

    def arm(self, fault: str) -> None:
        arms = {
            "429": lambda: self.fake.fail_429(self.path),
            "slow": lambda: self.fake.slow(self.path, 0.3),
            "lost_answer": lambda: self.fake.lose_answer(self.path),
            "drop_request": lambda: self.fake.drop_next(self.path),
            "token": lambda: self.fake.expire_tokens(),
            **self._extra_arms(),
        }
        if fault not in arms:
            raise ValueError(f"{self.name} cannot arm {fault!r}")
        arms[fault]()

    def _extra_arms(self) -> dict[str, Callable[[], None]]:
        return {}

    async def _drop(self) -> None:
        await self.fake.drop_sockets()

    async def strike(self, fault: str) -> None:
        if fault == "drop":
            await self._drop()
        elif fault == "silent":
            self.fake.silent = True
        elif fault == "token":
            self.fake.expire_tokens()
        elif fault == "restart":
            await self.fake.restart(down_for=0.2)
        else:
            raise ValueError(f"{self.name} cannot strike {fault!r}")

    async def heal(self, fault: str) -> None:
        if fault == "silent":
            self.fake.silent = False


class TradovateFaults(_Base):
    """Tradovate: REST orders, a trading and a market-data WebSocket, p-ticket penalties."""

    faults = ("drop", "silent", "429", "penalty", "token", "slow", "lost_answer", "drop_request", "restart")
    silence = 1.0  # stale_after is 0.6 s in the test options (tests/integration/test_tradovate.py FAST)
    path = "order/placeorder"

    def __init__(self, tmp: Path) -> None:
        self.rig = TradovateRig(tmp)

    def _extra_arms(self) -> dict[str, Callable[[], None]]:
        return {"penalty": lambda: self.fake.penalize(self.path, p_time=2)}

    async def heal(self, fault: str) -> None:
        await super().heal(fault)
        if fault == "429":
            # A Tradovate 429 locks the login out for an hour (issue 15): nothing recovers until
            # it is over, so the vendor's clock (shared with tterm's lockout) runs past it.
            self.fake.clock.advance(LOCKOUT + timedelta(minutes=1))

    def _ids(self) -> tuple[int, int]:
        ents = self.fake.entities
        account = next(a["id"] for a in ents["account"].values() if f"tv:{a['name']}" == self.rig.account)
        contract = next(c["id"] for c in ents["contract"].values() if c["name"] == self.rig.symbol)
        return account, contract

    def vendor_position(self) -> int:
        account, contract = self._ids()
        return sum(
            p["netPos"]
            for p in self.fake.entities["position"].values()
            if p["accountId"] == account and p["contractId"] == contract
        )

    def vendor_orders(self) -> list[VendorOrder]:
        account, contract = self._ids()
        versions: dict[int, Any] = {}
        for v in self.fake.entities["orderVersion"].values():
            if v["orderId"] not in versions or v["id"] > versions[v["orderId"]]["id"]:
                versions[v["orderId"]] = v
        words = {"Filled": "filled", "Working": "working", "Canceled": "cancelled", "Rejected": "rejected"}
        out = []
        for o in self.fake.entities["order"].values():
            if o["accountId"] != account or o["contractId"] != contract:
                continue
            price = versions.get(o["id"], {}).get("price")
            out.append(
                VendorOrder(
                    order_id=str(o["id"]),
                    price=None if price is None else Decimal(str(price)),
                    status=words.get(o["ordStatus"], "pending"),
                    buy=o["action"] == "Buy",
                )
            )
        return out


class SchwabFaults(_Base):
    """Schwab: REST orders (polled for status), the streamer for quotes, OAuth tokens."""

    faults = ("drop", "silent", "429", "token", "slow", "lost_answer", "drop_request", "restart")
    silence = 2.0  # stale_after is 1.5 s in the test options (tests/integration/schwab_adapter_support.py)

    def __init__(self, tmp: Path) -> None:
        self.rig = SchwabRig(tmp)

    @property
    def fake(self) -> Any:
        return self.rig.fake

    @property
    def path(self) -> str:
        number = self.rig.account.split(":", 1)[1]
        return f"/trader/v1/accounts/{self.fake.account(number).hash}/orders"

    async def _drop(self) -> None:
        await self.fake.drop_streams()

    def _account(self) -> Any:
        return self.fake.account(self.rig.account.split(":", 1)[1])

    def vendor_position(self) -> int:
        h = self._account().holdings.get(self.rig.symbol)
        return 0 if h is None else h.long_qty - h.short_qty

    def vendor_orders(self) -> list[VendorOrder]:
        acct = self._account()
        words = {"FILLED": "filled", "WORKING": "working", "CANCELED": "cancelled", "REJECTED": "rejected"}
        return [
            VendorOrder(
                order_id=str(o.id),
                price=o.price,
                status=words.get(o.status, "pending"),
                buy=o.legs[0].buy,
            )
            for o in self.fake.book.orders.values()
            if o.account is acct and o.legs and o.legs[0].symbol == self.rig.symbol
        ]


FAULT_RIGS: dict[str, Callable[[Path], FaultRig]] = {
    "schwab": SchwabFaults,
    "tradovate": TradovateFaults,
}
