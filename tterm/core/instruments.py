"""The instrument master: contract specs, symbol parsing, and continuous -> front-contract mapping.

Accepted symbol forms (all case-insensitive; an exchange prefix such as ``CME_MINI:`` and a
leading ``/`` are dropped):

- a futures root, ``MES``: the front contract;
- a continuous symbol, ``MES1!`` (front) or ``MES2!`` (next), as TradingView writes them;
- an explicit contract, ``MESZ6`` (Tradovate style), ``MESZ26`` or ``MESZ2026`` (TradingView style);
  a one-digit year is read as the nearest year that is not more than a year in the past;
- an equity or ETF symbol from the master list (``AAPL``), or one added at run time;
- an option in OCC form, ``AAPL  261218C00200000`` (padding optional), multiplier 100, on the
  class's tick table (penny program or nickel/dime, from ``data/options.toml``);
- an option on a futures contract, ``ESZ6 C6800`` (expiring with the contract), on CME's
  cabinet/regular tick table;
- an instrument a broker taught the engine at run time (:meth:`InstrumentMaster.add`).

Multi-leg orders trade a synthetic strategy instrument (:meth:`InstrumentMaster.strategy`) whose
net price is on a penny grid (or the futures tick) and whose point value is the legs' multiplier.

Contract symbols are always rendered ``ROOT`` + month code + last digit of the year (``MESZ6``).
"""

from __future__ import annotations

import calendar as _cal
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Protocol

from tterm.core.models import AssetClass, Instrument, ModelError, OptionRight, OrderLeg

MONTH_CODES = "FGHJKMNQUVXZ"
"""CME month codes, January (F) to December (Z)."""


class UnknownSymbol(ModelError):
    """A symbol the instrument master cannot resolve."""


class BusinessCalendar(Protocol):
    """What the master needs from the exchange calendar (``tterm.core.clock`` provides one).

    CME contract terms count clearing business days. A calendar that also has
    ``is_clearing_day(d)`` (``tterm.core.clock.HolidayCalendar`` does) is asked that instead: on a
    holiday when Globex only halts early (Juneteenth, Thanksgiving...) there is a session but no
    settlement, so ESM6 expires on Thursday 2026-06-18, not on Juneteenth.
    """

    def is_business_day(self, d: date) -> bool: ...


class WeekdayCalendar:
    """Monday to Friday; the fallback when no holiday calendar is wired in."""

    def is_business_day(self, d: date) -> bool:
        return d.weekday() < 5


@dataclass(frozen=True, slots=True)
class FutureSpec:
    """Contract specification shared by every expiry of one futures product."""

    root: str
    description: str
    exchange: str
    tick_size: Decimal
    tick_value: Decimal
    micro_ratio: int
    fee_per_side: Decimal
    months: tuple[int, ...]
    roll: str
    mini: str = ""
    roll_bdays: int = 0
    last_trade_bdays_before_25th: int = 3


@dataclass(frozen=True, slots=True)
class RollInfo:
    """One row of the visible continuous -> contract mapping table."""

    continuous: str
    contract: str
    last_trade: date
    roll_date: date
    next_contract: str


def _load_specs() -> dict[str, FutureSpec]:
    raw = tomllib.loads(resources.files("tterm.core.data").joinpath("futures.toml").read_text())
    specs: dict[str, FutureSpec] = {}
    for root, row in raw.items():
        months = tuple(MONTH_CODES.index(c) + 1 for c in row["cycle"])
        specs[root] = FutureSpec(
            root=root,
            description=row["description"],
            exchange=row["exchange"],
            tick_size=Decimal(row["tick_size"]),
            tick_value=Decimal(row["tick_value"]),
            micro_ratio=int(row["micro_ratio"]),
            fee_per_side=Decimal(row["fee_per_side"]),
            months=months,
            roll=row["roll"],
            mini=row.get("mini", ""),
            roll_bdays=int(row.get("roll_bdays", 0)),
            last_trade_bdays_before_25th=int(row.get("last_trade_bdays_before_25th", 3)),
        )
    return specs


def _load_equities() -> dict[str, str]:
    raw = tomllib.loads(resources.files("tterm.core.data").joinpath("equities.toml").read_text())
    return dict(raw["symbols"])


def _load_option_ticks() -> tuple[frozenset[str], frozenset[str], dict[str, tuple[tuple[Decimal, Decimal], ...]]]:
    raw = tomllib.loads(resources.files("tterm.core.data").joinpath("options.toml").read_text())
    futures: dict[str, tuple[tuple[Decimal, Decimal], ...]] = {}
    for root, row in raw.get("futures", {}).items():
        tick = Decimal(row["tick"])
        if "small_tick" in row:
            futures[root] = ((Decimal(0), Decimal(row["small_tick"])), (Decimal(row["small_below"]), tick))
        else:
            futures[root] = ((Decimal(0), tick),)
    return frozenset(raw["penny_all_prices"]), frozenset(raw["penny"]), futures


_PENNY_ALL, _PENNY, _FUTURES_OPTION_TICKS = _load_option_ticks()
_PENNY_TABLE = ((Decimal(0), Decimal("0.01")), (Decimal(3), Decimal("0.05")))
_PENNY_ALL_TABLE = ((Decimal(0), Decimal("0.01")),)
_NICKEL_TABLE = ((Decimal(0), Decimal("0.05")), (Decimal(3), Decimal("0.10")))


def option_tick_table(underlying: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """The tick table of an equity option class (penny at all prices, penny, or nickel/dime)."""
    u = underlying.upper()
    if u in _PENNY_ALL:
        return _PENNY_ALL_TABLE
    if u in _PENNY:
        return _PENNY_TABLE
    return _NICKEL_TABLE


_OCC = re.compile(r"^([A-Z]{1,6})\s*(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
_FUT_OPTION = re.compile(r"^([A-Z0-9]+)\s+([CP])(\d+(?:\.\d+)?)$")
_EQUITY = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (4 - first.weekday()) % 7  # Friday is weekday 4
    return first + timedelta(days=offset + 14)


class InstrumentMaster:
    """Resolves any accepted symbol form to an :class:`Instrument`.

    ``today`` supplies the date continuous symbols are mapped on (the exchange trade date, from
    the clock); ``fee_overrides`` maps a root to the user's own per-side fee.
    """

    def __init__(
        self,
        *,
        calendar: BusinessCalendar | None = None,
        today: Callable[[], date] | None = None,
        fee_overrides: dict[str, Decimal] | None = None,
        equities: Iterable[str] = (),
    ) -> None:
        self.calendar: BusinessCalendar = calendar or WeekdayCalendar()
        self._is_bday: Callable[[date], bool] = getattr(self.calendar, "is_clearing_day", self.calendar.is_business_day)
        self._today = today or date.today
        self.specs: dict[str, FutureSpec] = dict(_SPECS)
        self._fee_overrides = {k.upper(): Decimal(v) for k, v in (fee_overrides or {}).items()}
        for root in self._fee_overrides:
            if root not in self.specs:
                raise UnknownSymbol(f"fee override for unknown futures root {root!r}")
        self._equities: dict[str, str] = dict(_EQUITIES)
        self._cache: dict[tuple[str, date], Instrument] = {}  # before add_equity, which clears it
        for sym in equities:
            self.add_equity(sym)
        self._extra: dict[str, Instrument] = {}
        # Longest roots first so MESZ6 parses as MES+Z6, never ES+...
        self._roots_by_len = sorted(self.specs, key=len, reverse=True)

    # ------------------------------------------------------------------ public API

    def today(self) -> date:
        return self._today()

    def add(self, instrument: Instrument) -> bool:
        """Register an instrument a broker told us about (a symbol outside the master lists).

        Returns False when the same instrument was already known (nothing changed).
        """
        key = instrument.symbol.upper()
        if self._extra.get(key) == instrument:
            return False
        self._extra[key] = instrument
        self._cache.clear()
        return True

    @property
    def learned(self) -> list[Instrument]:
        """Every instrument added at run time (sent to attached clients in the snapshot)."""
        return list(self._extra.values())

    def search(self, text: str, limit: int = 20) -> list[Instrument]:
        """Instruments of the master lists whose symbol or description contains ``text``.

        Futures roots resolve to their front contract; symbol prefix matches rank first.
        """
        t = text.strip().upper()
        if not t:
            return []
        hits: list[tuple[int, str, Instrument]] = []
        for root, spec in self.specs.items():
            rank = 0 if root.startswith(t) else 1 if t in spec.description.upper() else -1
            if rank >= 0:
                hits.append((rank, root, self.front(root)))
        for sym, desc in self._equities.items():
            rank = 0 if sym.startswith(t) else 1 if t in desc.upper() else -1
            if rank >= 0:
                hits.append((rank, sym, self.resolve(sym)))
        for sym, inst in self._extra.items():
            rank = 0 if sym.startswith(t) else 1 if t in inst.description.upper() else -1
            if rank >= 0:
                hits.append((rank, sym, inst))
        hits.sort(key=lambda h: (h[0], len(h[1]), h[1]))
        seen: set[str] = set()
        out = []
        for _, _, inst in hits:
            if inst.symbol not in seen:
                seen.add(inst.symbol)
                out.append(inst)
            if len(out) >= limit:
                break
        return out

    def strategy(self, legs: Iterable[tuple[OrderLeg, Instrument]], name: str = "") -> Instrument:
        """The synthetic instrument a multi-leg order trades: net price per unit, the legs' shared
        multiplier as point value. Raises ModelError for legs that cannot form one order."""
        pairs = list(legs)
        if len(pairs) < 2:
            raise ModelError("a multi-leg order needs at least two legs")
        underlyings = {inst.underlying or inst.root or inst.symbol for _, inst in pairs}
        if len(underlyings) > 1:
            raise ModelError(f"legs on different underlyings ({', '.join(sorted(underlyings))}) cannot be one order")
        classes = {inst.asset_class for _, inst in pairs}
        if AssetClass.FUTURE in classes and len(classes) > 1:
            raise ModelError("futures legs cannot be combined with equity or option legs in one order")
        multipliers = {inst.point_value for _, inst in pairs if inst.asset_class is not AssetClass.EQUITY}
        if len(multipliers) > 1:
            raise ModelError(f"legs with different multipliers ({', '.join(map(str, sorted(multipliers)))})")
        point = next(iter(multipliers)) if multipliers else Decimal(1)
        # Complex-order net prices: penny increments (see data/options.toml); futures spreads: the tick.
        tick = min(inst.tick_size for _, inst in pairs) if classes == {AssetClass.FUTURE} else Decimal("0.01")
        underlying = next(iter(underlyings))
        label = name or " / ".join(
            f"{'+' if leg.side.sign > 0 else '-'}{leg.ratio} {inst.symbol}" for leg, inst in pairs
        )
        expiries = [inst.expiry for _, inst in pairs if inst.expiry is not None]
        asset = AssetClass.FUTURE if classes == {AssetClass.FUTURE} else AssetClass.OPTION
        return Instrument(
            symbol=label,
            asset_class=asset,
            tick_size=tick,
            tick_value=tick * point,
            description=f"{underlying} {len(pairs)}-leg strategy",
            underlying=underlying,
            root=pairs[0][1].root,
            expiry=min(expiries) if expiries else None,
            fee_per_side=sum((inst.fee_per_side * leg.ratio for leg, inst in pairs), Decimal(0)),
        )

    def add_equity(self, symbol: str, description: str = "") -> None:
        sym = symbol.strip().upper()
        if not _EQUITY.match(sym):
            raise UnknownSymbol(f"{symbol!r} is not a valid equity symbol (1-5 letters, optional .X class)")
        self._equities.setdefault(sym, description)
        self._cache.clear()

    @property
    def equities(self) -> list[str]:
        return sorted(self._equities)

    @property
    def roots(self) -> list[str]:
        return list(self.specs)

    def spec(self, root: str) -> FutureSpec:
        try:
            return self.specs[root.upper()]
        except KeyError:
            raise UnknownSymbol(f"unknown futures root {root!r}") from None

    def fee_per_side(self, instrument: Instrument) -> Decimal:
        return instrument.fee_per_side

    def resolve(self, symbol: str, *, on: date | None = None) -> Instrument:
        """The instrument ``symbol`` names on ``on`` (default: today's trade date)."""
        on = on or self._today()
        key = (symbol, on)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        inst = self._resolve(symbol, on)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = inst
        return inst

    def front(self, root: str, *, on: date | None = None, nth: int = 1) -> Instrument:
        """The ``nth`` contract of ``root`` that has not reached its roll date on ``on``."""
        spec = self.spec(root)
        on = on or self._today()
        if nth < 1:
            raise UnknownSymbol(f"{root}{nth}!: the continuous index starts at 1")
        # Every roll rule rolls a contract in its own month or the month before, so no contract month
        # before ``on``'s can still be ahead of its roll date (and earlier years' holidays never matter).
        year, month = self._contract_months_from(spec, on.year, on.month)
        found = 0
        for _ in range(400):
            if self.roll_date(spec.root, year, month) > on:
                found += 1
                if found == nth:
                    return self.contract(spec.root, year, month)
            year, month = self._next_month(spec, year, month)
        raise UnknownSymbol(f"no {nth}th contract for {root} after {on}")  # pragma: no cover

    def contract(self, root: str, year: int, month: int) -> Instrument:
        """The instrument for one expiry of ``root``."""
        spec = self.spec(root)
        if month not in spec.months:
            cycle = "".join(MONTH_CODES[m - 1] for m in spec.months)
            raise UnknownSymbol(
                f"{root} has no {MONTH_CODES[month - 1]} ({_cal.month_abbr[month]}) contract; its cycle is {cycle}"
            )
        fee = self._fee_overrides.get(spec.root, spec.fee_per_side)
        return Instrument(
            symbol=f"{spec.root}{MONTH_CODES[month - 1]}{year % 10}",
            asset_class=AssetClass.FUTURE,
            tick_size=spec.tick_size,
            tick_value=spec.tick_value,
            description=f"{spec.description} {_cal.month_abbr[month]} {year}",
            exchange=spec.exchange,
            root=spec.root,
            expiry=self.last_trade_date(spec.root, year, month),
            micro_ratio=spec.micro_ratio,
            fee_per_side=fee,
        )

    def last_trade_date(self, root: str, year: int, month: int) -> date:
        """The contract's last trading day, by the product's CME rule."""
        spec = self.spec(root)
        if spec.roll == "equity_index":
            return self._prev_bday(_third_friday(year, month), inclusive=True)
        if spec.roll == "energy":
            py, pm = (year, month - 1) if month > 1 else (year - 1, 12)
            d25 = date(py, pm, 25)
            n = spec.last_trade_bdays_before_25th + (0 if self._is_bday(d25) else 1)
            return self._bdays_before(d25, n)
        if spec.roll == "metal":
            last = date(year, month, _cal.monthrange(year, month)[1])
            d = self._prev_bday(last, inclusive=True)
            return self._bdays_before(d, 2)
        raise ModelError(f"{root}: unknown roll rule {spec.roll!r}")  # pragma: no cover

    def roll_date(self, root: str, year: int, month: int) -> date:
        """The first trade date on which the continuous symbol maps to the next contract."""
        spec = self.spec(root)
        if spec.roll == "equity_index":
            # CME equity-index roll: eight calendar days before expiry (the Thursday before).
            return _third_friday(year, month) - timedelta(days=8)
        if spec.roll == "energy":
            return self._bdays_before(self.last_trade_date(root, year, month), spec.roll_bdays)
        if spec.roll == "metal":
            py, pm = (year, month - 1) if month > 1 else (year - 1, 12)
            first_notice = self._prev_bday(date(py, pm, _cal.monthrange(py, pm)[1]), inclusive=True)
            return self._bdays_before(first_notice, spec.roll_bdays)
        raise ModelError(f"{root}: unknown roll rule {spec.roll!r}")  # pragma: no cover

    def roll_table(self, *, on: date | None = None) -> list[RollInfo]:
        """Continuous -> front contract for every root, with the roll date shown to the user."""
        on = on or self._today()
        rows = []
        for root in self.specs:
            front = self.front(root, on=on)
            nxt = self.front(root, on=on, nth=2)
            y, m = self._year_month(front)
            rows.append(
                RollInfo(
                    continuous=f"{root}1!",
                    contract=front.symbol,
                    last_trade=self.last_trade_date(root, y, m),
                    roll_date=self.roll_date(root, y, m),
                    next_contract=nxt.symbol,
                )
            )
        return rows

    def parse_contract(self, symbol: str, *, on: date | None = None) -> tuple[str, int, int] | None:
        """``(root, year, month)`` for an explicit contract symbol, or None if it is not one."""
        s = _clean(symbol)
        on = on or self._today()
        for root in self._roots_by_len:
            if not s.startswith(root):
                continue
            rest = s[len(root) :]
            m = re.fullmatch(r"([FGHJKMNQUVXZ])(\d{1,4})", rest)
            if not m or len(m.group(2)) == 3:
                continue
            month = MONTH_CODES.index(m.group(1)) + 1
            digits = m.group(2)
            if len(digits) == 4:
                year = int(digits)
            elif len(digits) == 2:
                year = 2000 + int(digits)
            else:
                year = on.year - on.year % 10 + int(digits)
                if year < on.year - 1:
                    year += 10
            return root, year, month
        return None

    # ------------------------------------------------------------------ internals

    def _resolve(self, symbol: str, on: date) -> Instrument:
        s = _clean(symbol)
        if not s:
            raise UnknownSymbol("empty symbol")
        if s in self._extra:
            return self._extra[s]
        if s in self.specs:
            return self.front(s, on=on)
        m = re.fullmatch(r"([A-Z0-9]+?)(\d)!", s)
        if m and m.group(1) in self.specs:
            return self.front(m.group(1), on=on, nth=int(m.group(2)))
        parsed = self.parse_contract(s, on=on)
        if parsed is not None:
            return self.contract(*parsed)
        m = _OCC.match(s.replace(" ", "") if len(s) > 15 else s)
        if m is None and " " in symbol:
            m = _OCC.match(symbol.strip().upper().replace(" ", ""))
        if m:
            return self._option(m)
        fm = _FUT_OPTION.match(s)
        if fm:
            return self._futures_option(fm, on)
        if s in self._equities:
            return Instrument(
                symbol=s,
                asset_class=AssetClass.EQUITY,
                tick_size=Decimal("0.01"),
                tick_value=Decimal("0.01"),
                description=self._equities[s],
            )
        hint = ""
        close = [r for r in self.specs if s.startswith(r)]
        if close:
            hint = f" (did you mean {close[0]} or a contract like {self.front(close[0], on=on).symbol}?)"
        raise UnknownSymbol(f"unknown symbol {symbol!r}{hint}")

    def _option(self, m: re.Match[str]) -> Instrument:
        root, yy, mm, dd, cp, strike = m.groups()
        try:
            expiry = date(2000 + int(yy), int(mm), int(dd))
        except ValueError:
            raise UnknownSymbol(f"option {m.group(0)!r} has an impossible expiry date") from None
        strike_d = Decimal(strike) / 1000
        # Multiplier 100; the tick depends on the class and the premium (data/options.toml).
        table = option_tick_table(root)
        tick = table[0][1]
        return Instrument(
            symbol=f"{root:<6}{yy}{mm}{dd}{cp}{strike}",
            asset_class=AssetClass.OPTION,
            tick_size=tick,
            tick_value=tick * 100,
            tick_table=table if len(table) > 1 else (),
            description=f"{root} {expiry:%d %b %y} {strike_d.normalize():f} {'Call' if cp == 'C' else 'Put'}",
            underlying=root,
            expiry=expiry,
            strike=strike_d,
            right=OptionRight.CALL if cp == "C" else OptionRight.PUT,
        )

    def _futures_option(self, m: re.Match[str], on: date) -> Instrument:
        """``ESZ6 C6800``: an option on the ESZ6 contract, expiring with it (quarterly options)."""
        contract, cp, strike = m.groups()
        parsed = self.parse_contract(contract, on=on)
        if parsed is None:
            raise UnknownSymbol(f"{contract!r} in {m.group(0)!r} is not a futures contract (e.g. ESZ6 C6800)")
        future = self.contract(*parsed)
        table = _FUTURES_OPTION_TICKS.get(future.root)
        if table is None:
            raise UnknownSymbol(f"tterm has no option tick table for {future.root} futures options")
        strike_d = Decimal(strike)
        if not future.is_on_tick(strike_d) and strike_d % 1 != 0:
            raise UnknownSymbol(f"strike {strike} of {m.group(0)!r} is not a price {future.root} trades at")
        point = future.point_value
        tick = table[0][1]
        return Instrument(
            symbol=f"{future.symbol} {cp}{strike_d.normalize():f}",
            asset_class=AssetClass.OPTION,
            tick_size=tick,
            tick_value=tick * point,
            tick_table=table if len(table) > 1 else (),
            description=f"{future.description} {strike_d.normalize():f} {'Call' if cp == 'C' else 'Put'}",
            exchange=future.exchange,
            root=future.root,
            underlying=future.symbol,
            expiry=future.expiry,
            strike=strike_d,
            right=OptionRight.CALL if cp == "C" else OptionRight.PUT,
            fee_per_side=future.fee_per_side,
        )

    @staticmethod
    def _next_month(spec: FutureSpec, year: int, month: int) -> tuple[int, int]:
        for m in spec.months:
            if m > month:
                return year, m
        return year + 1, spec.months[0]

    @staticmethod
    def _contract_months_from(spec: FutureSpec, year: int, month: int) -> tuple[int, int]:
        for m in spec.months:
            if m >= month:
                return year, m
        return year + 1, spec.months[0]

    def _year_month(self, inst: Instrument) -> tuple[int, int]:
        assert inst.expiry is not None
        parsed = self.parse_contract(inst.symbol, on=inst.expiry)
        assert parsed is not None
        return parsed[1], parsed[2]

    def _prev_bday(self, d: date, *, inclusive: bool) -> date:
        if not inclusive:
            d -= timedelta(days=1)
        while not self._is_bday(d):
            d -= timedelta(days=1)
        return d

    def _bdays_before(self, d: date, n: int) -> date:
        for _ in range(n):
            d = self._prev_bday(d, inclusive=False)
        return d


def _clean(symbol: str) -> str:
    s = symbol.strip().upper()
    if ":" in s:
        s = s.split(":", 1)[1]
    return s.lstrip("/")


@lru_cache(maxsize=1)
def _specs_once() -> dict[str, FutureSpec]:
    return _load_specs()


_SPECS = _specs_once()
_EQUITIES = _load_equities()
