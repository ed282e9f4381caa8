"""One account's path through a replay: as recorded (what the firm saw), or with tterm protecting it.

:class:`Path` runs the rows of a replay file for one profile. With ``protect=False`` every
recorded fill happens as it did; the result says whether, when and why the firm would have
failed the account, and where tterm *would have* acted. With ``protect=True`` the same rows run
against an account tterm protects, with the live monitor's own rules and the router's own
pre-trade checks:

- at its buffer above the floor, its buffer ahead of the DLL, the flat-by cutoff less the lead,
  a news window's flatten time, or one of your own limits, tterm flattens: each open position is
  closed at the **next mark** of its symbol in the file, less ``slippage_ticks`` against it, with
  the instrument's fee per side; after a floor, DLL, cutoff or personal-DLL flatten it locks the
  account until the next session opens;
- a recorded order is replayed by intent: the part that closed the recorded position is an exit
  (it closes what the protected account still holds, never more), the part that opened or added
  is an entry, and an entry passes the same pre-trade checks as a live order (lock, cutoff
  window, news window, fat finger, tier, worst case, your limits) or is refused;
- when one mark takes the account from above tterm's line straight through the firm's, the line
  was skipped by the gap, and the result says so.

Both modes use the same :class:`~tterm.risk.rules.RiskTracker` and clock as the live monitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import cast

from tterm.core.book import Book
from tterm.core.clock import CT, ClockError, CmeClock
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    Account,
    AccountLock,
    Bracket,
    Fill,
    Instrument,
    OrderRequest,
    OrderSource,
    OrderType,
    Quote,
    RiskAction,
    Side,
)
from tterm.core.router import CheckContext, LockCheck, PreTradeCheck
from tterm.risk.news import NewsCalendar, Window
from tterm.risk.personal import PersonalLimits, PersonalTracker
from tterm.risk.pretrade import GuardView, RiskView, risk_checks
from tterm.risk.profiles import CutoffAction, DllAction, NewsAction, NewsRule, Profile
from tterm.risk.rules import Assessment, RiskTracker, contracts_in_use, fmt_money, money
from tterm.risk.settings import AccountRiskSettings, RiskSettings

ZERO = Decimal(0)
ACCOUNT = "replay"
#: A position held this close to the session close makes the verdict lean on the flat-by time.
_LATE = timedelta(hours=2)
#: A position or entry this close to a release makes the verdict lean on the news rule.
_NEAR_NEWS = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ReplayRow:
    at: datetime
    kind: str  # fill | mark
    instrument: Instrument
    price: Decimal
    side: Side | None = None
    qty: int = 0
    fee: Decimal | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class FloorPoint:
    at: datetime
    floor: Decimal
    high_water_mark: Decimal
    why: str


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    rule: str
    text: str
    pnl: Decimal | None = None  # the account's P&L since the start of the file, at this moment


@dataclass(slots=True)
class Action:
    """One flatten tterm made on the protected path."""

    at: datetime  # when the line was reached
    rule: str
    text: str
    locks: bool
    orders: list[tuple[str, int]] = field(default_factory=list)  # (symbol, signed quantity to close)
    fills: list[tuple[datetime, str, int, Decimal, Decimal]] = field(default_factory=list)  # at, sym, qty, price, fee
    filled_at: datetime | None = None
    pnl_after: Decimal | None = None  # P&L since the start once every order filled
    above_floor: Decimal | None = None  # liquidation value - floor once every order filled

    @property
    def done(self) -> bool:
        return not self.orders


@dataclass(frozen=True, slots=True)
class Refusal:
    at: datetime
    line: int
    text: str  # "buy 2 ESZ6"
    check: str
    reason: str


@dataclass(slots=True)
class ReplayResult:
    """How one profile fared over the replayed rows, on one path."""

    profile: Profile
    start_balance: Decimal
    protected: bool = False
    failed: Event | None = None  # the first hard breach: the account fails here
    soft: list[Event] = field(default_factory=list)  # daily-limit blocks, cutoff liquidations, news
    tterm: list[Event] = field(default_factory=list)  # where tterm would have flattened first (as recorded)
    floor_path: list[FloorPoint] = field(default_factory=list)
    closest: Decimal | None = None
    closest_at: datetime | None = None
    blocked_fills: int = 0
    final_balance: Decimal = ZERO
    final_equity: Decimal = ZERO
    final_floor: Decimal = ZERO
    days: int = 0
    #: The rule areas the verdict leaned on (for the caveats it depends on).
    areas: set[str] = field(default_factory=set)
    # ---- protected path only
    actions: list[Action] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    gaps: list[Event] = field(default_factory=list)  # tterm's line skipped by one mark
    warnings: list[Event] = field(default_factory=list)  # warn-only rules that fired

    @property
    def passed(self) -> bool:
        return self.failed is None

    @property
    def pnl(self) -> Decimal:
        """The account's result: at the failure (the firm liquidates there), else at the end."""
        if self.failed is not None and self.failed.pnl is not None:
            return self.failed.pnl
        return self.final_equity - self.start_balance


def _t(at: datetime) -> str:
    return at.astimezone(CT).strftime("%Y-%m-%d %H:%M:%S CT")


class Path:
    """One account's path through the rows (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        *,
        instruments: InstrumentMaster,
        clock: CmeClock,
        settings: RiskSettings | None = None,
        protect: bool = False,
        calendar: NewsCalendar | None = None,
        personal: AccountRiskSettings | None = None,
        slippage_ticks: int = 1,
        stop_ticks: int | None = None,
    ) -> None:
        self.profile = profile
        self.instruments = instruments
        self.clock = clock
        self.settings = settings or RiskSettings()
        self.protect = protect
        self.calendar = calendar or NewsCalendar()
        self.slippage_ticks = slippage_ticks
        self.stop_ticks = stop_ticks
        s = self.settings
        self.tracker = RiskTracker(profile, buffer_pct=s.buffer_pct, warn_pct=s.warn_pct, danger_pct=s.danger_pct)
        self.st = self.tracker.state
        self.book = Book(instruments)
        self.result = ReplayResult(profile=profile, start_balance=profile.start, protected=protect)
        self.lead = timedelta(minutes=float(s.cutoff_lead_minutes))
        self.personal_cfg = personal if protect else None
        self.personal = PersonalTracker(PersonalLimits.from_settings(self.personal_cfg)) if protect else None
        rules: list[tuple[NewsRule, str]] = []
        if profile.news.active:
            rules.append((profile.news, profile.firm))
        if self.personal_cfg is not None and self.personal_cfg.news is not None and self.personal_cfg.news.active:
            rules.append((self.personal_cfg.news, "yours"))
        self.news_rules = tuple(rules) if protect else tuple(r for r in rules if r[1] != "yours")
        self.account = Account(id=ACCOUNT, broker="replay", vendor_id=ACCOUNT, name="replay", profile=profile.id)
        self.checks: list[PreTradeCheck] = []
        if protect:
            self.checks = [LockCheck()] + [
                c
                for c in risk_checks(
                    lambda a: self._view,
                    s,
                    instruments,
                    guards=lambda a: self._guard(),
                    calendar=lambda: self.calendar,
                    positions=lambda: self.book.open_positions(ACCOUNT),
                )
                if c.name not in ("risk_ready", "stale")
            ]
        self._view: RiskView | None = None
        self.recorded: dict[str, int] = {}  # the recorded account's positions (the trader's intent)
        self.pending: list[tuple[datetime, int, str, object]] = []
        self._counter = 0
        self.day: date | None = None
        self.blocked_date: date | None = None
        self.seen: set[tuple[str, date | None]] = set()
        self.lock_until: datetime | None = None
        self.enforcing = ""
        self.open_action: Action | None = None
        self.last: Assessment | None = None
        self.cutoff_at: datetime | None = None
        self.flatten_at: datetime | None = None
        self.window_end: datetime | None = None
        self.session_close: datetime | None = None
        self._after_fill: Action | None = None
        self.result.areas.add("drawdown")

    # ================================================================== driving

    def run(self, rows: Sequence[ReplayRow]) -> ReplayResult:
        r = self.result
        r.floor_path.append(FloorPoint(rows[0].at, self.st.floor, self.st.high_water_mark, "start"))
        for row in rows:
            self._clock_until(row.at)
            self._turn_day(row.at)
            if r.failed is not None:
                continue
            if self.protect:
                self._fill_pending(row)
            if row.kind == "fill":
                self._fill(row)
            else:
                self.book.mark(Quote(symbol=row.instrument.symbol, last=row.price, ts=row.at))
            self._assess(row.at)
        if r.failed is None:
            # The last day runs to its close: the cutoff and the end-of-day snapshot still apply.
            self._clock_until(None)
        r.final_balance, r.final_equity, _ = self._money()
        r.final_floor = self.st.floor
        return r

    # ================================================================== the account's money

    def _money(self) -> tuple[Decimal, Decimal, Decimal]:
        pnl = self.book.pnl(ACCOUNT)
        sod = self.st.sod_balance if self.st.sod_balance is not None else self.st.start_balance
        balance = sod + pnl.realized_net
        fees = sum(
            (
                abs(p.quantity) * self.instruments.resolve(p.symbol).fee_per_side
                for p in self.book.open_positions(ACCOUNT)
            ),
            ZERO,
        )
        return balance, balance + pnl.unrealized, fees

    def _since_start(self) -> Decimal:
        _, equity, fees = self._money()
        return money(equity - fees - self.result.start_balance)

    # ================================================================== the day and the clock

    def _turn_day(self, at: datetime) -> None:
        d = self.clock.trade_date(at)
        if d == self.day:
            return
        if self.day is not None:
            balance, _, _ = self._money()
            self.book.reset_day()
            self.tracker.start_day(d, balance)
        else:
            self.tracker.start_day(d, self.st.start_balance)
        if self.personal is not None:
            self.personal.start_day(d)
        self.day = d
        self.result.days += 1
        self._schedule(d)
        self._clock_until(at)

    def _push(self, at: datetime, kind: str, data: object = None) -> None:
        self._counter += 1
        self.pending.append((at, self._counter, kind, data))

    def _schedule(self, d: date) -> None:
        session = self.clock.session(d)
        self.cutoff_at = self.flatten_at = self.window_end = None
        if session is None:
            return
        self.session_close = session.close
        p = self.profile
        snap = p.drawdown.snapshot
        self._push(
            datetime.combine(d, snap, tzinfo=CT).astimezone(UTC) if snap is not None else session.close, "snapshot"
        )
        if p.session.cutoff is not None:
            try:
                cutoff = self.clock.cutoff(d, p.session.cutoff)
            except ClockError:
                cutoff = None
            if cutoff is not None:
                self.cutoff_at, self.flatten_at = cutoff, cutoff - self.lead
                self.window_end = self.clock.next_open(cutoff)
                self._push(cutoff - self.lead, "tterm_cutoff")
                self._push(cutoff, "cutoff")
        for rule, who in self.news_rules:
            for w in self.calendar.windows(rule, session.open, session.close):
                if w.rule is NewsAction.FLATTEN:
                    if self.protect:
                        self._push(w.start - self.lead, "news_flatten", (w, who))
                    if who != "yours":
                        self._push(w.start, "news_start", (w, who))
                elif w.rule is NewsAction.WARN and self.protect:
                    self._push(w.start, "news_warn", (w, who))
        self.pending.sort(key=lambda e: (e[0], e[1]))

    def _clock_until(self, until: datetime | None) -> None:
        while self.pending and (until is None or self.pending[0][0] <= until):
            at, _, kind, data = self.pending.pop(0)
            if self.result.failed is not None:
                continue
            self._clock_event(at, kind, data)

    def _clock_event(self, at: datetime, kind: str, data: object) -> None:
        r = self.result
        open_pos = self.book.open_positions(ACCOUNT)
        p = self.profile
        if kind == "snapshot":
            balance, _, _ = self._money()
            self.tracker.end_of_day(self.clock.trade_date(at - timedelta(microseconds=1)), balance)
            self._note_floor(at, "end-of-day snapshot")
        elif kind == "tterm_cutoff" and open_pos:
            r.areas.add("session")
            why = f"{len(open_pos)} position(s) open {self.lead} before the flat-by time"
            if self.protect:
                self._flatten(at, "cutoff", f"flat-by cutoff: {why}", locks=True)
            else:
                r.tterm.append(Event(at, "cutoff", why, self._since_start()))
        elif kind == "cutoff" and open_pos:
            r.areas.add("session")
            held = ", ".join(f"{q.quantity:+d} {q.symbol}" for q in open_pos)
            if p.session.flat_by_action is CutoffAction.FAIL:
                text = (
                    f"still holding {held} at the {p.firm} flat-by time: a position past the cutoff fails the account"
                )
                r.failed = Event(at, "cutoff", text, self._since_start())
            else:
                text = f"still holding {held} at the {p.firm} flat-by time: the firm liquidates"
                r.soft.append(Event(at, "cutoff", text, self._since_start()))
        elif kind in ("news_flatten", "news_start", "news_warn"):
            w, who = cast("tuple[Window, str]", data)  # pushed as (window, who) just above
            release = w.release
            what = f"{release.label} at {release.at.astimezone(CT):%H:%M} CT"
            if kind == "news_flatten" and open_pos:
                r.areas.add("news")
                whose = "your" if who == "yours" else f"the {who}"
                self._flatten(
                    at,
                    "news",
                    f"{whose} news rule: flat from {w.start.astimezone(CT):%H:%M} CT for {what}",
                    locks=False,
                )
            elif kind == "news_start" and open_pos:
                r.areas.add("news")
                held = ", ".join(f"{q.quantity:+d} {q.symbol}" for q in open_pos)
                r.soft.append(
                    Event(at, "news", f"still holding {held} inside the {who} news window for {what} (flat required)")
                )
            elif kind == "news_warn":
                r.warnings.append(Event(at, "news", f"{what}: a warn-only news rule ({who})"))

    def _note_floor(self, at: datetime, why: str) -> None:
        last = self.result.floor_path[-1]
        if self.st.floor != last.floor:
            self.result.floor_path.append(FloorPoint(at, self.st.floor, self.st.high_water_mark, why))

    # ================================================================== fills

    def _fill(self, row: ReplayRow) -> None:
        inst = row.instrument
        sym = inst.symbol
        assert row.side is not None
        sign = row.side.sign
        fee = row.fee if row.fee is not None else inst.fee_per_side * row.qty
        before = self.recorded.get(sym, 0)
        self.recorded[sym] = before + sign * row.qty
        reduce = min(row.qty, abs(before)) if before and (before > 0) != (sign > 0) else 0
        opening = row.qty - reduce
        r = self.result
        r.areas.add("contracts")
        if opening and self._near_news(row.at):
            r.areas.add("news")
        if not self.protect:
            if self.blocked_date == self.day:
                r.blocked_fills += 1
            self._book(row, row.qty, fee)
            return
        # The protected account: the exit closes what it still holds; the entry asks the checks.
        held = self.book.quantity(ACCOUNT, sym)
        exit_qty = min(reduce, abs(held)) if held and (held > 0) != (sign > 0) else 0
        if exit_qty:
            self._book(row, exit_qty, fee * exit_qty / row.qty)
        entry_qty = opening
        if entry_qty and not self._allowed(row, entry_qty):
            entry_qty = 0
        if entry_qty:
            self._book(row, entry_qty, fee * entry_qty / row.qty)
        if self.personal is not None and (exit_qty or entry_qty):
            self.personal.count(f"r{row.line}", opened=bool(entry_qty), reduced=bool(exit_qty))

    def _book(self, row: ReplayRow, qty: int, fee: Decimal, *, price: Decimal | None = None, tag: str = "r") -> None:
        if row.side is None:  # only fill rows are booked, and the reader gives every fill a side
            raise ValueError(f"line {row.line}: a fill without a side")
        self.book.apply_fill(
            Fill(
                fill_id=f"{tag}{row.line}-{qty}",
                order_id=f"{tag}{row.line}",
                client_order_id=f"{tag}{row.line}",
                account=ACCOUNT,
                symbol=row.instrument.symbol,
                side=row.side,
                quantity=qty,
                price=row.price if price is None else price,
                fee=money(fee),
                ts=row.at,
            )
        )
        self.book.set_mark(row.instrument.symbol, row.price)

    def _allowed(self, row: ReplayRow, qty: int) -> bool:
        """Run the entry through the live pre-trade checks; a refusal is recorded."""
        inst = row.instrument
        sym = inst.symbol
        assert row.side is not None
        request = OrderRequest(
            account=ACCOUNT,
            symbol=sym,
            side=row.side,
            quantity=qty,
            order_type=OrderType.MARKET,
            source=OrderSource.TICKET,
            bracket=Bracket(stop_loss_ticks=self.stop_ticks) if self.stop_ticks else None,
        )
        locked = self.lock_until is not None and row.at < self.lock_until
        lock = (
            AccountLock(ACCOUNT, True, self.enforcing or "locked by tterm", until=self.lock_until, by="risk")
            if locked
            else None
        )
        ctx = CheckContext(
            request=request,
            account=self.account,
            instrument=inst,
            quote=Quote(symbol=sym, bid=row.price, ask=row.price, last=row.price, ts=row.at),
            position=self.book.position(ACCOUNT, sym),
            positions=tuple(self.book.open_positions(ACCOUNT)),
            open_orders=(),
            lock=lock,
            now=row.at,
        )
        self._view = self._risk_view(row.at)
        for check in self.checks:
            decision = check.check(ctx)
            if decision is not None and decision.action is RiskAction.REJECT:
                self.result.refused.append(
                    Refusal(row.at, row.line, f"{row.side.value} {qty} {sym}", decision.check, decision.reason)
                )
                return False
        return True

    def _risk_view(self, at: datetime) -> RiskView | None:
        x = self.last
        if x is None:
            return None
        t = self.tracker
        return RiskView(
            account=ACCOUNT,
            profile=self.profile,
            floor=x.floor,
            floor_distance=x.floor_distance,
            buffer=t.buffer,
            daily_loss_limit=x.dll,
            dll_distance=x.dll_distance,
            dll_buffer=ZERO if x.dll is None else money(x.dll * t.buffer_pct / 100),
            contracts_max=t.contracts_max,
            cutoff_at=self.cutoff_at,
            flatten_at=self.flatten_at,
            window_end=self.window_end,
            enforcing=self.enforcing if self.lock_until is not None and at < self.lock_until else "",
        )

    def _guard(self) -> GuardView:
        cfg = self.personal_cfg
        pt = self.personal
        return GuardView(
            account=ACCOUNT,
            news=self.news_rules,
            no_hedging=(
                f"the {self.profile.firm} rules"
                if self.profile.hedging and self.profile.hedging.value == "forbidden"
                else ""
            )
            or ("your settings" if cfg is not None and cfg.no_hedging else ""),
            trades=pt.state.trades if pt else 0,
            max_trades=pt.limits.max_trades if pt else None,
            max_loss_per_trade=pt.limits.max_loss_per_trade if pt else None,
            max_contracts=cfg.max_contracts if cfg is not None else None,
        )

    def _near_news(self, at: datetime) -> bool:
        return bool(self.calendar.between(at - _NEAR_NEWS, at + _NEAR_NEWS))

    # ================================================================== tterm's flatten

    def _flatten(self, at: datetime, rule: str, text: str, *, locks: bool, symbols: set[str] | None = None) -> None:
        """Send tterm's closing orders; they fill at each symbol's next mark."""
        if locks:
            self.lock_until = self.clock.next_open(at)
            self.enforcing = self.enforcing or text
        if self.open_action is not None and not self.open_action.done:
            return  # already flattening: its orders close everything
        open_pos = [p for p in self.book.open_positions(ACCOUNT) if symbols is None or p.symbol in symbols]
        if not open_pos and not locks:
            return
        action = Action(at, rule, text, locks, orders=[(p.symbol, -p.quantity) for p in open_pos])
        self.result.actions.append(action)
        if action.done:
            action.filled_at = at
            action.pnl_after = self._since_start()
        else:
            self.open_action = action

    def _fill_pending(self, row: ReplayRow) -> None:
        a = self.open_action
        sym = row.instrument.symbol
        if a is None or a.done or row.at < a.at:
            return
        for i, (osym, qty) in enumerate(a.orders):
            if osym != sym:
                continue
            side = Side.BUY if qty > 0 else Side.SELL
            tick = row.instrument.tick_size
            price = row.price + side.sign * tick * self.slippage_ticks
            fee = row.instrument.fee_per_side * abs(qty)
            fill_row = ReplayRow(row.at, "fill", row.instrument, row.price, side, abs(qty), fee, row.line)
            self._book(fill_row, abs(qty), fee, price=price, tag="tterm")
            a.fills.append((row.at, sym, qty, price, money(fee)))
            del a.orders[i]
            break
        if a.done:
            a.filled_at = row.at
            self.open_action = None
            self._after_fill = a

    # ================================================================== the tick

    def _assess(self, at: datetime) -> None:
        r = self.result
        balance, equity, fees = self._money()
        prev = self.last
        x = self.tracker.update(balance, equity, exit_fees=fees, at=at)
        self.last = x
        self._note_floor(at, "intraday peak" if x.floor_moved else "")
        if r.closest is None or x.floor_distance < r.closest:
            r.closest, r.closest_at = x.floor_distance, at
        open_pos = self.book.open_positions(ACCOUNT)
        if x.day_pnl - fees < 0:
            r.areas.add("daily_loss")
        if open_pos and self.session_close is not None and at >= self.session_close - _LATE:
            r.areas.add("session")
        if open_pos and self._near_news(at):
            r.areas.add("news")
        done = self._after_fill
        if done is not None:
            self._after_fill = None
            done.pnl_after = money(x.liquidation - r.start_balance)
            done.above_floor = x.floor_distance
        pnl = money(x.liquidation - r.start_balance)
        for b in x.breaches:
            if not b.firm:
                if (b.key, self.day) not in self.seen:
                    self.seen.add((b.key, self.day))
                    if self.protect:
                        self._flatten(at, b.key, b.text, locks=True)
                    else:
                        r.tterm.append(Event(at, b.key, b.text, pnl))
                continue
            if self.protect:
                self._gap(at, b.rule, prev, x)
            if b.rule == "floor" or (b.rule == "dll" and self.profile.daily_loss.action is DllAction.FAIL):
                if r.failed is None:
                    r.failed = Event(at, b.rule, b.text, pnl)
                    return
            elif self.blocked_date != self.day:
                self.blocked_date = self.day
                r.soft.append(Event(at, "dll", f"{b.text}: {self.tracker.describe_dll_action()}", pnl))
                if self.protect:
                    self._flatten(at, "dll", b.text, locks=True)
        cap = self.tracker.contracts_max
        if cap is not None and open_pos:
            used = contracts_in_use(self.profile, open_pos, self.instruments)
            if used > cap and ("tier", self.day) not in self.seen:
                self.seen.add(("tier", self.day))
                r.soft.append(Event(at, "tier", f"{used.normalize():f} contracts open; the tier allows {cap}"))
        if self.personal is not None:
            self._assess_personal(at, x, open_pos)

    def _assess_personal(self, at: datetime, x: Assessment, open_pos: list) -> None:
        assert self.personal is not None
        sod = self.st.sod_balance if self.st.sod_balance is not None else self.st.start_balance
        realized = x.balance - sod
        per = []
        for p in open_pos:
            inst = self.instruments.resolve(p.symbol)
            per.append((p.symbol, p.unrealized_pnl - abs(p.quantity) * inst.fee_per_side))
        pa = self.personal.update(x.liquidation - sod, realized, per)
        for b in pa.breaches:
            if (b.rule + b.symbol, self.day) in self.seen:
                continue
            self.seen.add((b.rule + b.symbol, self.day))
            how = self.personal.action_for(b)
            if how == "position":
                self._flatten(at, b.rule, b.text, locks=False, symbols={b.symbol})
            else:
                self._flatten(at, b.rule, b.text, locks=how == "liquidate_block")
        for w in pa.warnings:
            if ("yours_warn", self.day) not in self.seen:
                self.seen.add(("yours_warn", self.day))
                self.result.warnings.append(Event(at, "yours_dll", w))

    def _gap(self, at: datetime, rule: str, prev: Assessment | None, x: Assessment) -> None:
        """One mark went from above tterm's line through the firm's: say so."""
        if prev is None:
            return
        if rule == "floor":
            line, was, now, firm = x.floor_trigger, prev.liquidation, x.liquidation, x.floor
            what = "equity net of fees"
        else:
            if x.dll_trigger is None or prev.dll_trigger is None or x.dll is None:
                return
            sod = self.st.sod_balance if self.st.sod_balance is not None else self.st.start_balance
            line, was, now, firm = x.dll_trigger, prev.liquidation - sod, x.liquidation - sod, -x.dll
            what = "day P&L net of fees"
        if was <= line:
            return  # tterm's line had been reached before: not a gap
        self.result.gaps.append(
            Event(
                at,
                rule,
                f"one mark took {what} from {fmt_money(was)} to {fmt_money(now)}: through tterm's line at "
                f"{fmt_money(line)} and the firm's at {fmt_money(firm)} at once; tterm's line was skipped by the gap",
            )
        )
