"""Tastytrade's instruments: core <-> vendor symbols, streamer symbols, lookup and search.

The provider keeps, per core symbol, how Tastytrade knows it (:class:`~.mapping.TastySymbol`:
its symbol, instrument-type and DXLink streamer symbol). Streamer symbols come from the vendor's
records (instrument lookups, chains, positions), never built by hand (B5); an equity's streamer
symbol is its ticker (the vendor's records say so), so it needs no lookup. Instruments the master
does not know (future options, equities outside its lists) are learned and published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from pydantic import ValidationError

from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade.rest import NotFound, TastytradeRest
from tterm.brokers.tastytrade.schemas import (
    EquityOptionRecord,
    EquityRecord,
    FutureOptionRecord,
    FutureRecord,
    SearchRow,
)
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError, OrderLeg

log = logging.getLogger(__name__)


class TastytradeInstruments:
    """Lookup, search and the symbol tables of one login."""

    def __init__(
        self, rest: TastytradeRest, master: InstrumentMaster, *, on_learned: Callable[[Instrument], None]
    ) -> None:
        self.rest = rest
        self.master = master
        self._on_learned = on_learned
        self.by_core: dict[str, m.TastySymbol] = {}
        self.by_streamer: dict[str, str] = {}  # streamer symbol -> core symbol

    # ------------------------------------------------------------------ tables

    def note(self, core: str, tasty: str, kind: str, streamer: str = "") -> None:
        old = self.by_core.get(core)
        streamer = streamer or (old.streamer if old else "")
        self.by_core[core] = m.TastySymbol(tasty, kind, streamer)
        if streamer:
            self.by_streamer[streamer] = core

    def learn(self, inst: Instrument) -> None:
        try:
            self.master.resolve(inst.symbol)
            return
        except (UnknownSymbol, ModelError):
            pass
        self.master.add(inst)
        self._on_learned(inst)

    # ------------------------------------------------------------------ vendor -> core

    def resolve(self, tasty: str, kind: str) -> Instrument:
        """The core instrument of a vendor symbol (synchronous: from the master or what was learned)."""
        core = m.core_symbol(tasty, kind)
        if kind == m.FUTURE_OPTION:
            try:
                return self.master.resolve(core)
            except (UnknownSymbol, ModelError):
                pass
            future_symbol = tasty.strip().removeprefix("./").split(" ", 1)[0]
            future = self.master.resolve(m.core_symbol(future_symbol, m.FUTURE))
            inst = m.future_option_instrument(tasty, future)
            self.learn(inst)
        else:
            try:
                inst = self.master.resolve(core)
            except UnknownSymbol:
                if kind != m.EQUITY:
                    raise
                inst = _equity(core)
                self.learn(inst)
        self.note(inst.symbol, tasty, kind)
        return inst

    def strategy_name(self, pairs: list[tuple[OrderLeg, Instrument]]) -> str:
        try:
            inst = self.master.strategy(pairs)
        except ModelError:
            return " / ".join(f"{'+' if leg.side.sign > 0 else '-'}{leg.ratio} {i.symbol}" for leg, i in pairs)
        self.learn(inst)
        return inst.symbol

    # ------------------------------------------------------------------ core -> vendor

    def tasty(self, inst: Instrument) -> m.TastySymbol:
        """The vendor symbol of a core instrument (no streamer symbol needed)."""
        known = self.by_core.get(inst.symbol)
        if known is not None:
            return known
        kind = m.kind_of(inst)
        if kind == m.FUTURE:
            return m.TastySymbol(m.future_to_tasty(inst.symbol), kind)
        if kind == m.EQUITY_OPTION:
            return m.TastySymbol(m.core_symbol(inst.symbol, kind), kind)
        if kind == m.EQUITY:
            return m.TastySymbol(inst.symbol, kind, inst.symbol)
        raise m.Refused(
            f"{inst.symbol}: tterm does not know Tastytrade's symbol for this future option; "
            "open it from the Tastytrade option chain"
        )

    async def streamer(self, inst: Instrument) -> str:
        """The DXLink symbol of ``inst``, looked up from the vendor's record the first time."""
        known = self.tasty(inst)
        if known.streamer:
            return known.streamer
        try:
            if known.kind == m.FUTURE:
                rows = await self.rest.futures([known.symbol])
                recs = [FutureRecord.model_validate(r) for r in rows]
                rec = next((r for r in recs if r.symbol.lstrip("/") == known.symbol.lstrip("/")), None)
                streamer = rec.streamer_symbol if rec else ""
            elif known.kind == m.EQUITY_OPTION:
                streamer = EquityOptionRecord.model_validate(
                    await self.rest.equity_option(known.symbol)
                ).streamer_symbol
            elif known.kind == m.FUTURE_OPTION:
                streamer = FutureOptionRecord.model_validate(
                    await self.rest.future_option(known.symbol)
                ).streamer_symbol
            else:
                streamer = EquityRecord.model_validate(await self.rest.equity(known.symbol)).streamer_symbol
        except NotFound:
            raise BrokerError(f"Tastytrade does not list {inst.symbol} ({known.symbol})", sent=False) from None
        except ValidationError as exc:
            raise BrokerError(f"Tastytrade's record of {known.symbol} is unreadable ({_first(exc)})") from None
        if not streamer:
            raise BrokerError(f"Tastytrade's record of {known.symbol} has no streamer symbol", sent=False)
        self.note(inst.symbol, known.symbol, known.kind, streamer)
        return streamer

    # ------------------------------------------------------------------ lookup and search

    async def lookup(self, symbol: str) -> Instrument | None:
        """An instrument the master does not know: a future option (``./ESZ6 EW4X6 …``) or an equity."""
        text = symbol.strip().upper()
        try:
            if text.startswith("./") or (" " in text and text.split(" ", 1)[0][-1:].isdigit()):
                tasty = text if text.startswith("./") else "./" + text
                rec = FutureOptionRecord.model_validate(await self.rest.future_option(tasty))
                inst = self.resolve(rec.symbol, m.FUTURE_OPTION)
                self.note(inst.symbol, rec.symbol, m.FUTURE_OPTION, rec.streamer_symbol)
                return inst
            if text.startswith("/"):
                try:
                    return self.resolve(text, m.FUTURE)
                except UnknownSymbol:
                    return await self._future(text)
            rec_e = EquityRecord.model_validate(await self.rest.equity(text))
        except NotFound:
            return None
        except (ValidationError, m.MappingError, UnknownSymbol) as exc:
            log.info("Tastytrade lookup of %s: %s", symbol, exc)
            return None
        inst = _equity(rec_e.symbol, rec_e.description, m.tick_table_of(rec_e.tick_sizes))
        self.learn(inst)
        self.note(inst.symbol, rec_e.symbol, m.EQUITY, rec_e.streamer_symbol or rec_e.symbol)
        return self.master.resolve(inst.symbol)

    async def _future(self, tasty: str) -> Instrument | None:
        """A futures contract whose product the master does not list, from Tastytrade's record."""
        rows = await self.rest.futures([tasty])
        for row in rows:
            rec = FutureRecord.model_validate(row)
            if rec.symbol.lstrip("/") != tasty.lstrip("/") or not rec.tick_size or not rec.notional_multiplier:
                continue
            inst = Instrument(
                symbol=m.core_symbol(rec.symbol, m.FUTURE),
                asset_class=AssetClass.FUTURE,
                tick_size=rec.tick_size,
                tick_value=rec.tick_size * rec.notional_multiplier,
                description=rec.description or rec.product_code,
                root=rec.product_code,
                expiry=rec.expiration_date,
            )
            self.learn(inst)
            self.note(inst.symbol, rec.symbol, m.FUTURE, rec.streamer_symbol)
            return inst
        return None

    async def search(self, text: str, limit: int = 20) -> list[Instrument]:
        out: list[Instrument] = []
        for row in await self.rest.search(text.strip()):
            try:
                rec = SearchRow.model_validate(row)
                inst = self.resolve(rec.symbol, rec.instrument_type or m.EQUITY)
            except (ValidationError, m.MappingError, ModelError) as exc:
                log.debug("Tastytrade search row skipped: %s", exc)
                continue
            if inst.asset_class is AssetClass.EQUITY and rec.description and not inst.description:
                inst = _equity(inst.symbol, rec.description)
            out.append(inst)
            if len(out) >= limit:
                break
        return out


def _equity(symbol: str, description: str = "", table: tuple[tuple[Decimal, Decimal], ...] = ()) -> Instrument:
    """An equity outside the master's lists: Reg NMS ticks (0.0001 under $1, cents above) unless told."""
    table = table or ((Decimal(0), Decimal("0.0001")), (Decimal(1), Decimal("0.01")))
    smallest = min(t for _, t in table)
    return Instrument(
        symbol=symbol.strip().upper(),
        asset_class=AssetClass.EQUITY,
        tick_size=smallest,
        tick_value=smallest,
        tick_table=table if len(table) > 1 else (),
        description=description,
    )


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0] if exc.errors() else {}
    return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
