"""Tradovate's entities by id (the local replica of the user's trading state) and the core
models they add up to.

:class:`Replica` is loaded from the ``user/syncrequest`` snapshot (or its REST equivalent) and
kept current by ``props`` events, keyed by id so the order in which events arrive does not
matter (U8). Every (re)connection replaces the trading state with a fresh snapshot; reference
data (contracts, maturities, products) is merged, not dropped. It holds vendor JSON as received.

:class:`View` joins the entities into core models: an Order is the order entity plus its latest
version (quantity, prices), its fills and its execution reports; a Position carries the P&L of
its fill pairs. Field-level translation lives in :mod:`tterm.brokers.tradovate.mapping`.
Neither class does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from tterm.brokers.tradovate.mapping import (
    JSON,
    SIDES,
    STATUSES,
    VENDOR_TIFS,
    VENDOR_TYPES,
    Placed,
    Refused,
    VendorDataError,
    account_usable,
    count,
    dec,
    failure_words,
    time_or_none,
)
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    Fill,
    Instrument,
    ModelError,
    Order,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    utcnow,
)

_T = TypeVar("_T")


def by_id(table: Mapping[int, _T], key: object) -> _T | None:
    """``table[key]`` for a vendor id field; None when the field is missing or not an id."""
    return table.get(key) if isinstance(key, int) else None


#: Fields that refer to entities by id: Tradovate ids are whole numbers (A6).
_REFS = ("id", "orderId", "accountId", "contractId", "positionId", "orderVersionId")


def _check_refs(entity_type: str, entity: Mapping[str, Any]) -> None:
    """Refuse (VendorDataError) an entity whose ids are not ids, before it reaches the tables
    (found by tests/fuzz: a list as accountId raised TypeError deep in the replica)."""
    for key in _REFS:
        value = entity.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise VendorDataError(f"Tradovate sent a {entity_type} whose {key} is {str(value)[:24]!r}, not an id")


#: commandStatus values of a command refused after it was accepted (C# services-api model).
REJECTED_COMMANDS = frozenset({"RiskRejected", "ExecutionRejected"})


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command Tradovate rejected on ``commandReport``: which order, which kind, why."""

    order_id: int
    command: str  # New, Modify, Cancel
    status: str
    reason: str


class Replica:
    """Tradovate entities by id, as the snapshot and the props events describe them."""

    def __init__(self) -> None:
        self.accounts: dict[int, dict[str, Any]] = {}
        self.contracts: dict[int, dict[str, Any]] = {}
        self.contract_ids: dict[str, int] = {}
        self.maturities: dict[int, dict[str, Any]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.product_ids: dict[str, int] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.versions: dict[int, dict[str, Any]] = {}
        self.fills: dict[int, dict[str, Any]] = {}
        self.fills_by_order: dict[int, set[int]] = {}
        self.positions: dict[int, dict[str, Any]] = {}
        self.fill_pairs: dict[int, dict[str, Any]] = {}
        self.cash: dict[int, dict[str, Any]] = {}
        self.order_by_clord: dict[str, int] = {}
        self.clord_by_order: dict[int, str] = {}
        self.rejects: dict[int, str] = {}
        self.executions: dict[int, dict[str, Any]] = {}
        self.commands: dict[int, dict[str, Any]] = {}
        #: Command reports that arrived before their command (U8: no order is guaranteed).
        self.pending_reports: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ loading

    def load_snapshot(self, snap: Mapping[str, Any]) -> None:
        """Replace the trading state with a sync snapshot (reference data is merged, not dropped)."""

        def rows(key: str) -> list[dict[str, Any]]:
            # A6.1: any key may be missing; default to an empty list.
            value = snap.get(key) or []
            return [r for r in value if isinstance(r, dict) and "id" in r] if isinstance(value, list) else []

        for c in rows("contracts"):
            self.add_contract(c)
        for m in rows("contractMaturities"):
            self.maturities[m["id"]] = m
        for p in rows("products"):
            self.add_product(p)
        self.accounts = {a["id"]: a for a in rows("accounts")}
        self.orders = {o["id"]: o for o in rows("orders")}
        self.versions = {}
        for v in rows("orderVersions"):
            self.put_version(v)
        self.fills = {}
        self.fills_by_order = {}
        for f in rows("fills"):
            self.put_fill(f)
        self.positions = {p["id"]: p for p in rows("positions")}
        self.fill_pairs = {p["id"]: p for p in rows("fillPairs")}
        self.cash = {}
        for c in rows("cashBalances"):
            self.put_cash(c)
        self.rejects = {}
        self.executions = {}
        self.commands = {}
        self.pending_reports = {}
        for r in rows("executionReports"):
            self.put_report(r)
        for c in rows("commands"):
            self.put_command(c)
        for r in rows("commandReports"):
            self.put_command_report(r)

    def add_contract(self, contract: Mapping[str, Any]) -> None:
        c = dict(contract)
        self.contracts[c["id"]] = c
        if c.get("name"):
            self.contract_ids[str(c["name"]).upper()] = c["id"]

    def add_product(self, product: Mapping[str, Any]) -> None:
        p = dict(product)
        self.products[p["id"]] = p
        if p.get("name"):
            self.product_ids[str(p["name"]).upper()] = p["id"]

    def put_version(self, v: Mapping[str, Any]) -> None:
        oid = v.get("orderId")
        if oid is None:
            return
        current = self.versions.get(oid)
        # A4: a modify creates a new version; the one with the highest id is current.
        if current is None or count(v.get("id"), "an order version id") >= count(
            current.get("id"), "an order version id"
        ):
            self.versions[oid] = dict(v)

    def put_fill(self, f: Mapping[str, Any]) -> None:
        self.fills[f["id"]] = dict(f)
        if f.get("orderId") is not None:
            self.fills_by_order.setdefault(f["orderId"], set()).add(f["id"])

    def put_cash(self, c: Mapping[str, Any]) -> None:
        acct = c.get("accountId")
        if acct is None:
            return
        current = self.cash.get(acct)
        if current is None or str(c.get("timestamp") or "") >= str(current.get("timestamp") or ""):
            self.cash[acct] = dict(c)

    def put_report(self, r: Mapping[str, Any]) -> None:
        oid = r.get("orderId")
        if oid is None:
            return
        # The reason may be here or only on the commandReport (either may come first): a report
        # without one never replaces a reason already known.
        rejected = r.get("execType") == "Rejected" or r.get("ordStatus") == "Rejected"
        if rejected and (r.get("rejectReason") or r.get("text") or oid not in self.rejects):
            self.rejects[oid] = failure_words(r.get("rejectReason"), r.get("text"))
        if r.get("cumQty") is not None:
            current = self.executions.get(oid)
            if current is None or count(r.get("id"), "an execution report id") >= count(
                current.get("id"), "an execution report id"
            ):
                self.executions[oid] = dict(r)

    def put_command(self, c: Mapping[str, Any]) -> CommandRejected | None:
        """Record a command; returns the rejection of a report that was waiting for it, if any."""
        if isinstance(c.get("id"), int):
            self.commands[c["id"]] = {**self.commands.get(c["id"], {}), **c}
        clord = c.get("clOrdId")
        oid = c.get("orderId")
        # Only the command that created the order carries the client order id we sent with it.
        if clord and oid is not None and c.get("commandType", "New") == "New":
            self.order_by_clord[str(clord)] = oid
            self.clord_by_order.setdefault(oid, str(clord))
        waiting = self.pending_reports.pop(c["id"], None) if isinstance(c.get("id"), int) else None
        return self.put_command_report(waiting) if waiting is not None else None

    def put_command_report(self, r: Mapping[str, Any]) -> CommandRejected | None:
        """A ``commandReport``: a rejection after the command was accepted (C# sample Trading.cs:
        ``commandStatus`` RiskRejected or ExecutionRejected, with ``rejectReason`` and ``text``).
        A rejected new order keeps the reason; the rejection is returned for the caller to tell."""
        cid = r.get("commandId")
        if r.get("commandStatus") not in REJECTED_COMMANDS or not isinstance(cid, int):
            return None
        command = self.commands.get(cid)
        if command is None:
            self.pending_reports[cid] = dict(r)
            return None
        oid = command.get("orderId")
        if not isinstance(oid, int):
            return None
        reason = failure_words(r.get("rejectReason"), r.get("text"))
        kind = str(command.get("commandType") or "New")
        if kind == "New":
            self.rejects[oid] = reason
        return CommandRejected(order_id=oid, command=kind, status=str(r["commandStatus"]), reason=reason)

    def apply(self, entity_type: str, event_type: str, entity: dict[str, Any]) -> CommandRejected | None:
        """One props event. Deleted entities leave the replica; a rejected command is returned."""
        _check_refs(entity_type, entity)
        eid = entity.get("id")
        if eid is None:
            return None
        deleted = event_type == "Deleted"
        if entity_type == "order":
            if deleted:
                self.orders.pop(eid, None)
            else:
                self.orders[eid] = entity
        elif entity_type == "orderVersion":
            if not deleted:
                self.put_version(entity)
        elif entity_type == "fill":
            if deleted:
                self.fills.pop(eid, None)
                (by_id(self.fills_by_order, entity.get("orderId")) or set()).discard(eid)
            else:
                self.put_fill(entity)
        elif entity_type == "position":
            if deleted:
                self.positions.pop(eid, None)
            else:
                self.positions[eid] = entity
        elif entity_type == "fillPair":
            if deleted:
                self.fill_pairs.pop(eid, None)
            else:
                self.fill_pairs[eid] = entity
        elif entity_type == "cashBalance":
            if not deleted:
                self.put_cash(entity)
        elif entity_type == "executionReport":
            self.put_report(entity)
        elif entity_type == "command":
            return self.put_command(entity)
        elif entity_type == "commandReport":
            return self.put_command_report(entity)
        elif entity_type == "account":
            if deleted:
                self.accounts.pop(eid, None)
            else:
                self.accounts[eid] = entity
        elif entity_type == "contract":
            self.add_contract(entity)
        elif entity_type == "product":
            self.add_product(entity)
        elif entity_type == "contractMaturity":
            self.maturities[eid] = entity
        return None

    # ------------------------------------------------------------------ lookups

    def account_by_name(self, name: str) -> dict[str, Any] | None:
        for acct in self.accounts.values():
            if acct.get("name") == name:
                return acct
        return None

    def referenced_contracts(self) -> set[int]:
        ids = {o.get("contractId") for o in self.orders.values()}
        ids |= {p.get("contractId") for p in self.positions.values()}
        ids |= {f.get("contractId") for f in self.fills.values()}
        return {i for i in ids if isinstance(i, int)}


class View:
    """Core models read from the replica. Pure: it never asks the network.

    ``placed`` and ``roles`` hold what tterm knows of the orders it sent (the vendor does not
    echo a bracket child's role); ``mark(symbol)`` gives the latest quote's mark for open P&L.
    """

    def __init__(
        self,
        name: str,
        replica: Replica,
        instruments: InstrumentMaster,
        *,
        is_live: bool,
        mark: Callable[[str], Decimal | None],
    ) -> None:
        self.name = name
        self.replica = replica
        self.instruments = instruments
        self.is_live = is_live
        self.mark = mark
        self.placed: dict[int, Placed] = {}
        self.roles: dict[int, tuple[OrderRole, int | None]] = {}

    # ------------------------------------------------------------------ accounts

    def account_id(self, account: Mapping[str, Any]) -> str:
        return f"{self.name}:{account['name']}"

    def accounts(self) -> list[Account]:
        out = []
        for acct in self.replica.accounts.values():
            if not account_usable(acct) or not acct.get("name"):
                continue
            out.append(
                Account(
                    id=self.account_id(acct),
                    broker=self.name,
                    vendor_id=str(acct["name"]),
                    name=str(acct["name"]),
                    kind=AccountKind.FUTURES,
                    currency="USD",
                    is_live=self.is_live,
                )
            )
        return out

    def vendor_account(self, account: str) -> JSON:
        """The Tradovate account behind an engine account id, or :class:`Refused`."""
        prefix = f"{self.name}:"
        name = account[len(prefix) :] if account.startswith(prefix) else None
        acct = self.replica.account_by_name(name) if name else None
        if acct is None or not account_usable(acct):
            known = ", ".join(a.id for a in self.accounts()) or "none"
            raise Refused(f"unknown Tradovate account {account!r} (accounts: {known})")
        return acct

    def in_account(self, account: str | None, account_id: Any) -> bool:
        if account is None:
            return True
        acct = self.replica.accounts.get(account_id)
        return acct is not None and self.account_id(acct) == account

    # ------------------------------------------------------------------ instruments

    def instrument_of(self, contract: Mapping[str, Any] | None) -> Instrument | None:
        if contract is None:
            return None
        try:
            return self.instruments.resolve(str(contract.get("name") or ""))
        except (UnknownSymbol, ModelError):
            return None

    def _price(self, inst: Instrument, value: Any) -> Decimal | None:
        d = dec(value)
        return inst.round_price(d) if d is not None else None

    # ------------------------------------------------------------------ orders

    def remember(self, oid: int, sent: Placed) -> None:
        self.placed[oid] = sent
        self.roles[oid] = (sent.role, sent.parent_id)
        self.replica.order_by_clord.setdefault(sent.client_order_id, oid)
        self.replica.clord_by_order.setdefault(oid, sent.client_order_id)

    def client_id(self, oid: Any) -> str:
        """The client order id an order was sent with; orders placed elsewhere get a stable stand-in."""
        sent = self.placed.get(oid)
        known = self.replica.clord_by_order.get(oid)
        return known or (sent.client_order_id if sent else f"tradovate-{oid}")

    def role_of(self, oid: int, o: Mapping[str, Any], order_type: OrderType) -> tuple[OrderRole, int | None]:
        known = self.roles.get(oid)
        if known is not None:
            return known
        parent = o.get("parentId")
        if not isinstance(parent, int):
            return OrderRole.ENTRY, None
        # An OSO child tterm did not place (or placed before a restart): a limit takes profit,
        # a stop protects.
        role = OrderRole.TAKE_PROFIT if order_type is OrderType.LIMIT else OrderRole.STOP_LOSS
        return role, parent

    def order(self, oid: int) -> Order | None:
        replica = self.replica
        o = replica.orders.get(oid)
        sent = self.placed.get(oid)
        if o is None:
            return None
        acct = by_id(replica.accounts, o.get("accountId"))
        inst = self.instrument_of(by_id(replica.contracts, o.get("contractId")))
        if acct is None or inst is None:
            return None
        version = replica.versions.get(oid)
        if version is None and sent is None:
            return None  # no quantity or prices known yet; the version event will complete it
        fills = [replica.fills[f] for f in sorted(replica.fills_by_order.get(oid, ())) if f in replica.fills]
        fills = [f for f in fills if f.get("active", True) is not False]
        filled = sum(count(f.get("qty"), "a fill quantity") for f in fills)
        avg = None
        if filled:
            total = sum(((dec(f.get("price")) or ZERO) * count(f.get("qty"), "a fill quantity") for f in fills), ZERO)
            avg = total / filled
        # U8: the order's new status or its execution report may arrive before the fill entity.
        report = replica.executions.get(oid)
        reported = count(report.get("cumQty"), "a filled quantity") if report else 0
        if reported > filled:
            filled = reported
            avg = dec(report.get("avgPx")) if report else None
        if version is not None:
            quantity = count(version.get("orderQty"), "an order quantity")
            order_type = VENDOR_TYPES.get(str(version.get("orderType")), OrderType.MARKET)
            limit = self._price(inst, version.get("price")) if order_type.needs_limit else None
            stop = self._price(inst, version.get("stopPrice")) if order_type.needs_stop else None
            tif = VENDOR_TIFS.get(str(version.get("timeInForce")), sent.tif if sent else TimeInForce.DAY)
        else:
            assert sent is not None
            quantity, order_type = sent.quantity, sent.order_type
            limit, stop, tif = sent.limit_price, sent.stop_price, sent.tif
        vendor_status = str(o.get("ordStatus") or "Unknown")
        if vendor_status == "Completed":
            status = OrderStatus.FILLED if quantity and filled >= quantity else OrderStatus.CANCELLED
        else:
            status = STATUSES.get(vendor_status, OrderStatus.PENDING)
        if status is OrderStatus.WORKING and 0 < filled < quantity:
            status = OrderStatus.PARTIALLY_FILLED
        if status is OrderStatus.FILLED and filled < quantity:
            filled = quantity  # filled by definition; the price follows with the fill or the report
        role, parent = self.role_of(oid, o, order_type)
        side = SIDES.get(str(o.get("action")), sent.side if sent else Side.BUY)
        oco = o.get("ocoId")
        if oco is None and parent is not None:
            oco = f"oso-{parent}"
        return Order(
            order_id=str(oid),
            client_order_id=self.client_id(oid),
            account=self.account_id(acct),
            symbol=inst.symbol,
            side=side,
            quantity=max(quantity, filled),
            order_type=order_type,
            status=status,
            limit_price=limit,
            stop_price=stop,
            tif=tif,
            filled_quantity=filled,
            avg_fill_price=avg,
            role=role,
            parent_id=str(parent) if parent is not None else None,
            oco_group=str(oco) if oco is not None else None,
            reject_reason=(replica.rejects.get(oid) or "rejected by Tradovate")
            if status is OrderStatus.REJECTED
            else "",
            source=sent.source if sent else OrderSource.API,
            broker=self.name,
            created_at=time_or_none(o.get("timestamp")) or utcnow(),
            updated_at=utcnow(),
        )

    def order_now(self, oid: int) -> Order:
        """The order as the stream last described it, or as acknowledged if the stream has not yet."""
        order = self.order(oid)
        if order is not None:
            return order
        sent = self.placed[oid]
        acct = self.replica.accounts[sent.account_id]
        contract = self.replica.contracts[sent.contract_id]
        inst = self.instrument_of(contract)
        return Order(
            order_id=str(oid),
            client_order_id=sent.client_order_id,
            account=self.account_id(acct),
            symbol=inst.symbol if inst else str(contract.get("name")),
            side=sent.side,
            quantity=sent.quantity,
            order_type=sent.order_type,
            status=OrderStatus.PENDING if sent.role is not OrderRole.ENTRY else OrderStatus.WORKING,
            limit_price=sent.limit_price,
            stop_price=sent.stop_price,
            tif=sent.tif,
            role=sent.role,
            parent_id=str(sent.parent_id) if sent.parent_id is not None else None,
            source=sent.source,
            broker=self.name,
        )

    # ------------------------------------------------------------------ fills, positions, balances

    def fill(self, fid: int) -> Fill | None:
        replica = self.replica
        f = replica.fills.get(fid)
        if f is None or f.get("active", True) is False:
            return None
        o = by_id(replica.orders, f.get("orderId"))
        cid = f.get("contractId")
        contract = by_id(replica.contracts, cid if cid is not None else (o or {}).get("contractId"))
        if o is None or contract is None:
            return None
        acct = by_id(replica.accounts, o.get("accountId"))
        inst = self.instrument_of(contract)
        price = self._price(inst, f.get("price")) if inst is not None else None
        if acct is None or inst is None or price is None:
            return None
        qty = count(f.get("qty"), "a fill quantity")
        oid = f.get("orderId")
        return Fill(
            fill_id=str(fid),
            order_id=str(oid),
            client_order_id=self.client_id(oid),
            account=self.account_id(acct),
            symbol=inst.symbol,
            side=SIDES.get(str(f.get("action") or o.get("action")), Side.BUY),
            quantity=qty,
            price=price,
            # Tradovate's fee entity is not in the reference; the instrument's configured per-side fee
            # (the user's own schedule) estimates it.
            fee=inst.fee_per_side * qty,
            broker=self.name,
            ts=time_or_none(f.get("timestamp")) or utcnow(),
        )

    def position(self, p: Mapping[str, Any]) -> Position | None:
        replica = self.replica
        acct = by_id(replica.accounts, p.get("accountId"))
        inst = self.instrument_of(by_id(replica.contracts, p.get("contractId")))
        if acct is None or inst is None:
            return None
        qty = count(p.get("netPos"), "a position")
        avg = dec(p.get("netPrice")) if qty else None
        avg = avg if avg is not None else ZERO
        mark = self.mark(inst.symbol)
        unrealized = inst.money(mark - avg, qty) if qty and mark is not None else ZERO
        gross = ZERO
        for pair in replica.fill_pairs.values():
            if pair.get("positionId") == p.get("id") and pair.get("active", True) is not False:
                buy, sell = dec(pair.get("buyPrice")), dec(pair.get("sellPrice"))
                if buy is not None and sell is not None:
                    gross += inst.money(sell - buy, count(pair.get("qty"), "a fill pair quantity"))
        traded = count(p.get("bought"), "a bought quantity") + count(p.get("sold"), "a sold quantity")
        fees = inst.fee_per_side * traded
        return Position(
            account=self.account_id(acct),
            symbol=inst.symbol,
            quantity=qty,
            avg_price=avg,
            mark=mark,
            realized_pnl=gross - fees,
            unrealized_pnl=unrealized,
            fees=fees,
            ts=time_or_none(p.get("timestamp")) or utcnow(),
        )

    def snapshot(self, account_id: int) -> AccountSnapshot | None:
        replica = self.replica
        acct = replica.accounts.get(account_id)
        cash = replica.cash.get(account_id)
        if acct is None or cash is None:
            return None
        balance = dec(cash.get("amount")) or ZERO
        open_pnl = fees = ZERO
        for p in replica.positions.values():
            if p.get("accountId") != account_id:
                continue
            pos = self.position(p)
            if pos is not None:
                open_pnl += pos.unrealized_pnl
                fees += pos.fees
        return AccountSnapshot(
            account=self.account_id(acct),
            balance=balance,
            equity=balance + open_pnl,
            day_realized_pnl=dec(cash.get("realizedPnL")) or ZERO,
            open_pnl=open_pnl,
            fees_today=fees,
            start_of_day_balance=dec(cash.get("amountSOD")),
            ts=time_or_none(cash.get("timestamp")) or utcnow(),
        )

    def server_snapshot(self, acct: Mapping[str, Any], data: Mapping[str, Any]) -> AccountSnapshot:
        """A ``getcashbalancesnapshot`` answer as an AccountSnapshot (used when no cash entity synced)."""
        if data.get("errorText"):
            raise BrokerError(f"Tradovate balance for {acct.get('name')}: {data['errorText']}")
        cash = dec(data.get("totalCashValue")) or ZERO
        open_pnl = dec(data.get("openPnL")) or ZERO
        return AccountSnapshot(
            account=self.account_id(acct),
            balance=cash,
            equity=dec(data.get("netLiq")) or cash + open_pnl,
            day_realized_pnl=dec(data.get("realizedPnL")) or ZERO,
            open_pnl=open_pnl,
        )
