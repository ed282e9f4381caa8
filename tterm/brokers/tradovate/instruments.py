"""Tradovate's instruments: contracts by name, their tick size and point value, and search.

:class:`TradovateInstruments` is the adapter's :class:`~tterm.core.broker.InstrumentProvider`.
A tterm symbol (``MES1!``, ``MESZ6``) resolves through the instrument master first; the contract
behind it is looked up once (``contract/find``, A5) and cached in the replica, and concurrent
lookups of one name share a single request. A contract whose product the master does not list
(``ZNZ6`` when only equity-index roots are known) becomes an Instrument from Tradovate's product
(``tickSize``, ``valuePerPoint``) and is announced through ``on_learned`` so every attached
terminal learns it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tterm.brokers.tradovate.mapping import Refused, instrument_from_product
from tterm.brokers.tradovate.replica import Replica, View
from tterm.brokers.tradovate.rest import NotFound, TradovateRest
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError

log = logging.getLogger(__name__)


class TradovateInstruments:
    """Contract lookup and search for one Tradovate login (an InstrumentProvider)."""

    def __init__(
        self,
        rest: TradovateRest,
        replica: Replica,
        master: InstrumentMaster,
        view: View,
        *,
        on_learned: Callable[[Instrument], None],
    ) -> None:
        self._rest = rest
        self._replica = replica
        self._master = master
        self._view = view
        self._on_learned = on_learned
        self._lookups: dict[str, asyncio.Future[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ InstrumentProvider

    async def lookup(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol``: from the master, else from Tradovate's contract (learned)."""
        try:
            return self._master.resolve(symbol)
        except (UnknownSymbol, ModelError):
            pass
        name = symbol.strip().upper()
        if not name:
            return None
        try:
            contract = await self._find(name)
        except Refused:
            return None
        return await self.ensure_instrument(contract)

    async def search(self, text: str, limit: int = 20) -> list[Instrument]:
        """Contracts whose name contains ``text`` (``contract/suggest``), as instruments."""
        text = text.strip()
        if not text or limit <= 0:
            return []
        found: list[Instrument] = []
        for contract in await self._rest.entity_suggest("contract", text, limit):
            if "id" not in contract:
                continue
            self._replica.add_contract(contract)
            inst = await self.ensure_instrument(contract)
            if inst is not None and inst not in found:
                found.append(inst)
        return found[:limit]

    # ------------------------------------------------------------------ contracts

    async def contract_for_symbol(self, symbol: str) -> tuple[dict[str, Any], Instrument]:
        """The Tradovate contract a tterm symbol names (continuous symbols resolve first), cached.

        Raises :class:`Refused` naming what is wrong (unknown symbol, not a future, no contract).
        """
        try:
            inst = self._master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise Refused(str(exc)) from None
        if inst.asset_class is not AssetClass.FUTURE:
            raise Refused(f"{inst.symbol} is not a futures contract; Tradovate trades futures only")
        return await self._find(inst.symbol.upper()), inst

    async def _find(self, name: str) -> dict[str, Any]:
        cid = self._replica.contract_ids.get(name)
        if cid is not None:
            return self._replica.contracts[cid]
        pending = self._lookups.get(name)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._lookups[name] = pending
            try:
                contract = await self._rest.entity_find("contract", name)
                self._replica.add_contract(contract)
                pending.set_result(contract)
            except NotFound:
                pending.set_exception(Refused(f"Tradovate has no contract named {name}"))
            except BaseException as exc:
                pending.set_exception(exc)
            finally:
                del self._lookups[name]
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done() and not pending.cancelled():
                pending.exception()

    async def load_contract(self, contract_id: int) -> dict[str, Any] | None:
        """A contract by id (one the stream mentioned before tterm knew it)."""
        try:
            contract = await self._rest.entity_item("contract", contract_id)
        except NotFound:
            log.warning("Tradovate has no contract %s", contract_id)
            return None
        self._replica.add_contract(contract)
        await self.ensure_instrument(contract)
        return contract

    async def ensure_instrument(self, contract: Mapping[str, Any]) -> Instrument | None:
        """The instrument for a contract; a product the master does not list is added from
        Tradovate's product (tick size and value per point) and announced."""
        inst = self._view.instrument_of(contract)
        if inst is not None:
            return inst
        replica = self._replica
        try:
            mid = contract.get("contractMaturityId")
            maturity = replica.maturities.get(mid) if mid is not None else None
            if maturity is None and mid is not None:
                maturity = await self._rest.entity_item("contractMaturity", mid)
                replica.maturities[mid] = maturity
            pid = maturity.get("productId") if maturity else None
            product = replica.products.get(pid) if pid is not None else None
            if product is None and pid is not None:
                product = await self._rest.entity_item("product", pid)
                replica.add_product(product)
        except BrokerError as exc:
            log.warning("no product details for Tradovate contract %s: %s", contract.get("name"), exc)
            return None
        inst = instrument_from_product(contract, product) if product else None
        if inst is not None and self._master.add(inst):
            self._on_learned(inst)
        return inst

    def instrument_of_contract_id(self, contract_id: int) -> Instrument | None:
        return self._view.instrument_of(self._replica.contracts.get(contract_id))
