"""SQLite persistence for the paper broker, so a restart resumes exactly where it stopped.

One file (WAL mode, checkpointed off the event loop by :mod:`tterm.core.sqlite`) holds balances,
positions, today's orders (working ones with everything the matching engine needs: trigger state,
bracket, OCO links), today's fills, the last market per symbol and the id counter. Every broker
operation writes its changes in one transaction.
Decimals are stored as text, never floats, so a balance survives a restart to the cent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from tterm.brokers.paper.feed import WalkState
from tterm.brokers.paper.groups import BracketGroup, Exit
from tterm.brokers.paper.matching import Working
from tterm.core.files import private_dir
from tterm.core.journal import compact_json
from tterm.core.models import (
    AssetClass,
    Bracket,
    Fill,
    Instrument,
    OptionRight,
    Order,
    OrderLeg,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    TimeInForce,
)
from tterm.core.sqlite import WalDatabase

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, balance TEXT NOT NULL, start_of_day TEXT NOT NULL,
    day_realized TEXT NOT NULL, fees_today TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    account TEXT NOT NULL, symbol TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (account, symbol));
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, is_open INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS marks (symbol TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, start INTEGER NOT NULL, open TEXT NOT NULL, high TEXT NOT NULL,
    low TEXT NOT NULL, close TEXT NOT NULL, volume INTEGER NOT NULL,
    PRIMARY KEY (symbol, start)) WITHOUT ROWID;
"""

#: One one-minute bar as stored: symbol, start (epoch seconds), open, high, low, close, volume.
BarRow = tuple[str, int, Decimal, Decimal, Decimal, Decimal, int]


class StoreError(RuntimeError):
    """The paper state file cannot be opened or is from an incompatible version."""


#: What reading a damaged state file raises; load() turns each into a StoreError naming the file.
#: ArithmeticError: decimal.InvalidOperation (Decimal("abc")) is not a ValueError; AttributeError:
#: a row that is not the object it should be (both found by tests/fuzz).
DAMAGE = (sqlite3.Error, KeyError, ValueError, TypeError, ArithmeticError, AttributeError, IndexError)


# --------------------------------------------------------------------------- encoding


def _enc(value: Any) -> Any:
    cls = type(value)
    if value is None or cls is str or cls is int or cls is bool:
        return value
    if cls is Decimal:
        return str(value)
    if isinstance(value, Enum):
        return value._value_
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _to_json(obj: Any, skip: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _names(type(obj)):
        if name == skip:
            continue
        v = getattr(obj, name)
        c = type(v)
        if v is None or c is str or c is int or c is bool:
            out[name] = v
        elif c is Decimal:
            out[name] = str(v)
        else:
            out[name] = _enc(v)
    return out


#: Encoded instruments by symbol: a position row repeats its instrument on every save.
_INSTRUMENTS: dict[str, tuple[Instrument, dict[str, Any]]] = {}


def instrument_to_json(inst: Instrument) -> dict[str, Any]:
    cached = _INSTRUMENTS.get(inst.symbol)
    if cached is not None and (cached[0] is inst or cached[0] == inst):
        return cached[1]
    d = _to_json(inst, skip="tick_table")
    d["tick_table"] = [[str(a), str(b)] for a, b in inst.tick_table]
    if len(_INSTRUMENTS) >= 4096:
        _INSTRUMENTS.clear()
    _INSTRUMENTS[inst.symbol] = (inst, d)
    return d


def instrument_from_json(d: dict[str, Any]) -> Instrument:
    return Instrument(
        symbol=d["symbol"],
        asset_class=AssetClass(d["asset_class"]),
        tick_size=_finite(d["tick_size"]),
        tick_value=_finite(d["tick_value"]),
        currency=d["currency"],
        description=d["description"],
        exchange=d["exchange"],
        root=d["root"],
        expiry=date.fromisoformat(d["expiry"]) if d["expiry"] else None,
        micro_ratio=int(d["micro_ratio"]),
        fee_per_side=_finite(d["fee_per_side"]),
        underlying=d["underlying"],
        strike=_finite(d["strike"]) if d["strike"] is not None else None,
        right=OptionRight(d["right"]) if d["right"] else None,
        tick_table=tuple((_finite(a), _finite(b)) for a, b in d.get("tick_table", ())),
        vendor_id=d.get("vendor_id", ""),
    )


def order_to_json(o: Order) -> dict[str, Any]:
    d = _to_json(o, skip="legs")
    d["legs"] = [[leg.symbol, leg.side.value, leg.ratio, leg.effect.value, leg.account] for leg in o.legs]
    return d


def _leg_from_json(row: list[Any]) -> OrderLeg:
    """A saved leg (files from before open/close effects hold three fields)."""
    sym, side, ratio, *rest = row
    effect = PositionEffect(rest[0]) if rest else PositionEffect.AUTO
    return OrderLeg(sym, Side(side), int(ratio), effect, rest[1] if len(rest) > 1 else "")


def _finite(v: Any) -> Decimal:
    """A saved number (text), refused (ValueError -> StoreError) unless finite: a NaN price loaded
    from a damaged file would raise deep in the matching engine instead (found by tests/fuzz)."""
    if not isinstance(v, str | int):
        raise ValueError(f"{v!r} is not a saved number")
    d = Decimal(v)
    if not d.is_finite():
        raise ValueError(f"{v!r} is not a finite number")
    return d


def _count(v: Any) -> int:
    """A saved quantity: a whole number, not negative."""
    n = int(v)
    if n < 0:
        raise ValueError(f"a saved quantity of {n}")
    return n


def _dec(v: str | None) -> Decimal | None:
    return _finite(v) if v is not None else None


def order_from_json(d: dict[str, Any]) -> Order:
    return Order(
        order_id=d["order_id"],
        client_order_id=d["client_order_id"],
        account=d["account"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        quantity=_count(d["quantity"]),
        order_type=OrderType(d["order_type"]),
        status=OrderStatus(d["status"]),
        limit_price=_dec(d["limit_price"]),
        stop_price=_dec(d["stop_price"]),
        tif=TimeInForce(d["tif"]),
        filled_quantity=_count(d["filled_quantity"]),
        avg_fill_price=_dec(d["avg_fill_price"]),
        role=OrderRole(d["role"]),
        parent_id=d["parent_id"],
        oco_group=d["oco_group"],
        reject_reason=d["reject_reason"],
        legs=tuple(_leg_from_json(row) for row in d.get("legs", ())),
        source=OrderSource(d["source"]),
        broker=d["broker"],
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        price_effect=PriceEffect(d["price_effect"]) if d.get("price_effect") else None,
        trail_amount=_dec(d.get("trail_amount")),
        emulated=bool(d.get("emulated", False)),
    )


def fill_to_json(f: Fill) -> dict[str, Any]:
    return _to_json(f)


def fill_from_json(d: dict[str, Any]) -> Fill:
    return Fill(
        fill_id=d["fill_id"],
        order_id=d["order_id"],
        client_order_id=d["client_order_id"],
        account=d["account"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        quantity=_count(d["quantity"]),
        price=_finite(d["price"]),
        fee=_finite(d["fee"]),
        broker=d["broker"],
        ts=datetime.fromisoformat(d["ts"]),
    )


def _bracket_to_json(b: Bracket | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return _to_json(b)


def _bracket_from_json(d: dict[str, Any] | None) -> Bracket | None:
    if d is None:
        return None
    return Bracket(
        take_profit_ticks=d["take_profit_ticks"],
        stop_loss_ticks=d["stop_loss_ticks"],
        take_profit_price=_dec(d["take_profit_price"]),
        stop_loss_price=_dec(d["stop_loss_price"]),
    )


def working_to_json(w: Working) -> dict[str, Any]:
    return {
        "order": order_to_json(w.order),
        "instrument": instrument_to_json(w.instrument),
        "trade_date": w.trade_date.isoformat(),
        "seq": w.seq,
        "bracket": _bracket_to_json(w.bracket),
        "triggered": w.triggered,
        "reduce_only": w.reduce_only,
        "group": w.group,
        "groups_made": w.groups_made,
        "notional": str(w.notional),
        "legs": [instrument_to_json(inst) for _, inst in w.legs],
        "trail_ref": _enc(w.trail_ref),
        "held": w.held,
        "exits": [_exit_to_json(x) for x in w.exits],
    }


def _exit_to_json(x: Exit) -> dict[str, Any]:
    return {
        "role": x.role.value,
        "order_type": x.order_type.value,
        "limit_price": _enc(x.limit_price),
        "stop_price": _enc(x.stop_price),
        "trail_amount": _enc(x.trail_amount),
        "client_order_id": x.client_order_id,
        "order_id": x.order_id,
    }


def _exit_from_json(d: dict[str, Any]) -> Exit:
    return Exit(
        role=OrderRole(d["role"]),
        order_type=OrderType(d["order_type"]),
        limit_price=_dec(d["limit_price"]),
        stop_price=_dec(d["stop_price"]),
        trail_amount=_dec(d["trail_amount"]),
        client_order_id=d["client_order_id"],
        order_id=d["order_id"],
    )


def working_from_json(d: dict[str, Any]) -> Working:
    order = order_from_json(d["order"])
    leg_insts = [instrument_from_json(x) for x in d.get("legs", ())]
    return Working(
        order=order,
        instrument=instrument_from_json(d["instrument"]),
        trade_date=date.fromisoformat(d["trade_date"]),
        seq=int(d["seq"]),
        bracket=_bracket_from_json(d["bracket"]),
        triggered=bool(d["triggered"]),
        reduce_only=bool(d["reduce_only"]),
        group=d["group"],
        groups_made=int(d["groups_made"]),
        notional=_finite(d["notional"]),
        legs=tuple(zip(order.legs, leg_insts, strict=True)) if leg_insts else (),
        trail_ref=_dec(d.get("trail_ref")),
        held=bool(d.get("held", False)),
        exits=tuple(_exit_from_json(x) for x in d.get("exits", ())),
    )


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    balance: Decimal
    start_of_day: Decimal
    day_realized: Decimal
    fees_today: Decimal


@dataclass(frozen=True, slots=True)
class PositionRow:
    account: str
    instrument: Instrument
    quantity: int
    lots: tuple[tuple[int, Decimal], ...]
    realized: Decimal
    fees: Decimal


@dataclass(slots=True)
class StoredState:
    """Everything read back from the file on start."""

    meta: dict[str, str] = field(default_factory=dict)
    accounts: list[AccountRow] = field(default_factory=list)
    positions: list[PositionRow] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    working: list[Working] = field(default_factory=list)
    groups: list[BracketGroup] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    marks: list[WalkState] = field(default_factory=list)


class PaperStore:
    """The paper broker's state file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            private_dir(self.path.parent, tighten=False)
            # Checkpoints run on the WalDatabase's thread, never inside a broker operation's commit.
            self._wal = WalDatabase(self.path, start=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open paper state file ({exc})") from None
        self._db = self._wal.db
        # What the file holds, so unchanged meta values and account rows are not rewritten.
        self._meta: dict[str, str] = {}
        self._accounts: dict[str, AccountRow] = {}
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path}: paper state file is schema version {version}; this tterm reads "
                    f"version {SCHEMA_VERSION}"
                )
            self._wal.start()
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self._wal.close()
            raise StoreError(f"{self.path}: cannot open paper state file ({exc})") from None
        except BaseException:
            self._wal.close()
            raise

    def close(self) -> None:
        self._wal.close()

    def load(self) -> StoredState:
        db = self._db
        st = StoredState()
        try:
            st.meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            for row in db.execute("SELECT id, balance, start_of_day, day_realized, fees_today FROM accounts"):
                st.accounts.append(AccountRow(row[0], *(_finite(v) for v in row[1:])))
            self._meta = dict(st.meta)
            self._accounts = {a.id: a for a in st.accounts}
            for (data,) in db.execute("SELECT data FROM positions"):
                d = json.loads(data)
                st.positions.append(
                    PositionRow(
                        account=d["account"],
                        instrument=instrument_from_json(d["instrument"]),
                        quantity=int(d["quantity"]),
                        lots=tuple((int(q), _finite(px)) for q, px in d["lots"]),
                        realized=_finite(d["realized"]),
                        fees=_finite(d["fees"]),
                    )
                )
            for is_open, data in db.execute("SELECT is_open, data FROM orders ORDER BY rowid"):
                d = json.loads(data)
                if is_open:
                    w = working_from_json(d)
                    st.working.append(w)
                    st.orders.append(w.order)
                else:
                    st.orders.append(order_from_json(d["order"]))
            for (data,) in db.execute("SELECT data FROM groups"):
                d = json.loads(data)
                st.groups.append(
                    BracketGroup(
                        d["group_id"], d["entry_id"], d["tp_id"], d["sl_id"], d["exposure"], d.get("kind", "bracket")
                    )
                )
            for (data,) in db.execute("SELECT data FROM fills ORDER BY rowid"):
                st.fills.append(fill_from_json(json.loads(data)))
            for (data,) in db.execute("SELECT data FROM marks"):
                d = json.loads(data)
                st.marks.append(
                    WalkState(
                        symbol=d["symbol"],
                        bid=_finite(d["bid"]),
                        ask=_finite(d["ask"]),
                        last=_dec(d["last"]),
                        prev_close=_dec(d["prev_close"]),
                        volume=int(d["volume"]),
                    )
                )
        except DAMAGE as exc:
            raise StoreError(f"{self.path}: paper state file is damaged ({type(exc).__name__}: {exc})") from None
        return st

    def write(
        self,
        *,
        meta: dict[str, str] | None = None,
        accounts: Iterable[AccountRow] = (),
        positions: Iterable[PositionRow] = (),
        orders: Iterable[tuple[Order, Working | None]] = (),
        groups: Iterable[BracketGroup] | None = None,
        fills: Iterable[Fill] = (),
        marks: Iterable[WalkState] = (),
        bars: Iterable[BarRow] = (),
    ) -> None:
        """Write one batch of changes atomically. ``groups`` (when given) replaces every group.

        Meta values and account rows equal to what the file already holds are not written again
        (the broker passes every account on each save; usually one changed, or none).
        """
        db = self._db
        new_meta = {k: v for k, v in (meta or {}).items() if self._meta.get(k) != v}
        new_accounts = [a for a in accounts if self._accounts.get(a.id) != a]
        db.execute("BEGIN")
        try:
            for k, v in new_meta.items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, v))
            for a in new_accounts:
                db.execute(
                    "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)",
                    (a.id, str(a.balance), str(a.start_of_day), str(a.day_realized), str(a.fees_today)),
                )
            for p in positions:
                data = {
                    "account": p.account,
                    "instrument": instrument_to_json(p.instrument),
                    "quantity": p.quantity,
                    "lots": [[q, str(px)] for q, px in p.lots],
                    "realized": str(p.realized),
                    "fees": str(p.fees),
                }
                db.execute(
                    "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                    (p.account, p.instrument.symbol, compact_json(data)),
                )
            for order, working in orders:
                data = working_to_json(working) if working is not None else {"order": order_to_json(order)}
                db.execute(
                    "INSERT INTO orders (order_id, is_open, data) VALUES (?, ?, ?) "
                    "ON CONFLICT(order_id) DO UPDATE SET is_open = excluded.is_open, data = excluded.data",
                    (order.order_id, 1 if working is not None else 0, compact_json(data)),
                )
            if groups is not None:
                db.execute("DELETE FROM groups")
                for g in groups:
                    data = {
                        "group_id": g.group_id,
                        "entry_id": g.entry_id,
                        "tp_id": g.tp_id,
                        "sl_id": g.sl_id,
                        "exposure": g.exposure,
                        "kind": g.kind,
                    }
                    db.execute("INSERT INTO groups VALUES (?, ?)", (g.group_id, compact_json(data)))
            for f in fills:
                db.execute("INSERT OR REPLACE INTO fills VALUES (?, ?)", (f.fill_id, compact_json(fill_to_json(f))))
            for m in marks:
                data = {
                    "symbol": m.symbol,
                    "bid": str(m.bid),
                    "ask": str(m.ask),
                    "last": _enc(m.last),
                    "prev_close": _enc(m.prev_close),
                    "volume": m.volume,
                }
                db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (m.symbol, compact_json(data)))
            self._insert_bars(bars)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._meta.update(new_meta)
        self._accounts.update((a.id, a) for a in new_accounts)

    def _insert_bars(self, bars: Iterable[BarRow]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((sym, t, str(o), str(h), str(low), str(c), v) for sym, t, o, h, low, c, v in bars),
        )

    def write_bars(self, bars: Iterable[BarRow]) -> None:
        """Save one-minute bars (a symbol's synthesized history, in one transaction)."""
        db = self._db
        db.execute("BEGIN")
        try:
            self._insert_bars(bars)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def load_bars(self, symbol: str) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, int]]:
        """``symbol``'s saved one-minute bars, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT start, open, high, low, close, volume FROM bars WHERE symbol = ? ORDER BY start", (symbol,)
            ).fetchall()
            return [(int(t), Decimal(o), Decimal(h), Decimal(low), Decimal(c), int(v)) for t, o, h, low, c, v in rows]
        except (sqlite3.Error, ArithmeticError, ValueError) as exc:
            raise StoreError(f"{self.path}: paper bars are damaged ({type(exc).__name__}: {exc})") from None

    def prune_bars(self, before: int) -> None:
        """Forget one-minute bars that start before epoch second ``before``."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM bars WHERE start < ?", (before,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def new_day(self) -> None:
        """Forget yesterday's finished orders, fills and flat positions (a new trade date)."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM orders WHERE is_open = 0")
            db.execute("DELETE FROM fills")
            db.execute("DELETE FROM positions WHERE json_extract(data, '$.quantity') = 0")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
