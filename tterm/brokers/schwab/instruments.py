"""Schwab's instruments: symbols both ways, lookup and search (the adapter's InstrumentProvider).

A tterm symbol resolves through the instrument master first (equities it lists, OCC options,
futures contracts). What the master does not know is asked of Schwab once: ``/instruments``
(``symbol-search``) for a ticker, and becomes an Instrument announced through ``on_learned``;
an option whose root the master cannot parse (``AAPL1``) is built from its symbol. Search asks
``/instruments`` by symbol prefix (``symbol-regex``) and by description (``desc-search``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tterm.brokers.schwab import symbols as sy
from tterm.brokers.schwab.market import instruments_of
from tterm.brokers.schwab.rest import SchwabRest
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError, OrderLeg

log = logging.getLogger(__name__)
#: /instruments asset types that trade like shares (A5; the fake says ETF, positions say COLLECTIVE_INVESTMENT).
SHARES = frozenset({"EQUITY", "ETF", "COLLECTIVE_INVESTMENT"})
_TICKER = re.compile(r"^[A-Z]{1,5}([./][A-Z])?$")


class SchwabInstruments:
    """Symbol mapping, lookup and search for one Schwab login."""

    def __init__(self, rest: SchwabRest, master: InstrumentMaster, *, on_learned: Callable[[Instrument], None]) -> None:
        self._rest = rest
        self._master = master
        self._on_learned = on_learned

    # ------------------------------------------------------------------ symbols both ways

    def resolve(self, schwab_symbol: str) -> Instrument | None:
        """The instrument behind a symbol in Schwab JSON (learned if the master lacked it); None
        for a symbol tterm cannot place (logged once per call site, never raised into a poll)."""
        try:
            inst = sy.to_core(schwab_symbol, self._master)
        except (UnknownSymbol, ModelError):
            text = schwab_symbol.strip().upper()
            if not _TICKER.match(text):
                log.info("Schwab symbol %r is not one tterm can trade", schwab_symbol)
                return None
            inst = sy.equity_instrument(text)
        self.learn(inst)
        return inst

    def learn(self, inst: Instrument) -> None:
        try:
            self._master.resolve(inst.symbol)
            return
        except (UnknownSymbol, ModelError):
            pass
        if self._master.add(inst):
            self._on_learned(inst)

    def schwab(self, inst: Instrument) -> str:
        return sy.to_schwab(inst, self._master)

    def strategy_name(self, pairs: Sequence[tuple[OrderLeg, Instrument]]) -> str:
        """The multi-leg order's symbol, as the router names it (``InstrumentMaster.strategy``)."""
        return self._master.strategy(pairs).symbol

    def chain_instrument(self, symbol: str, contract: Mapping[str, Any]) -> Instrument | None:
        """An option of a chain (A6.8), with Schwab's multiplier."""
        try:
            parts = sy.parse_option_symbol(symbol)
        except sy.SymbolError:
            log.info("Schwab chain contract %r does not parse as an option symbol", symbol)
            return None
        try:
            inst = self._master.resolve(parts.symbol)
        except (UnknownSymbol, ModelError):
            inst = sy.option_instrument(parts, str(contract.get("description") or ""))
        return inst

    # ------------------------------------------------------------------ InstrumentProvider

    async def lookup(self, symbol: str) -> Instrument | None:
        """The master's instrument, else Schwab's equity or ETF of that ticker (learned)."""
        try:
            return self._master.resolve(symbol)
        except (UnknownSymbol, ModelError):
            pass
        text = symbol.strip().upper()
        try:
            parts = sy.parse_option_symbol(text)
        except sy.SymbolError:
            parts = None
        if parts is not None:
            inst = sy.option_instrument(parts)
            self.learn(inst)
            return inst
        if not _TICKER.match(text):
            return None
        for row in instruments_of(await self._rest.instruments(text, "symbol-search")):
            if str(row.get("symbol")).upper() == text and str(row.get("assetType")) in SHARES:
                inst = self._equity(row)
                self.learn(inst)
                return inst
        return None

    async def search(self, text: str, limit: int = 20) -> list[Instrument]:
        """Shares and ETFs whose ticker starts with ``text`` or whose name contains it."""
        text = text.strip()
        if not text or limit <= 0:
            return []
        rows: list[Any] = []
        if re.fullmatch(r"[A-Za-z.]{1,6}", text):
            rows += instruments_of(await self._rest.instruments(f"{re.escape(text.upper())}.*", "symbol-regex"))
        try:
            rows += instruments_of(await self._rest.instruments(text, "desc-search"))
        except BrokerError as exc:
            log.info("Schwab description search failed: %s", exc)
        found: dict[str, Instrument] = {}
        for row in rows:
            if str(row.get("assetType")) not in SHARES or not _TICKER.match(str(row.get("symbol")).upper()):
                continue
            inst = self._equity(row)
            if inst.symbol not in found:
                self.learn(inst)
                found[inst.symbol] = inst
        ranked = sorted(found.values(), key=lambda i: (not i.symbol.startswith(text.upper()), len(i.symbol), i.symbol))
        return ranked[:limit]

    def _equity(self, row: Mapping[str, Any]) -> Instrument:
        symbol = str(row.get("symbol")).upper()
        try:
            inst = self._master.resolve(symbol)
            if inst.asset_class is AssetClass.EQUITY:
                return inst
        except (UnknownSymbol, ModelError):
            pass
        return sy.equity_instrument(symbol, str(row.get("description") or ""))
