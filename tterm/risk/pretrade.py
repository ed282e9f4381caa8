"""Pre-trade checks: every order from every source passes these before it reaches a broker.

Each check implements the router's ``PreTradeCheck`` protocol and is pure: it reads the
request's :class:`~tterm.core.router.CheckContext` and the account's latest :class:`RiskView`
(which the monitor refreshes on every tick), and returns None or a decision. Nothing here does
I/O, so a check costs microseconds (``bench/bench_pretrade.py`` prints the figures).

What an order is refused for, in plain words:

- ``risk_ready``: the account has a rule profile but its limits are not known yet;
- ``risk_flatten``: tterm is flattening the account after a breach;
- ``cutoff``: it is inside the window before the firm's flat-by time;
- ``stale``: the instrument's market data is missing or too old;
- ``fat_finger``: the price is too far from the market, or the size is above the maximum;
- ``tier``: the position would exceed the contract limit of the current scaling tier;
- ``floor`` / ``dll``: its worst case (stop distance x size x tick value + fees, or a configured
  adverse move when it has no stop) would cross the firm's floor or daily loss limit;
- ``news``: it is inside a news window of the firm's rule or yours (``warn`` rules only warn);
- ``hedging``: it would leave the trader long in one account and short in another (or in a
  related product: ES and MES are one product) where the firm or the trader forbids it, across
  every broker and account in the engine;
- ``yours_trades`` / ``yours_trade_loss`` / ``yours_size``: your trades per day (the entry and
  the exit it will need), your most per trade, your contract cap.

Orders that only reduce a position (exits, flattens) always pass: a check must never trap a
trader in a position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from tterm.core.clock import CT
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, OrderRole, OrderType, Position, RiskAction, RiskDecision, Side
from tterm.core.router import CheckContext, PreTradeCheck
from tterm.risk.news import NewsCalendar
from tterm.risk.profiles import NewsAction, NewsRule, Profile
from tterm.risk.settings import RiskSettings

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RiskView:
    """One account's limits as of the monitor's last tick: what the pre-trade checks read."""

    account: str
    profile: Profile
    floor: Decimal
    floor_distance: Decimal  # liquidation value - firm floor
    buffer: Decimal  # tterm's margin above the floor
    daily_loss_limit: Decimal | None
    dll_distance: Decimal | None  # DLL + day P&L net of exit fees
    dll_buffer: Decimal
    contracts_max: int | None
    cutoff_at: datetime | None  # the firm's flat-by instant today
    flatten_at: datetime | None  # tterm flattens (and refuses new exposure) from here
    window_end: datetime | None  # ... until the next session opens
    enforcing: str = ""  # why tterm is flattening this account now ("" when it is not)


ViewSource = Callable[[str], "RiskView | None"]


@dataclass(frozen=True, slots=True)
class GuardView:
    """An account's rules beyond the firm's floor: news windows, hedging and your own limits.

    Every account has one (with or without a firm profile); the monitor refreshes it.
    """

    account: str
    #: The news rules in force: (rule, "firm" or "yours").
    news: tuple[tuple[NewsRule, str], ...] = ()
    #: Who forbids hedging ("" when nobody does): "the <firm> rules" or "your settings".
    no_hedging: str = ""
    trades: int = 0
    max_trades: int | None = None
    max_loss_per_trade: Decimal | None = None
    max_contracts: int | None = None  # yours, counted a lot per lot (a firm profile counts its own way)


GuardSource = Callable[[str], "GuardView | None"]


# --------------------------------------------------------------------------- order arithmetic


def opening_quantity(ctx: CheckContext) -> int:
    """How much of the order opens or adds exposure (the rest only reduces the position)."""
    r = ctx.request
    if r.reduce_only:
        return 0
    held = ctx.position.quantity
    if held == 0 or (held > 0) == (r.side is Side.BUY):
        return r.quantity
    return max(0, r.quantity - abs(held))


def entry_price(ctx: CheckContext) -> Decimal | None:
    """The price the order would fill at: its limit, its stop, else the far side of the market."""
    r = ctx.request
    if r.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return r.limit_price
    if r.order_type is OrderType.STOP:
        return r.stop_price
    q = ctx.quote
    if q is None:
        return None
    near = q.ask if r.side is Side.BUY else q.bid
    return near if near is not None else q.mark


def market_price(ctx: CheckContext) -> Decimal | None:
    q = ctx.quote
    return None if q is None else q.mark


def stop_ticks(ctx: CheckContext, entry: Decimal | None) -> Decimal | None:
    """Ticks from the entry to the order's protective stop, or None if it has none."""
    b = ctx.request.bracket
    if b is None:
        return None
    if b.stop_loss_ticks is not None:
        return Decimal(b.stop_loss_ticks)
    if b.stop_loss_price is not None and entry is not None:
        return abs(entry - b.stop_loss_price) / ctx.instrument.tick_size
    return None


def worst_case(ctx: CheckContext, settings: RiskSettings) -> tuple[Decimal, str]:
    """The most the order can lose, net of fees, and how that was worked out."""
    inst = ctx.instrument
    opening = opening_quantity(ctx)
    entry = entry_price(ctx)
    ticks = stop_ticks(ctx, entry)
    # Fees: the whole order's entry side plus the exit of what it opens.
    fees = inst.fee_per_side * (ctx.request.quantity + opening)
    if opening == 0:
        return fees, "it only reduces the position"
    if ticks is None:
        ticks = Decimal(settings.adverse_ticks(inst))
        how = f"no stop: {ticks:f} ticks adverse assumed"
    else:
        how = f"stop {ticks.normalize():f} ticks away"
    # A market order may fill away from the mark: count the distance from mark to entry too.
    mark = market_price(ctx)
    slip = ZERO
    if mark is not None and entry is not None and ctx.request.order_type is OrderType.MARKET:
        slip = max(ZERO, (entry - mark) * ctx.request.side.sign) / inst.tick_size
    loss = (ticks + slip) * inst.tick_value * opening
    return loss + fees, f"{how} x {opening} x ${inst.tick_value}/tick + ${fees:,.2f} fees"


def _money(v: Decimal) -> str:
    sign = "-" if v < 0 else ""
    return f"{sign}${abs(v):,.2f}"


def _reject(ctx: CheckContext, check: str, reason: str, worst: Decimal | None = None) -> RiskDecision:
    return RiskDecision(
        client_order_id=ctx.request.client_order_id,
        account=ctx.request.account,
        action=RiskAction.REJECT,
        reasons=(reason,),
        check=check,
        worst_case=worst,
    )


def _warn(ctx: CheckContext, check: str, reason: str, worst: Decimal | None = None) -> RiskDecision:
    return RiskDecision(
        client_order_id=ctx.request.client_order_id,
        account=ctx.request.account,
        action=RiskAction.WARN,
        reasons=(reason,),
        check=check,
        worst_case=worst,
    )


def _now(ctx: CheckContext) -> datetime | None:
    return ctx.now if isinstance(ctx.now, datetime) else None


# --------------------------------------------------------------------------- the checks


class RiskReadyCheck:
    """An account with a rule profile takes no new exposure before its limits are known."""

    name = "risk_ready"

    def __init__(self, views: ViewSource) -> None:
        self._views = views

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if not ctx.account.profile or opening_quantity(ctx) == 0 or self._views(ctx.request.account) is not None:
            return None
        return _reject(
            ctx,
            self.name,
            f"the {ctx.account.profile} limits of {ctx.request.account} are not loaded yet (waiting for the "
            "broker's first balance report); try again in a moment",
        )


class FlattenInProgressCheck:
    """While tterm flattens an account after a breach, nothing new may open in it."""

    name = "risk_flatten"

    def __init__(self, views: ViewSource) -> None:
        self._views = views

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        view = self._views(ctx.request.account)
        if view is None or not view.enforcing or opening_quantity(ctx) == 0:
            return None
        return _reject(ctx, self.name, f"tterm is flattening {ctx.request.account}: {view.enforcing}; only exits")


class CutoffCheck:
    """No new exposure from tterm's flatten time (the firm's cutoff less the lead) to the next open."""

    name = "cutoff"

    def __init__(self, views: ViewSource) -> None:
        self._views = views

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        view = self._views(ctx.request.account)
        now = _now(ctx)
        if view is None or view.flatten_at is None or now is None or opening_quantity(ctx) == 0:
            return None
        if view.flatten_at <= now and (view.window_end is None or now < view.window_end):
            assert view.cutoff_at is not None
            return _reject(
                ctx,
                self.name,
                f"inside the cutoff window: {view.profile.firm} requires flat by "
                f"{view.cutoff_at.astimezone(CT):%H:%M} CT and tterm flattens from "
                f"{view.flatten_at.astimezone(CT):%H:%M} CT; new positions open at the next session",
            )
        return None


class StaleDataCheck:
    """Refuse new exposure when the instrument has no market data, or only old data."""

    name = "stale"

    def __init__(self, settings: RiskSettings) -> None:
        self._after = timedelta(seconds=settings.stale_after_seconds) if settings.stale_after_seconds else None

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if self._after is None or opening_quantity(ctx) == 0:
            return None
        sym = ctx.instrument.symbol
        q = ctx.quote
        if q is None or q.mark is None:
            return _reject(ctx, self.name, f"no market data for {sym}; subscribe to it and wait for a quote")
        now = _now(ctx)
        if now is not None:
            age = now - q.ts
            if age > self._after:
                secs = int(age.total_seconds())
                return _reject(
                    ctx,
                    self.name,
                    f"market data for {sym} is stale (last quote {secs}s ago, limit "
                    f"{int(self._after.total_seconds())}s); check the connection",
                )
        return None


class FatFingerCheck:
    """A price too far from the market, or a size above the instrument's maximum."""

    name = "fat_finger"

    def __init__(self, settings: RiskSettings) -> None:
        self._settings = settings

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if opening_quantity(ctx) == 0:
            return None
        r = ctx.request
        inst = ctx.instrument
        cap = self._settings.max_size(inst)
        if r.quantity > cap:
            return _reject(
                ctx,
                self.name,
                f"size {r.quantity} is above the maximum of {cap} for {_key(inst)} "
                f"(set [risk.instruments.{_key(inst)}] max_size to change it)",
            )
        market = market_price(ctx)
        if market is None:
            return None
        limit = self._settings.max_distance(inst, market)
        for label, price in (("limit", r.limit_price), ("stop", r.stop_price)):
            if price is not None and abs(price - market) > limit:
                ticks = abs(price - market) / inst.tick_size
                return _reject(
                    ctx,
                    self.name,
                    f"{label} price {price} is {abs(price - market):f} ({ticks:.0f} ticks) from the market "
                    f"{market}; the most allowed is {limit:f}; retype the price",
                )
        return None


class TierCheck:
    """The position after this order (and the working entries) must fit the current tier."""

    name = "tier"

    def __init__(self, views: ViewSource, instruments: InstrumentMaster) -> None:
        self._views = views
        self._instruments = instruments
        self._weights: dict[tuple[str, str], Decimal] = {}

    def _weight(self, profile: Profile, symbol: str, inst: Instrument | None = None) -> Decimal:
        key = (profile.id, symbol)
        w = self._weights.get(key)
        if w is None:
            w = profile.contracts.weight(inst or self._instruments.resolve(symbol))
            self._weights[key] = w
        return w

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        view = self._views(ctx.request.account)
        if view is None or view.contracts_max is None or opening_quantity(ctx) == 0:
            return None
        profile = view.profile
        r = ctx.request
        # Working entry orders could fill too: count them on their own side.
        buys = sells = 0
        for o in ctx.open_orders:
            # A modify re-checks the order under its own client order id: do not count it twice.
            if o.symbol == r.symbol and o.role is OrderRole.ENTRY and o.client_order_id != r.client_order_id:
                if o.side is Side.BUY:
                    buys += o.remaining
                else:
                    sells += o.remaining
        held = ctx.position.quantity
        if r.side is Side.BUY:
            this = max(abs(held + buys + r.quantity), abs(held - sells))
        else:
            this = max(abs(held + buys), abs(held - sells - r.quantity))
        after = this * self._weight(profile, r.symbol, ctx.instrument)
        for p in ctx.positions:
            if p.symbol != r.symbol and p.quantity:
                after += abs(p.quantity) * self._weight(profile, p.symbol)
        if after > view.contracts_max:
            ratio = " (10 micros count as 1)" if profile.contracts.micro_ratio == 10 else " (a micro counts as 1)"
            return _reject(
                ctx,
                self.name,
                f"this order would bring {r.account} to {after.normalize():f} contracts; the current "
                f"{profile.firm} tier allows {view.contracts_max}{ratio}",
            )
        return None


class WorstCaseCheck:
    """Worst case against the firm's floor (``floor``) and daily loss limit (``dll``).

    Crossing a firm line is a reject; crossing tterm's buffer ahead of it is a warning (the order
    may go, but if it loses that much tterm will flatten the account).
    """

    name = "worst_case"

    def __init__(self, views: ViewSource, settings: RiskSettings) -> None:
        self._views = views
        self._settings = settings

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        view = self._views(ctx.request.account)
        if view is None or opening_quantity(ctx) == 0:
            return None
        worst, how = worst_case(ctx, self._settings)
        if worst >= view.floor_distance:
            return _reject(
                ctx,
                "floor",
                f"worst case {_money(-worst)} ({how}) crosses the {view.profile.firm} floor "
                f"{_money(view.floor)}: only {_money(view.floor_distance)} is left",
                worst,
            )
        if view.dll_distance is not None and worst >= view.dll_distance:
            return _reject(
                ctx,
                "dll",
                f"worst case {_money(-worst)} ({how}) crosses the daily loss limit "
                f"{_money(-(view.daily_loss_limit or ZERO))}: only {_money(view.dll_distance)} is left today",
                worst,
            )
        if worst >= view.floor_distance - view.buffer:
            return _warn(
                ctx,
                "floor",
                f"worst case {_money(-worst)} would reach tterm's flatten level, only "
                f"{_money(view.floor_distance - view.buffer)} away: tterm would flatten the account",
                worst,
            )
        if view.dll_distance is not None and worst >= view.dll_distance - view.dll_buffer:
            return _warn(
                ctx,
                "dll",
                f"worst case {_money(-worst)} would reach tterm's daily-loss flatten level",
                worst,
            )
        return RiskDecision(
            client_order_id=ctx.request.client_order_id,
            account=ctx.request.account,
            action=RiskAction.ALLOW,
            check=self.name,
            worst_case=worst,
        )


class NewsCheck:
    """No new exposure inside a news window (``no_entries``, ``flatten``); ``warn`` warns."""

    name = "news"

    def __init__(self, guards: GuardSource, calendar: Callable[[], NewsCalendar], lead_minutes: Decimal = ZERO) -> None:
        self._guards = guards
        self._calendar = calendar
        # A flatten rule is flat from the window's start: tterm flattens (and refuses) ``lead`` earlier.
        self._lead = timedelta(minutes=float(lead_minutes))

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        guard = self._guards(ctx.request.account)
        now = _now(ctx)
        if guard is None or not guard.news or now is None or opening_quantity(ctx) == 0:
            return None
        calendar = self._calendar()
        warning = None
        for rule, who in guard.news:
            w = calendar.window_at(rule, now)
            if w is None and rule.rule is NewsAction.FLATTEN and self._lead:
                w = calendar.window_at(rule, now + self._lead)
            if w is None:
                continue
            r = w.release
            span = f"{w.start.astimezone(CT):%H:%M}-{w.end.astimezone(CT):%H:%M} CT"
            whose = "your news rule" if who == "yours" else f"the {who} news rule"
            what = f"{r.label} at {r.at.astimezone(CT):%H:%M} CT: {whose} covers {span}"
            if w.rule is NewsAction.WARN:
                warning = warning or _warn(ctx, self.name, f"{what} (warning only)")
                continue
            verb = "no new positions" if w.rule is NewsAction.NO_ENTRIES else "be flat"
            return _reject(ctx, self.name, f"inside a news window: {what} ({verb}); exits still pass")
        return warning


def product_of(inst: Instrument, instruments: InstrumentMaster) -> str:
    """The product an instrument trades, for the hedging rule: ES and MES are one product."""
    if inst.asset_class is AssetClass.FUTURE and inst.root:
        try:
            mini = instruments.spec(inst.root).mini
        except UnknownSymbol:
            mini = ""
        return mini or inst.root
    if inst.asset_class is AssetClass.OPTION:
        return inst.underlying or inst.symbol
    return inst.symbol


class HedgingCheck:
    """Refuse an order that would leave the trader long and short in one product at once.

    It looks at every open position in the engine (every broker, every account, the order's own
    account included: long ES and short MES is a hedge too) and applies when the order's account
    or the other position's account forbids hedging (its firm profile, or your ``no_hedging``).
    """

    name = "hedging"

    def __init__(
        self,
        guards: GuardSource,
        positions: Callable[[], Iterable[Position]],
        instruments: InstrumentMaster,
    ) -> None:
        self._guards = guards
        self._positions = positions
        self._instruments = instruments
        self._products: dict[str, str] = {}

    def _product(self, symbol: str, inst: Instrument | None = None) -> str:
        p = self._products.get(symbol)
        if p is None:
            p = product_of(inst or self._instruments.resolve(symbol), self._instruments)
            self._products[symbol] = p
        return p

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if opening_quantity(ctx) == 0:
            return None
        r = ctx.request
        mine = self._guards(r.account)
        product = self._product(r.symbol, ctx.instrument)
        sign = r.side.sign
        for pos in self._positions():
            if not pos.quantity or (pos.quantity > 0) == (sign > 0):
                continue
            if pos.account == r.account and pos.symbol == r.symbol:
                continue  # the order itself reverses it; that is not two positions
            if self._product(pos.symbol) != product:
                continue
            other = mine if pos.account == r.account else self._guards(pos.account)
            who = (mine.no_hedging if mine else "") or (other.no_hedging if other else "")
            if not who:
                continue
            side = "long" if pos.quantity > 0 else "short"
            want = "long" if sign > 0 else "short"
            where = "this account" if pos.account == r.account else pos.account
            return _reject(
                ctx,
                self.name,
                f"hedging: {where} is {side} {abs(pos.quantity)} {pos.symbol} and this order would make "
                f"{r.account} {want} {product}; {who} forbid opposite positions in one product across "
                "accounts (close one side first)",
            )
        return None


class YoursCheck:
    """Your own limits: trades per day, the most per trade, your contract cap."""

    name = "yours"

    def __init__(self, guards: GuardSource, settings: RiskSettings) -> None:
        self._guards = guards
        self._settings = settings

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        guard = self._guards(ctx.request.account)
        opening = opening_quantity(ctx)
        if guard is None or opening == 0:
            return None
        r = ctx.request
        if guard.max_trades is not None:
            held = ctx.position.quantity
            starts = held == 0 or (held > 0) != (r.side is Side.BUY)
            needed = 2 if starts else 1
            if guard.trades + needed > guard.max_trades:
                also = " and the exit it will need" if needed == 2 else ""
                return _reject(
                    ctx,
                    "yours_trades",
                    f"your limit is {guard.max_trades} trades a day (entries and exits both count): "
                    f"{guard.trades} used, this order{also} would make {guard.trades + needed}; exits still pass",
                )
        if guard.max_loss_per_trade is not None:
            worst, how = worst_case(ctx, self._settings)
            if worst > guard.max_loss_per_trade:
                return _reject(
                    ctx,
                    "yours_trade_loss",
                    f"worst case {_money(-worst)} ({how}) is more than your {_money(guard.max_loss_per_trade)} "
                    "a trade; a closer stop or a smaller size fits",
                    worst,
                )
        if guard.max_contracts is not None:
            held = ctx.position.quantity
            after = abs(held + r.side.sign * r.quantity)
            others = sum(abs(p.quantity) for p in ctx.positions if p.symbol != r.symbol)
            if after + others > guard.max_contracts:
                return _reject(
                    ctx,
                    "yours_size",
                    f"this order would bring {r.account} to {after + others} lots; your cap is {guard.max_contracts}",
                )
        return None


def _key(inst: Instrument) -> str:
    return inst.root or inst.underlying or inst.symbol


def risk_checks(
    views: ViewSource,
    settings: RiskSettings,
    instruments: InstrumentMaster,
    *,
    guards: GuardSource | None = None,
    calendar: Callable[[], NewsCalendar] | None = None,
    positions: Callable[[], Iterable[Position]] | None = None,
) -> list[PreTradeCheck]:
    """Every pre-trade check, in the order they run (cheapest and most decisive first).

    ``guards``, ``calendar`` and ``positions`` (every open position in the engine) add the news,
    hedging and personal checks.
    """
    checks: list[PreTradeCheck] = [
        RiskReadyCheck(views),
        FlattenInProgressCheck(views),
        CutoffCheck(views),
    ]
    if guards is not None and calendar is not None:
        checks.append(NewsCheck(guards, calendar, settings.cutoff_lead_minutes))
    checks += [StaleDataCheck(settings), FatFingerCheck(settings)]
    if guards is not None:
        if positions is not None:
            checks.append(HedgingCheck(guards, positions, instruments))
        checks.append(YoursCheck(guards, settings))
    checks += [TierCheck(views, instruments), WorstCaseCheck(views, settings)]
    return checks
