"""The paper broker's order checks: every request is validated here before it reaches the book.

The paper broker trusts no caller (the router checks too): each refusal is a plain sentence
saying what is wrong and, where it helps, what would be right. Checks cover the account and the
instrument (known, not expired, tradable in that account), the order's shape (prices its type
needs and only those, on the tick grid; a trailing stop's trail), brackets, reduce-only, multi-leg
orders (legs, ratios, open/close effects, the net price and its debit or credit), OCO and OTOCO
groups, and the cash rules of cash accounts (:mod:`.cash`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from tterm.brokers.paper.cash import CashRules
from tterm.brokers.paper.combos import Leg
from tterm.brokers.paper.groups import exit_role
from tterm.brokers.paper.ledger import Ledger
from tterm.brokers.paper.matching import MatchingEngine, stop_side_error, tick_error, touch
from tterm.brokers.paper.options import years_to_expiry
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    AccountKind,
    AssetClass,
    GroupKind,
    Instrument,
    ModelError,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderType,
    PositionEffect,
    PriceEffect,
    Quote,
    Side,
)

#: The most legs a paper combo takes (an iron condor or a butterfly has four).
MAX_LEGS = 4


class OrderChecks:
    """Validation and cash rules over the broker's ledger and book."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        engine: MatchingEngine,
        instruments: InstrumentMaster,
        cash: CashRules,
        ensure_market: Callable[[Instrument], None],
        trade_date: Callable[[], date],
        now: Callable[[], object],
    ) -> None:
        self._ledger = ledger
        self._engine = engine
        self._instruments = instruments
        self._cash = cash
        self._ensure_market = ensure_market
        self._trade_date = trade_date
        self._now = now

    # ------------------------------------------------------------------ one order

    def validate(self, r: OrderRequest) -> tuple[Instrument | None, tuple[Leg, ...], str]:
        """The instrument (a strategy for a combo), its legs and "" for a valid request;
        otherwise the plain reason it is refused."""
        acct = self._ledger.accounts.get(r.account)
        if acct is None:
            known = ", ".join(self._ledger.accounts)
            return None, (), f"unknown account {r.account!r} (paper accounts: {known})"
        if isinstance(r.quantity, bool) or not isinstance(r.quantity, int) or r.quantity <= 0:
            return None, (), f"quantity must be a positive whole number, got {r.quantity!r}"
        if r.legs:
            return self._validate_combo(r)
        try:
            inst = self._instruments.resolve(r.symbol)
        except (UnknownSymbol, ModelError) as exc:
            return None, (), str(exc)
        err: str | None = self._tradable(r.account, inst)
        if err:
            return inst, (), err
        if r.price_effect is not None:
            return inst, (), "a net debit or credit belongs to multi-leg orders; this order has no legs"
        t = r.order_type
        if t.needs_limit and r.limit_price is None:
            return inst, (), f"a {t.value.replace('_', '-')} order needs a limit price"
        if t.needs_stop and r.stop_price is None:
            return inst, (), f"a {t.value.replace('_', '-')} order needs a stop price"
        if not t.needs_limit and r.limit_price is not None:
            return (
                inst,
                (),
                f"a {t.value.replace('_', ' ')} order takes no limit price (got {r.limit_price}); "
                "use a limit or stop-limit order",
            )
        if not t.needs_stop and r.stop_price is not None:
            return (
                inst,
                (),
                f"a {t.value.replace('_', ' ')} order takes no stop price (got {r.stop_price}); "
                "use a stop or stop-limit order",
            )
        err = self._trail_error(r, inst)
        if err:
            return inst, (), err
        for label, price in (("limit price", r.limit_price), ("stop price", r.stop_price)):
            if price is not None:
                err = tick_error(inst, price, label)
                if err:
                    return inst, (), err
        self._ensure_market(inst)
        quote = self._engine.quote(inst.symbol)
        if t in (OrderType.MARKET, OrderType.TRAILING_STOP) and (quote is None or touch(quote, r.side) is None):
            what = "a market order" if t is OrderType.MARKET else "a trailing stop"
            return inst, (), f"no market in {inst.symbol} yet: {what} needs a quote to start from"
        if t.needs_stop:
            assert r.stop_price is not None
            err = stop_side_error(r.side, r.stop_price, quote)
            if err:
                return inst, (), err
        if r.bracket is not None:
            err = self._bracket_error(r, inst, quote)
            if err:
                return inst, (), err
        net = self._ledger.net(r.account, inst.symbol)
        if r.reduce_only:
            if net == 0 or (net > 0) == (r.side is Side.BUY):
                return (
                    inst,
                    (),
                    f"reduce-only {r.side.value} would open or add to a position ({inst.symbol} position is {net:+d})",
                )
            if r.quantity > abs(net):
                return (
                    inst,
                    (),
                    f"reduce-only {r.side.value} of {r.quantity} is larger than the {abs(net)} held in {inst.symbol}",
                )
        if acct.spec.kind is AccountKind.CASH:
            reason = self._cash.cash_check(
                r.account, inst, r.side, r.quantity, r.limit_price, r.stop_price, t, quote=quote
            )
            if reason:
                return inst, (), reason
        return inst, (), ""

    def _tradable(self, account: str, inst: Instrument) -> str:
        acct = self._ledger.accounts[account]
        if inst.expiry is not None and inst.expiry < self._trade_date():
            if inst.asset_class is AssetClass.OPTION:
                return f"{inst.symbol.strip()} expired on {inst.expiry}; that series no longer trades"
            return f"{inst.symbol} expired on {inst.expiry}; trade the current contract"
        if (
            inst.asset_class is AssetClass.OPTION
            and inst.expiry is not None
            and years_to_expiry(inst.expiry, self._now()) <= 0
        ):
            return f"{inst.symbol.strip()} expired at 16:00 New York time on {inst.expiry}"
        if not acct.spec.trades(inst.asset_class):
            if acct.spec.kind is AccountKind.CASH:
                return (
                    f"{acct.id} is a cash account: it trades equities and options, not "
                    f"{inst.asset_class.value}s ({inst.symbol})"
                )
            return (
                f"{acct.id} is a futures account: it trades futures only, not {inst.symbol} ({inst.asset_class.value})"
            )
        return ""

    def _trail_error(self, r: OrderRequest, inst: Instrument) -> str:
        if r.order_type is not OrderType.TRAILING_STOP:
            if r.trail_amount is not None:
                return f"a trail amount ({r.trail_amount}) belongs to trailing-stop orders, not {r.order_type.value}"
            return ""
        trail = r.trail_amount
        if trail is None:
            return "a trailing stop needs a trail amount (the distance behind the market, in price units)"
        if not trail.is_finite() or trail <= 0:
            return f"trail amount {trail} must be a positive price distance"
        if (trail / inst.tick_size) % 1 != 0:
            return (
                f"trail amount {trail} is not a whole number of ticks for {inst.symbol} (tick {inst.tick_size}; "
                f"nearest {inst.round_price(trail, 'down')} or {inst.round_price(trail, 'up')})"
            )
        if r.bracket is not None:
            return "a trailing stop takes no bracket (it is an exit itself)"
        return ""

    def _bracket_error(self, r: OrderRequest, inst: Instrument, quote: Quote | None) -> str:
        b = r.bracket
        assert b is not None
        for label, price in (("take-profit", b.take_profit_price), ("stop-loss", b.stop_loss_price)):
            if price is not None:
                err = tick_error(inst, price, f"bracket {label}")
                if err:
                    return err
        if r.order_type.needs_limit:
            ref, what = r.limit_price, "entry limit"
        elif r.order_type is OrderType.STOP:
            ref, what = r.stop_price, "entry stop"
        else:
            ref, what = (touch(quote, r.side) if quote else None), "market"
        if ref is None:
            return ""
        above, below = ("above", "below") if r.side is Side.BUY else ("below", "above")
        if b.take_profit_price is not None and (b.take_profit_price - ref) * r.side.sign <= 0:
            return f"bracket take-profit {b.take_profit_price} must be {above} the {what} {ref} for a {r.side.value}"
        if b.stop_loss_price is not None and (ref - b.stop_loss_price) * r.side.sign <= 0:
            return f"bracket stop-loss {b.stop_loss_price} must be {below} the {what} {ref} for a {r.side.value}"
        return ""

    # ------------------------------------------------------------------ combos

    def _validate_combo(self, r: OrderRequest) -> tuple[Instrument | None, tuple[Leg, ...], str]:
        if len(r.legs) < 2:
            return None, (), "a multi-leg order needs at least two legs (send a single order for one)"
        if len(r.legs) > MAX_LEGS:
            return None, (), f"a paper multi-leg order takes at most {MAX_LEGS} legs, got {len(r.legs)}"
        legs: list[Leg] = []
        seen: set[str] = set()
        for n, leg in enumerate(r.legs, 1):
            if leg.account and leg.account != r.account:
                return (
                    None,
                    (),
                    f"leg {n} is in account {leg.account}, the order in {r.account}: one order, one account",
                )
            if isinstance(leg.ratio, bool) or not isinstance(leg.ratio, int) or leg.ratio <= 0:
                return None, (), f"leg {n}: ratio must be a positive whole number, got {leg.ratio!r}"
            try:
                inst = self._instruments.resolve(leg.symbol)
            except (UnknownSymbol, ModelError) as exc:
                return None, (), f"leg {n}: {exc}"
            if inst.symbol in seen:
                return None, (), f"leg {n}: {inst.symbol.strip()} appears twice; give each instrument one leg"
            seen.add(inst.symbol)
            err: str | None = self._tradable(r.account, inst)
            if err:
                return None, (), f"leg {n}: {err}"
            legs.append((leg, inst))
        try:
            strategy = self._instruments.strategy(legs, name=r.symbol if r.symbol and r.symbol != "combo" else "")
        except ModelError as exc:
            return None, (), str(exc)
        t = r.order_type
        if t not in (OrderType.MARKET, OrderType.LIMIT):
            return (
                strategy,
                (),
                f"a multi-leg order is a market or limit order on paper, not {t.value.replace('_', '-')}",
            )
        if r.stop_price is not None or r.trail_amount is not None:
            return strategy, (), "a multi-leg order takes no stop price or trail"
        if r.bracket is not None:
            return strategy, (), "a multi-leg order takes no bracket; send its exits as their own combo orders"
        if r.reduce_only:
            return strategy, (), "reduce-only is for single orders; mark the legs 'close' to close a spread"
        effect = r.price_effect or (PriceEffect.DEBIT if r.side is Side.BUY else PriceEffect.CREDIT)
        if (effect is PriceEffect.DEBIT) != (r.side is Side.BUY):
            return (
                strategy,
                (),
                (
                    f"a net {effect.value} is {'a buy' if effect is PriceEffect.DEBIT else 'a sell'} of the combo; "
                    f"this order is a {r.side.value}"
                ),
            )
        if t is OrderType.LIMIT:
            if r.limit_price is None:
                return strategy, (), "a multi-leg limit order needs its net price"
            err = tick_error(strategy, r.limit_price, f"net {effect.value}")
            if err:
                return strategy, (), err
        elif r.limit_price is not None:
            return strategy, (), f"a multi-leg market order takes no net price (got {r.limit_price})"
        err = self._effects_error(r, legs)
        if err:
            return strategy, (), err
        for _, inst in legs:
            self._ensure_market(inst)
        if t is OrderType.MARKET:
            missing = [inst.symbol.strip() for leg, inst in legs if self._touch(inst, leg.side) is None]
            if missing:
                return (
                    strategy,
                    (),
                    f"no market in {', '.join(missing)} yet: a multi-leg market order needs every leg quoted",
                )
        if self._ledger.accounts[r.account].spec.kind is AccountKind.CASH:
            reason = self._cash.combo_cash_check(r, legs)
            if reason:
                return strategy, (), reason
        return strategy, tuple(legs), ""

    def _touch(self, inst: Instrument, side: Side) -> Decimal | None:
        q = self._engine.quote(inst.symbol)
        return touch(q, side) if q is not None else None

    def _effects_error(self, r: OrderRequest, legs: list[Leg]) -> str:
        """Each leg's open/close effect against what the account holds (AUTO: whatever it is)."""
        for n, (leg, inst) in enumerate(legs, 1):
            net = self._ledger.net(r.account, inst.symbol)
            qty = leg.ratio * r.quantity
            closing = net != 0 and (net > 0) != (leg.side is Side.BUY)
            verb = f"{leg.side.value} {qty} {inst.symbol.strip()}"
            if leg.effect is PositionEffect.CLOSE:
                if not closing:
                    return f"leg {n}: {verb} to close, but the position is {net:+d}: there is nothing to close"
                if qty > abs(net):
                    return f"leg {n}: {verb} to close is more than the {abs(net)} held"
            elif leg.effect is PositionEffect.OPEN and closing:
                return (
                    f"leg {n}: {verb} to open, but the position is {net:+d}: that would close it; "
                    "mark the leg 'close' (or 'auto')"
                )
        return ""

    # ------------------------------------------------------------------ groups

    def validate_group(self, group: OrderGroup) -> str:
        """Why an OCO or OTOCO group is refused ("" when its shape is valid; each order is then
        validated on its own as well)."""
        orders = group.orders
        if group.kind is GroupKind.OCO and len(orders) != 2:
            return f"an OCO group has two orders, got {len(orders)}"
        if group.kind is GroupKind.OTOCO and len(orders) != 3:
            return f"an OTOCO group has a trigger and two exits (three orders), got {len(orders)}"
        accounts = {o.account for o in orders}
        if len(accounts) > 1:
            return f"a group's orders are in one account, got {', '.join(sorted(accounts))}"
        coids = [o.client_order_id for o in orders]
        if len(set(coids)) != len(coids):
            return "every order of a group needs its own client order id"
        for n, o in enumerate(orders, 1):
            if o.legs:
                return f"order {n}: multi-leg orders cannot be grouped on paper"
            if o.bracket is not None:
                return f"order {n}: an order inside a group takes no bracket of its own"
        if group.kind is GroupKind.OTOCO:
            trigger, *exits = orders
            symbols = {self._symbol(o.symbol) for o in orders}
            if len(symbols) > 1:
                return f"an OTOCO's exits trade the trigger's instrument; got {', '.join(sorted(symbols))}"
            for n, x in enumerate(exits, 2):
                if x.side is trigger.side:
                    return f"order {n}: an OTOCO exit is on the other side of its trigger ({trigger.side.value})"
                if x.quantity != trigger.quantity:
                    return (
                        f"order {n}: an OTOCO exit is for the trigger's quantity ({trigger.quantity}), not {x.quantity}"
                    )
                if x.order_type is OrderType.MARKET:
                    return f"order {n}: an OTOCO exit is a limit, stop, stop-limit or trailing stop, not a market order"
            roles = {exit_role(x.order_type) for x in exits}
            if roles != {OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS}:
                return "an OTOCO's exits are a take-profit (limit) and a stop (stop, stop-limit or trailing stop)"
            err = self._exit_sides(trigger, exits)
            if err:
                return err
        return ""

    def validate_exit(self, r: OrderRequest) -> tuple[Instrument | None, str]:
        """An OTOCO exit is checked for its shape only: the position it closes does not exist yet."""
        try:
            inst = self._instruments.resolve(r.symbol)
        except (UnknownSymbol, ModelError) as exc:
            return None, str(exc)
        for label, price in (("limit price", r.limit_price), ("stop price", r.stop_price)):
            if price is not None:
                err = tick_error(inst, price, label)
                if err:
                    return inst, err
        t = r.order_type
        if t.needs_limit and r.limit_price is None:
            return inst, f"a {t.value.replace('_', '-')} exit needs a limit price"
        if t.needs_stop and r.stop_price is None:
            return inst, f"a {t.value.replace('_', '-')} exit needs a stop price"
        if not t.needs_limit and r.limit_price is not None:
            return inst, f"a {t.value.replace('_', ' ')} exit takes no limit price"
        if not t.needs_stop and r.stop_price is not None:
            return inst, f"a {t.value.replace('_', ' ')} exit takes no stop price"
        if t is OrderType.TRAILING_STOP and (r.trail_amount is None or r.trail_amount <= 0):
            return inst, "a trailing-stop exit needs a positive trail amount"
        if t is OrderType.TRAILING_STOP and r.trail_amount is not None and (r.trail_amount / inst.tick_size) % 1:
            return inst, f"trail amount {r.trail_amount} is not a whole number of ticks (tick {inst.tick_size})"
        return inst, ""

    def _exit_sides(self, trigger: OrderRequest, exits: list[OrderRequest]) -> str:
        """The take-profit lies beyond the trigger price, the stop behind it."""
        if trigger.order_type.needs_limit:
            ref = trigger.limit_price
        elif trigger.order_type is OrderType.STOP:
            ref = trigger.stop_price
        else:
            ref = None
        if ref is None:
            return ""
        sign = trigger.side.sign
        for x in exits:
            if x.order_type is OrderType.LIMIT and x.limit_price is not None and (x.limit_price - ref) * sign <= 0:
                side = "above" if sign > 0 else "below"
                return f"the take-profit {x.limit_price} must be {side} the trigger's {ref} for a {trigger.side.value}"
            if x.order_type.needs_stop and x.stop_price is not None and (ref - x.stop_price) * sign <= 0:
                side = "below" if sign > 0 else "above"
                return f"the stop {x.stop_price} must be {side} the trigger's {ref} for a {trigger.side.value}"
        return ""

    def _symbol(self, symbol: str) -> str:
        try:
            return self._instruments.resolve(symbol).symbol
        except (UnknownSymbol, ModelError):
            return symbol
