"""Cash-account rules of the paper broker: what a cash account may hold and what it may spend.

- a cash account cannot short shares or spend cash it does not have; working orders reserve the
  cash they would spend (:meth:`CashRules.reserved`);
- it may hold short options only when covered, and the cash that covers them is set aside
  (:func:`~tterm.brokers.paper.combos.cash_needed`): a short put needs its strike in cash, a
  credit spread its width (the credit is not counted before it is received), a short call needs
  the shares or a long call above it;
- a fill is capped to what the account can take at its price (:meth:`CashRules.capacity`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from tterm.brokers.paper.combos import Leg, cash_needed
from tterm.brokers.paper.ledger import Ledger
from tterm.brokers.paper.matching import MatchingEngine, Working, touch
from tterm.core.models import ZERO, AccountKind, AssetClass, Instrument, OrderRequest, OrderType, Quote, Side

#: A change to a position: (instrument, signed quantity, price).
Change = tuple[Instrument, int, Decimal]


class CashRules:
    """Cash and cover of the broker's accounts, over its ledger and book."""

    def __init__(self, ledger: Ledger, engine: MatchingEngine) -> None:
        self._ledger = ledger
        self._engine = engine

    def _touch(self, inst: Instrument, side: Side) -> Decimal | None:
        q = self._engine.quote(inst.symbol)
        return touch(q, side) if q is not None else None

    def _ref_price(
        self,
        side: Side,
        order_type: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        quote: Quote | None,
    ) -> Decimal | None:
        """The price a cash check assumes an order will pay."""
        if order_type.needs_limit:
            return limit_price
        market = touch(quote, side) if quote is not None else None
        if order_type in (OrderType.STOP, OrderType.TRAILING_STOP) and stop_price is not None:
            return max(stop_price, market) if market is not None else stop_price
        return market

    def holdings(self, account: str, underlying: str, changes: Iterable[Change] = ()) -> list[tuple[Instrument, int]]:
        """The account's shares and options of ``underlying`` after ``changes``."""
        out: dict[str, tuple[Instrument, int]] = {}
        for (acct, sym), p in self._ledger.positions.items():
            if acct == account and p.quantity and _underlying(p.instrument) == underlying:
                out[sym] = (p.instrument, p.quantity)
        for inst, qty, _ in changes:
            if _underlying(inst) == underlying:
                held = out.get(inst.symbol, (inst, 0))[1]
                out[inst.symbol] = (inst, held + qty)
        return list(out.values())

    def cover(self, account: str, changes: Iterable[Change] = ()) -> Decimal | None:
        """Cash that covers the account's short options after ``changes`` (None: uncovered)."""
        changes = list(changes)
        unders = {
            _underlying(p.instrument) for (a, _), p in self._ledger.positions.items() if a == account and p.quantity
        }
        unders |= {_underlying(inst) for inst, _, _ in changes}
        total = ZERO
        for u in unders:
            need = cash_needed(self.holdings(account, u, changes))
            if need is None:
                return None
            total += need
        return total

    def free_cash(self, account: str, changes: Iterable[Change] = (), *, reserved: Decimal = ZERO) -> Decimal | None:
        """Cash left after ``changes`` (paid or received at their prices, fees paid), the cover of
        short options and ``reserved``; None when the changes leave options uncovered."""
        changes = list(changes)
        acct = self._ledger.accounts[account]
        cover = self.cover(account, changes)
        if cover is None:
            return None
        spent = sum((inst.point_value * qty * px + inst.fee_per_side * abs(qty) for inst, qty, px in changes), ZERO)
        return acct.balance - self._ledger.net_cost(account) - spent - cover - reserved

    def impact(self, w: Working) -> Decimal:
        """Cash a working order in a cash account sets aside (what it would spend and cover)."""
        o = w.order
        if w.held:
            return ZERO
        if w.legs:
            if o.limit_price is not None:
                debit = o.limit_price if o.side is Side.BUY else -o.limit_price
            else:
                nat = [self._touch(inst, leg.side) for leg, inst in w.legs]
                if any(p is None for p in nat):
                    return ZERO
                debit = sum(
                    (leg.side.sign * leg.ratio * p for (leg, _), p in zip(w.legs, nat, strict=True) if p is not None),
                    ZERO,
                )
            changes = [(inst, leg.side.sign * leg.ratio * o.remaining, ZERO) for leg, inst in w.legs]
            before = self.cover(o.account) or ZERO
            after = self.cover(o.account, changes)
            fees = sum((inst.fee_per_side * leg.ratio * o.remaining for leg, inst in w.legs), ZERO)
            cost = max(debit, ZERO) * w.instrument.point_value * o.remaining + fees
            return cost + max(ZERO, (after if after is not None else ZERO) - before)
        inst = w.instrument
        if o.side is Side.BUY:
            price = self._ref_price(o.side, o.order_type, o.limit_price, o.stop_price, self._engine.quote(o.symbol))
            if price is None:
                return ZERO
            return (price * inst.point_value + inst.fee_per_side) * o.remaining
        if inst.asset_class is AssetClass.OPTION:
            opening = o.remaining - max(self._ledger.net(o.account, o.symbol), 0)
            if opening > 0:
                before = self.cover(o.account) or ZERO
                after = self.cover(o.account, [(inst, -opening, ZERO)])
                return max(ZERO, (after if after is not None else ZERO) - before)
        return ZERO

    def reserved(self, account: str, *, exclude: str | None = None) -> Decimal:
        """Cash set aside for the account's working orders."""
        return sum(
            (
                self.impact(w)
                for w in self._engine.working.values()
                if w.order.account == account and w.order.order_id != exclude
            ),
            ZERO,
        )

    def _committed_sells(self, account: str, symbol: str, *, exclude: str | None = None) -> int:
        """Shares already offered by working sell orders (an OCO pair counts once)."""
        total = 0
        groups: set[str] = set()
        skipped = self._engine.working.get(exclude or "")
        if skipped is not None and skipped.order.oco_group:
            groups.add(skipped.order.oco_group)  # an OCO sibling offers the same shares as the excluded order
        for w in self._engine.working.values():
            o = w.order
            if o.account != account or o.symbol != symbol or o.side is not Side.SELL or o.order_id == exclude:
                continue
            if w.held:
                continue  # an OTOCO exit offers shares only once its trigger has bought them
            if o.oco_group:
                if o.oco_group in groups:
                    continue
                groups.add(o.oco_group)
            total += o.remaining
        return total

    def cash_check(
        self,
        account: str,
        inst: Instrument,
        side: Side,
        quantity: int,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        order_type: OrderType,
        *,
        quote: Quote | None = None,
        exclude: str | None = None,
    ) -> str:
        """Why a cash account cannot take this order ("" if it can): no shorting shares, no
        uncovered options, no overspending."""
        acct = self._ledger.accounts[account]
        if acct.spec.kind is not AccountKind.CASH:
            return ""
        quote = quote or self._engine.quote(inst.symbol)
        held = max(self._ledger.net(account, inst.symbol), 0)
        if side is Side.SELL:
            offered = self._committed_sells(account, inst.symbol, exclude=exclude)
            opening = quantity - (held - offered)
            if inst.asset_class is not AssetClass.OPTION:
                if opening <= 0:
                    return ""
                extra = f", {offered} already offered in working orders" if offered else ""
                return (
                    f"a cash account cannot sell short: {acct.id} holds {held} {inst.symbol}{extra}; "
                    f"cannot sell {quantity}"
                )
            # Proceeds are not counted before they are received.
            change = [(inst, -quantity, ZERO)]
            free = self.free_cash(account, change, reserved=self.reserved(account, exclude=exclude))
            if free is None:
                if opening <= 0:
                    return (
                        f"selling {quantity} {inst.symbol.strip()} would leave short calls uncovered in a cash "
                        "account (close the short leg first, or sell the spread as one order)"
                    )
                return (
                    f"a cash account writes only covered options: selling {opening} {inst.symbol.strip()} to open "
                    "would leave calls uncovered (hold the shares or a call above it)"
                )
            if opening > 0 and free < 0:
                need = self.cover(account, change) or ZERO
                return f"not enough cash to cover {opening} short {inst.symbol.strip()}: needs ${need:,.2f} set aside"
            return ""
        price = self._ref_price(side, order_type, limit_price, stop_price, quote)
        if price is None:
            return ""
        need = (price * inst.point_value + inst.fee_per_side) * quantity
        free = self.free_cash(account, [(inst, quantity, price)], reserved=self.reserved(account, exclude=exclude))
        if free is None or free < 0:
            available = (free if free is not None else ZERO) + need
            return (
                f"not enough cash: buying {quantity} {inst.symbol} at about {price} needs ${need:,.2f}; "
                f"{acct.id} has ${max(available, ZERO):,.2f} available"
            )
        return ""

    def combo_cash_check(self, r: OrderRequest, legs: list[Leg], *, exclude: str | None = None) -> str:
        changes: list[Change] = []
        for leg, inst in legs:
            qty = leg.side.sign * leg.ratio * r.quantity
            if inst.asset_class is not AssetClass.OPTION and self._ledger.net(r.account, inst.symbol) + qty < 0:
                return f"a cash account cannot sell short: {inst.symbol} leg would leave a short position"
            px = self._touch(inst, leg.side) or ZERO
            changes.append((inst, qty, px))
        if r.order_type is OrderType.LIMIT and r.limit_price is not None:
            # Cash moves at the limit: the legs' prices are replaced by the net price.
            point = self._strategy_point(legs)
            debit = r.limit_price if r.side is Side.BUY else -r.limit_price
            changes = [(inst, qty, ZERO) for inst, qty, _ in changes]
            paid = max(debit, ZERO) * point * r.quantity
        else:
            paid = ZERO
        free = self.free_cash(r.account, changes, reserved=self.reserved(r.account, exclude=exclude) + paid)
        if free is None:
            return (
                "a cash account holds only covered options: after this order calls would be short without the "
                "shares or a long call above them"
            )
        if free < 0:
            return (
                f"not enough cash for this multi-leg order: it needs ${-free:,.2f} more "
                "(its debit and the cover of its short legs)"
            )
        return ""

    @staticmethod
    def _strategy_point(legs: list[Leg]) -> Decimal:
        points = {inst.point_value for _, inst in legs if inst.asset_class is not AssetClass.EQUITY}
        return next(iter(points)) if points else Decimal(1)

    def capacity(self, w: Working, qty: int, price: Decimal) -> tuple[int, str]:
        """The most of a fill the account can take at ``price`` (reduce-only, cash rules)."""
        o = w.order
        allowed = qty
        reason = ""
        if w.legs:
            return self._combo_capacity(w, qty, price)
        net = self._ledger.net(o.account, o.symbol)
        if w.reduce_only:
            closable = abs(net) if net != 0 and (net > 0) != (o.side is Side.BUY) else 0
            if closable < allowed:
                allowed = closable
                reason = (
                    f"reduce-only: {o.symbol} position is {net:+d}; only {closable} could be closed, "
                    "the rest is cancelled"
                )
        acct = self._ledger.accounts[o.account]
        if acct.spec.kind is not AccountKind.CASH or allowed <= 0:
            return allowed, reason
        inst = w.instrument
        if o.side is Side.SELL and inst.asset_class is not AssetClass.OPTION:
            held = max(net, 0)
            if held < allowed:
                allowed = held
                reason = f"a cash account cannot sell short: {acct.id} holds {held} {o.symbol}; the rest is cancelled"
            return allowed, reason
        sign = o.side.sign

        def fits(n: int) -> bool:
            free = self.free_cash(o.account, [(inst, sign * n, price)])
            return free is not None and free >= 0

        if fits(allowed):
            return allowed, reason
        lo, hi = 0, allowed
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        if o.side is Side.BUY:
            reason = f"not enough cash: buys {lo} {o.symbol} at {price}; the rest is cancelled"
        else:
            reason = f"not enough cash to cover more short {o.symbol.strip()}: {lo} filled, the rest is cancelled"
        return lo, reason

    def _combo_capacity(self, w: Working, qty: int, price: Decimal) -> tuple[int, str]:
        o = w.order
        if self._ledger.accounts[o.account].spec.kind is not AccountKind.CASH:
            return qty, ""
        point = w.instrument.point_value
        debit = price if o.side is Side.BUY else -price

        def fits(n: int) -> bool:
            changes = [(inst, leg.side.sign * leg.ratio * n, ZERO) for leg, inst in w.legs]
            free = self.free_cash(o.account, changes, reserved=debit * point * n)
            return free is not None and free >= 0

        if fits(qty):
            return qty, ""
        lo, hi = 0, qty
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo, f"not enough cash (or cover) for more than {lo} of this multi-leg order; the rest is cancelled"


def _underlying(inst: Instrument) -> str:
    return inst.underlying if inst.asset_class is AssetClass.OPTION else inst.symbol
