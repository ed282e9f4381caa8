"""ProjectX contracts: tterm symbols to contract ids and back, lookup and search (the provider).

A tterm symbol (``MES1!``, ``MESZ6``) resolves through the instrument master first; the gateway's
contract behind it is found once with ``Contract/search`` on the product root and cached (B5:
pick the contract whose ``name`` equals the symbol, case-insensitively; U10: names carry a
one-digit year, ``MESZ6``, though some examples show two, ``MESZ26``, so both match). A
``CON.F.US...`` id typed directly is looked up by id. The gateway's internal roots can differ
from the exchange's (``EP`` for ES, ``ENQ`` for NQ), so the match is on the name, never the id.
Contract ids seen in orders, positions and trades map back through ``Contract/searchById``
(cached); a contract the master does not know is learned from the gateway's tick size and value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tterm.brokers.projectx.mapping import Refused, dec
from tterm.brokers.projectx.rest import Envelope, ProjectXRest
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError

log = logging.getLogger(__name__)
JSON = dict[str, Any]


class ProjectXInstruments:
    """Contract mapping, lookup and search for one ProjectX login."""

    def __init__(
        self, rest: ProjectXRest, master: InstrumentMaster, *, live: bool, on_learned: Callable[[Instrument], None]
    ) -> None:
        self._rest = rest
        self._master = master
        self._live = live
        self._on_learned = on_learned
        self.by_symbol: dict[str, JSON] = {}
        self.by_id: dict[str, JSON] = {}
        self.symbol_of_id: dict[str, str] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ symbol -> contract

    async def contract_for(self, symbol: str) -> tuple[JSON, Instrument]:
        """The gateway's contract and tterm's instrument for ``symbol``; :class:`Refused` when the
        gateway lists no such contract (nothing is sent)."""
        text = symbol.strip()
        if text.upper().startswith("CON."):
            contract = await self.by_contract_id(text)
            if contract is None:
                raise Refused(f"ProjectX has no contract {text}")
            return contract, self.instrument_of(contract)
        try:
            inst = self._master.resolve(text)
        except (UnknownSymbol, ModelError) as exc:
            inst = None
            reason = str(exc)
        else:
            reason = ""
        key = inst.symbol if inst is not None else text.upper()
        hit = self.by_symbol.get(key)
        if hit is not None:
            return hit, inst or self.instrument_of(hit)
        async with self._lock:
            hit = self.by_symbol.get(key)
            if hit is None:
                root = inst.root if inst is not None and inst.root else key.rstrip("0123456789")[:-1] or key
                rows = await self._rest.contracts(root, self._live)
                hit = _pick(rows, key)
                if hit is None:
                    listed = ", ".join(sorted(str(r.get("name")) for r in rows)[:6]) or "none"
                    why = f" ({reason})" if reason and inst is None else ""
                    raise Refused(f"ProjectX lists no contract {key}{why}; contracts for {root}: {listed}")
                self._remember(hit)
        return hit, inst or self.instrument_of(hit)

    async def by_contract_id(self, contract_id: str) -> JSON | None:
        hit = self.by_id.get(contract_id)
        if hit is not None:
            return hit
        try:
            contract = await self._rest.contract(contract_id)
        except Envelope:
            return None  # B5: searchById code 1 ContractNotFound
        if contract is not None:
            self._remember(contract)
        return contract

    def _remember(self, contract: Mapping[str, Any]) -> None:
        row = dict(contract)
        inst = self.instrument_of(row)
        self.by_symbol[inst.symbol] = row
        self.by_id[str(row.get("id"))] = row
        self.symbol_of_id[str(row.get("id"))] = inst.symbol

    # ------------------------------------------------------------------ contract -> instrument

    def instrument_of(self, contract: Mapping[str, Any]) -> Instrument:
        """tterm's instrument for a gateway contract: the master's when it knows the name, else
        one learned from the gateway's tick size and value (and announced)."""
        name = str(contract.get("name") or contract.get("id") or "").upper()
        try:
            inst = self._master.resolve(name)
            if inst.asset_class is AssetClass.FUTURE:
                return inst
        except (UnknownSymbol, ModelError):
            pass
        tick = dec(contract.get("tickSize")) or Decimal("0.01")
        value = dec(contract.get("tickValue")) or tick
        symbol_id = str(contract.get("symbolId") or "")
        inst = Instrument(
            symbol=name,
            asset_class=AssetClass.FUTURE,
            tick_size=tick,
            tick_value=value,
            description=str(contract.get("description") or ""),
            root=symbol_id.rsplit(".", 1)[-1] if symbol_id else "",
            vendor_id=str(contract.get("id") or ""),
        )
        if self._master.add(inst):
            self._on_learned(inst)
        return inst

    def symbol(self, contract_id: str) -> str | None:
        """The tterm symbol of a contract id seen before (None: not yet looked up)."""
        return self.symbol_of_id.get(contract_id)

    async def symbol_for_id(self, contract_id: str) -> str:
        known = self.symbol_of_id.get(contract_id)
        if known is not None:
            return known
        contract = await self.by_contract_id(contract_id)
        return self.symbol_of_id.get(contract_id, contract_id) if contract is not None else contract_id

    # ------------------------------------------------------------------ InstrumentProvider

    async def lookup(self, symbol: str) -> Instrument | None:
        try:
            return (await self.contract_for(symbol))[1]
        except Refused:
            return None

    async def search(self, text: str, limit: int = 20) -> list[Instrument]:
        text = text.strip()
        if not text or limit <= 0:
            return []
        rows = await self._rest.contracts(text, self._live)
        out: dict[str, Instrument] = {}
        for row in rows:
            self._remember(row)
            inst = self.instrument_of(row)
            out.setdefault(inst.symbol, inst)
        return list(out.values())[:limit]


def _pick(rows: list[JSON], symbol: str) -> JSON | None:
    """The row whose name is ``symbol`` (one- or two-digit year, any case)."""
    wanted = symbol.upper()
    for row in rows:
        name = str(row.get("name") or "").upper()
        if name == wanted or str(row.get("id") or "").upper() == wanted:
            return row
        # U10: "MESZ26" for "MESZ6" and the other way round.
        if (
            len(name) >= 3
            and len(wanted) >= 3
            and name[-3:-2].isalpha()
            and name[:-2] == wanted[:-1]
            and name[-1] == wanted[-1]
        ):
            return row
        if len(wanted) >= 3 and wanted[:-2] == name[:-1] and wanted[-1] == name[-1] and wanted[-3:-2].isalpha():
            return row
    return None
