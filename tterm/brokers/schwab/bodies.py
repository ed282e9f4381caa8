"""Turning tterm's order requests into Schwab order bodies (A7), with the instructions the
account's positions call for.

Schwab wants every leg to say whether it opens or closes (BUY / SELL / SELL_SHORT / BUY_TO_COVER
for shares, BUY_TO_OPEN ... SELL_TO_CLOSE for options); a leg marked AUTO is decided from the
position held (read fresh before each order). A bracket becomes a TRIGGER whose child is an OCO
pair (or the one exit); an OCO group an OCO container; an OTOCO group a TRIGGER holding an OCO
pair. Multi-leg orders name their strategy (VERTICAL, STRADDLE, IRON_CONDOR, ..., else CUSTOM).
Everything refused here raises :class:`~tterm.brokers.schwab.mapping.Refused` with the reason,
before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab.symbols import SymbolError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    AssetClass,
    GroupKind,
    Instrument,
    ModelError,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderRole,
    OrderType,
    PositionEffect,
    Quote,
    Side,
    TimeInForce,
)

JSON = m.JSON


@dataclass(frozen=True, slots=True)
class Child:
    """A bracket exit the body carries: its client order id and role, in tree order."""

    client_order_id: str
    role: OrderRole


class OrderBuilder:
    """Order bodies for one login; ``held(account, symbol)`` is the position as Schwab last said."""

    def __init__(
        self,
        master: InstrumentMaster,
        *,
        schwab_symbol: Callable[[Instrument], str],
        held: Callable[[str, str], int],
        quote: Callable[[str], Quote | None],
        today: Callable[[], date],
    ) -> None:
        self._master = master
        self._schwab = schwab_symbol
        self._held = held
        self._quote = quote
        self._today = today

    def instrument(self, symbol: str) -> Instrument:
        try:
            inst = self._master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise m.Refused(str(exc)) from None
        if inst.asset_class is AssetClass.FUTURE:
            raise m.Refused(f"{inst.symbol}: Schwab's API takes orders for shares and options only, not futures")
        if inst.expiry is not None and inst.expiry < self._today():
            raise m.Refused(f"{inst.symbol} is on a series that expired on {inst.expiry:%Y-%m-%d}")
        return inst

    def _leg(
        self, account: str, inst: Instrument, side: Side, qty: int, effect: PositionEffect, held: int | None = None
    ) -> m.LegSpec:
        have = self._held(account, inst.symbol) if held is None else held
        resolved = m.resolve_effect(inst.symbol, side, qty, have, effect)
        try:
            symbol = self._schwab(inst)
        except SymbolError as exc:
            raise m.Refused(str(exc)) from None
        asset = "OPTION" if inst.asset_class is AssetClass.OPTION else "EQUITY"
        return m.LegSpec(symbol, asset, m.instruction(inst.asset_class, side, resolved), qty)

    @staticmethod
    def _prices(request: OrderRequest, inst: Instrument) -> tuple[Decimal | None, Decimal | None]:
        for name in ("limit_price", "stop_price"):
            price = getattr(request, name)
            if price is not None and not inst.is_on_tick(price):
                raise m.Refused(
                    f"{name.replace('_', ' ')} {price} is off {inst.symbol}'s tick grid ({inst.tick_at(price)})"
                )
        return request.limit_price, request.stop_price

    # ------------------------------------------------------------------ one order

    def body(self, request: OrderRequest) -> tuple[JSON, list[Child]]:
        """The body for ``request`` (with its bracket as a TRIGGER), and the exits it carries."""
        if request.legs:
            return self._multi(request), []
        inst = self.instrument(request.symbol)
        if request.order_type is OrderType.TRAILING_STOP and inst.asset_class is AssetClass.OPTION:
            raise m.Refused("Schwab takes trailing stops on shares only")
        effect = PositionEffect.CLOSE if request.reduce_only else PositionEffect.AUTO
        leg = self._leg(request.account, inst, request.side, request.quantity, effect)
        limit, stop = self._prices(request, inst)
        body = m.single_body(request, leg, limit=limit, stop=stop)
        if request.bracket is None:
            return body, []
        if leg.instruction in ("SELL", "BUY_TO_COVER", "SELL_TO_CLOSE", "BUY_TO_CLOSE"):
            raise m.Refused("a bracket's entry must open a position; this order closes one")
        exits = self._bracket(request, inst, limit, stop)
        if len(exits) == 2:
            return m.trigger(body, m.one_cancels_other(exits[0][0], exits[1][0])), [c for _, c in exits]
        return m.trigger(body, exits[0][0]), [c for _, c in exits]

    def _bracket(
        self, request: OrderRequest, inst: Instrument, limit: Decimal | None, stop: Decimal | None
    ) -> list[tuple[JSON, Child]]:
        bracket = request.bracket
        assert bracket is not None
        ref = limit if request.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else stop
        if request.order_type is OrderType.MARKET:
            q = self._quote(inst.symbol)
            touch = (q.ask if request.side is Side.BUY else q.bid) if q is not None else None
            ref = touch if touch is not None else (q.last if q is not None else None)
            if ref is None and (bracket.take_profit_ticks is not None or bracket.stop_loss_ticks is not None):
                raise m.Refused(f"no {inst.symbol} quote to price a bracket in ticks from a market entry; give prices")
        tp, sl = bracket.resolve(ref or Decimal(0), request.side, inst)
        exit_side = request.side.opposite
        held_after = request.side.sign * request.quantity  # the exits close what the entry opens
        tif = request.tif if request.tif in (TimeInForce.DAY, TimeInForce.GTC) else TimeInForce.DAY
        out = []
        for role, price, otype in (
            (OrderRole.TAKE_PROFIT, tp, OrderType.LIMIT),
            (OrderRole.STOP_LOSS, sl, OrderType.STOP),
        ):
            if price is None:
                continue
            if (
                ref is not None
                and (price - ref) * request.side.sign * (1 if role is OrderRole.TAKE_PROFIT else -1) <= 0
            ):
                raise m.Refused(f"the {role.value.replace('_', '-')} {price} is on the wrong side of the entry {ref}")
            child_req = request.with_changes(
                side=exit_side,
                order_type=otype,
                tif=tif,
                bracket=None,
                limit_price=price if otype is OrderType.LIMIT else None,
                stop_price=price if otype is OrderType.STOP else None,
            )
            leg = self._leg(request.account, inst, exit_side, request.quantity, PositionEffect.CLOSE, held=held_after)
            body = m.single_body(child_req, leg, limit=child_req.limit_price, stop=child_req.stop_price)
            suffix = "tp" if role is OrderRole.TAKE_PROFIT else "sl"
            out.append((body, Child(f"{request.client_order_id}-{suffix}", role)))
        if not out:
            raise m.Refused("the bracket has neither a take-profit nor a stop-loss")
        return out

    def _multi(self, request: OrderRequest) -> JSON:
        pairs: list[tuple[OrderLeg, Instrument]] = []
        legs = []
        for leg in request.legs:
            inst = self.instrument(leg.symbol)
            effect = PositionEffect.CLOSE if request.reduce_only and leg.effect is PositionEffect.AUTO else leg.effect
            legs.append(self._leg(request.account, inst, leg.side, request.quantity * leg.ratio, effect))
            pairs.append((leg, inst))
        if request.bracket is not None:
            raise m.Refused("a multi-leg order cannot carry a bracket")
        if request.limit_price is not None and request.limit_price * 100 % 1:
            raise m.Refused(f"net price {request.limit_price} is off the spread's tick grid (0.01)")
        return m.multi_body(request, legs, m.complex_strategy(pairs), request.limit_price)

    # ------------------------------------------------------------------ groups

    def group(self, group: OrderGroup) -> JSON:
        """OCO: a container of two orders; OTOCO: the trigger, holding its two exits as an OCO pair."""
        orders = group.orders
        for o in orders:
            if o.legs or o.bracket is not None:
                raise m.Refused("orders inside an OCO or OTOCO group must be plain single-leg orders")
        if group.kind is GroupKind.OCO:
            if len(orders) != 2:
                raise m.Refused(f"an OCO group takes two orders, got {len(orders)}")
            a, b = (self.body(o)[0] for o in orders)
            return m.one_cancels_other(a, b)
        if len(orders) != 3:
            raise m.Refused(f"an OTOCO group takes a trigger and two exits, got {len(orders)} orders")
        first, *exits = orders
        parent, _ = self.body(first)
        if parent["orderLegCollection"][0]["instruction"] in ("SELL", "BUY_TO_COVER", "SELL_TO_CLOSE", "BUY_TO_CLOSE"):
            raise m.Refused("an OTOCO trigger must open a position; this one closes one")
        held_after = first.side.sign * first.quantity
        bodies = []
        for o in exits:
            inst = self.instrument(o.symbol)
            leg = self._leg(o.account, inst, o.side, o.quantity, PositionEffect.CLOSE, held=held_after)
            limit, stop = self._prices(o, inst)
            bodies.append(m.single_body(o, leg, limit=limit, stop=stop))
        return m.trigger(parent, m.one_cancels_other(bodies[0], bodies[1]))
