"""The live risk monitor: every account's distance to breach, and tterm's flatten ahead of the firm's.

The monitor is an engine processor: it sees every event as it is ingested. For each account with
a rule profile it keeps a :class:`~tterm.risk.rules.RiskTracker` and, on every event that can move
the account — a new mark of a held symbol, a fill, an order opening or ending, the balance report
that starts its tracking — (and once a second from a timer, so the cutoff and the end-of-day
snapshot happen on a quiet market too):

1. turns the trade date at the session open (day P&L resets, the next contract tier applies);
2. takes the end-of-day snapshot at the profile's snapshot time (the ``eod`` level moves);
3. moves the intraday levels and measures the floor and the daily limit against equity net of
   fees (open positions valued at the marks, less the fees to close them);
4. when tterm's buffer ahead of a firm line is reached, or the flat-by cutoff less the lead comes
   with positions or orders open, it cancels working orders, flattens, and locks the account for
   the session, journaling each step with the numbers that triggered it;
5. publishes a :class:`~tterm.core.models.RiskStatus` for the meters and refreshes the
   :class:`~tterm.risk.pretrade.RiskView` the pre-trade checks read.

Every account, with or without a profile, also goes through :class:`~tterm.risk.guard.Guards`:
your own limits (``[risk.accounts]``: daily loss fixed or trailing, profit lock-in, trades per
day, most per trade), the news windows of the firm's rule and yours (flatten ahead of a
``flatten`` window, refuse entries inside one), and the hedging rule across every account in the
engine. Rule files edited while tterm runs are picked up within seconds (``RuleFiles``); a file
with a problem is reported with the file, the key and the reason, and the rules in force stay.

Balance here is the start-of-day balance plus the book's realized P&L net of fees; the
start-of-day balance comes from the broker when a day starts with tterm not running, and from
tterm's own running balance when it turns the day itself.

State that must survive a restart (high-water mark, floor, start-of-day balance, tier, the day's
enforcement and the tighter limits in force today) lives in the journal's state table, written
whenever it changes, so a restart changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tterm.core.clock import CT, ClockError, CmeClock
from tterm.core.models import (
    AccountLock,
    AccountSnapshot,
    Fill,
    Notice,
    NoticeLevel,
    Order,
    Quote,
    RiskStatus,
)
from tterm.risk.actions import Flattener, GuardActor
from tterm.risk.caveats import sentence
from tterm.risk.guard import Guards
from tterm.risk.meter import firm_status, status_sig
from tterm.risk.monitor_state import STATE_KEY, DayLimits, TrackedAccount, restore, tighter_min
from tterm.risk.news import NewsCalendar, load_calendar
from tterm.risk.pretrade import RiskView, risk_checks
from tterm.risk.profiles import CutoffAction, DllAction, Profile, ProfileIncomplete, ProfileSet, UnknownProfile
from tterm.risk.reload import Outcome, RuleFiles
from tterm.risk.rules import Assessment, RiskTracker, contracts_in_use, money
from tterm.risk.settings import RiskSettings

if TYPE_CHECKING:
    from tterm.core.engine import Engine

log = logging.getLogger(__name__)

ZERO = Decimal(0)


class RiskError(Exception):
    """A risk command that is refused (loosening a limit before the next session, unknown account)."""


class RiskMonitor:
    """Watches every account with a profile; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        profiles: ProfileSet,
        settings: RiskSettings | None = None,
        clock: CmeClock | None = None,
        tick_interval: float = 1.0,
        calendar: NewsCalendar | None = None,
        files: RuleFiles | None = None,
        poll_files_every: float = 2.0,
    ) -> None:
        clock = clock or engine.clock
        if clock is None:
            raise RiskError("the risk monitor needs the engine's exchange clock")
        self.engine = engine
        self.clock = clock
        self.profiles = profiles
        self.settings = settings or RiskSettings()
        self._tick_interval = tick_interval
        self._accounts: dict[str, TrackedAccount] = {}
        self._views: dict[str, RiskView] = {}
        self._statuses: dict[str, RiskStatus] = {}
        self._pending: dict[str, RiskStatus] = {}
        self._pending_notices: list[Notice] = []
        self._flush_scheduled = False
        #: Accounts whose profile cannot be enforced, and why (shown on their meter).
        self._no_profile: dict[str, str] = {}
        self._timer: asyncio.Task[None] | None = None
        self._stopped = False
        self._cutoffs: dict[tuple[str, date, Decimal], tuple[datetime | None, datetime | None, datetime | None]] = {}
        #: The last mark seen per symbol, and the open orders seen (see _on_event).
        self._marks: dict[str, Decimal] = {}
        self._open: set[tuple[str, str]] = set()
        self.flattener = Flattener(engine)
        self.guards = Guards(
            settings=self.settings,
            journal=engine.journal,
            calendar=calendar if calendar is not None else load_calendar(user=False),
            profile_of=self._profile_of,
            lead_minutes=self.settings.cutoff_lead_minutes,
        )
        self.actor = GuardActor(
            engine,
            self.flattener,
            self.guards,
            notice=self._notice,
            reevaluate=lambda acct: self._soon(lambda: self.evaluate(acct)),
            retry_seconds=self.settings.retry_flatten_seconds,
        )
        self.files = files
        if files is not None:
            files.mark()
        self._poll_every = timedelta(seconds=poll_files_every)
        self._polled_at: datetime | None = None
        self.checks = risk_checks(
            self.view,
            self.settings,
            engine.instruments,
            guards=self.guards.view,
            calendar=lambda: self.guards.calendar,
            positions=self._all_positions,
        )

    # ================================================================== wiring

    def attach(self) -> RiskMonitor:
        """Register as an engine processor and add the pre-trade checks to its router."""
        self.engine.processors.append(self.on_event)
        for check in self.checks:
            self.engine.router.add_check(check)
        return self

    def view(self, account: str) -> RiskView | None:
        """The account's limits as of the last tick (what the pre-trade checks read)."""
        return self._views.get(account)

    def status(self, account: str) -> RiskStatus | None:
        return self._statuses.get(account)

    def tracker(self, account: str) -> RiskTracker | None:
        a = self._accounts.get(account)
        return a.tracker if a else None

    async def settle(self) -> None:
        """Publish what is queued and wait for every flatten in flight (tests, one-shot commands)."""
        for _ in range(100):
            self.flush()
            running = [a.task for a in self._accounts.values() if a.task is not None and not a.task.done()]
            running += self.flattener.running()
            if not running:
                break
            await asyncio.gather(*running, return_exceptions=True)
        self.flush()

    async def close(self) -> None:
        """Stop the timer and wait for any flatten in flight."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        for a in self._accounts.values():
            if a.task is not None and not a.task.done():
                with contextlib.suppress(Exception):
                    await a.task
        for task in self.flattener.running():
            with contextlib.suppress(Exception):
                await task

    # ================================================================== events

    def on_event(self, event: Any) -> None:
        """The engine processor: re-evaluate the accounts an event can move.

        A fault here is journaled and shown, never raised: it must not stop the engine from
        publishing the event.
        """
        try:
            self._on_event(event)
        except Exception as exc:
            log.exception("risk monitor failed on %r", event)
            self.engine.journal.record("error", {"action": "risk_monitor", "error": repr(exc)})
            self._notice("error", f"risk monitor error: {exc}; check the journal")

    def _on_event(self, event: Any) -> None:
        # Only events that can move an assessment re-evaluate; one that cannot leaves the account
        # exactly as a quiet market would, and the timer still ticks every second for the clock's
        # sake (cutoff, end-of-day snapshot, the day's turn).
        kind = type(event)
        if kind is Quote:
            # A quote moves nothing but the mark the book values positions at: the same mark
            # again (a size or bid/ask change under the same last) or none changes no figure.
            mark = event.mark
            if mark is not None and self._marks.get(event.symbol) != mark:
                self._marks[event.symbol] = mark
                for account in self.engine.book.accounts_holding(event.symbol):
                    self.evaluate(account)
        elif kind is Fill:
            a = self._accounts.get(event.account)
            if a is not None:
                a.last_symbol = event.symbol
            self.guards.on_fill(event, self.engine.book.quantity(event.account, event.symbol))
            self.evaluate(event.account)
        elif kind is Order:
            # Open orders count only as exposure (any open order or none): an update of an order
            # already open (working, partly filled, modified) cannot change that; a new open
            # order or one that ends can.
            key = (event.account, event.order_id)
            if event.is_open:
                if key not in self._open:
                    self._open.add(key)
                    self.evaluate(event.account)
            else:
                self._open.discard(key)
                self.evaluate(event.account)
        elif kind is AccountSnapshot:
            # The broker's balance is read when an account's tracking starts (and for accounts
            # without a profile); once tracked, the balance is tterm's own and a report changes
            # nothing.
            if event.account not in self._accounts:
                self.evaluate(event.account)
        elif kind is Notice and event.source == "engine" and event.text == "new trading day":
            # The engine reset the book's realized P&L for the new day.
            for a in self._accounts.values():
                a.realized_base = ZERO
            self.tick()
        elif kind is AccountLock:
            # Never evaluate inside the engine's day turn (the book may be mid-reset): refresh soon.
            self._soon(lambda acct=event.account: self.evaluate(acct))
        self._ensure_timer()

    def tick(self, now: datetime | None = None) -> None:
        """Evaluate every account (the timer calls this; tests call it with a chosen instant)."""
        for account in [a.id for a in self.engine.accounts]:
            self.evaluate(account, now)

    # ================================================================== evaluation

    def evaluate(self, account_id: str, now: datetime | None = None) -> Assessment | None:
        """Bring one account up to date; returns its assessment (None without a profile)."""
        acct = self.engine.account(account_id)
        if acct is None:
            return None
        now = now or self.clock.now()
        if not acct.profile:
            self._plain_status(account_id, now)
            return None
        try:
            profile = self.profiles.get(acct.profile)
        except UnknownProfile as exc:
            if account_id not in self._no_profile:
                self._no_profile[account_id] = "unknown rule profile"
                self._notice("error", f"{account_id}: {exc}; no firm rules are enforced on it", account_id)
            self._plain_status(account_id, now)
            return None
        if not profile.enforceable:
            if account_id not in self._no_profile:
                self._no_profile[account_id] = f"{profile.id}: drawdown amount unknown, not enforced"
                try:
                    profile.require_enforceable()
                except ProfileIncomplete as exc:
                    self._notice("error", f"{account_id}: {exc}; no firm rules are enforced on it", account_id)
            self._plain_status(account_id, now)
            return None
        a = self._accounts.get(account_id)
        if a is None or a.profile.id != profile.id:
            if self.engine.balance(account_id) is None and not self.engine.journal.get_state(
                STATE_KEY.format(account=account_id)
            ):
                # Never guess a new account's balance: wait for the broker's first report.
                return None
            a = self._load(account_id, profile)
        trade_date = self.clock.trade_date(now)
        self._turn_day(a, trade_date, now)
        st = a.tracker.state
        pnl = self.engine.book.pnl(account_id)
        assert st.sod_balance is not None
        balance = st.sod_balance + pnl.realized_net - a.realized_base
        equity = balance + pnl.unrealized
        positions = self.engine.positions(account_id)
        snap_at = self._snapshot_at(a.profile, trade_date)
        if snap_at is not None and now >= snap_at and st.eod_date != trade_date:
            a.tracker.end_of_day(trade_date, balance)
        exit_fees = ZERO
        for p in positions:
            exit_fees += abs(p.quantity) * self.engine.instruments.resolve(p.symbol).fee_per_side
        assessment = a.tracker.update(balance, equity, exit_fees=exit_fees, at=now)
        assert a.limits is not None
        cutoff_at, flatten_at, window_end = self._cutoff(a.profile, trade_date, a.limits.cutoff_lead)
        a.evaluated = True
        orders = self.engine.open_orders(account_id)
        exposed = bool(positions or orders)

        breach = next((b for b in assessment.breaches if b.firm), None) or (
            assessment.breaches[0] if assessment.breaches else None
        )
        if breach is not None:
            self._enforce(a, breach.key, breach.text, assessment, now, trade_date, exposed, breach.firm)
        elif flatten_at is not None and flatten_at <= now and (window_end is None or now < window_end) and exposed:
            assert cutoff_at is not None
            sess = a.profile.session
            what = "flattens open positions" if sess.auto_flatten == sess.cutoff else "requires flat"
            if sess.flat_by_action is CutoffAction.FAIL:
                what = "fails an account still holding a position"
            reason = (
                f"flat-by cutoff: {a.profile.firm} {what} by {cutoff_at.astimezone(CT):%H:%M} CT; "
                f"tterm flattens {a.limits.cutoff_lead.normalize():f} min ahead, "
                f"at {flatten_at.astimezone(CT):%H:%M} CT"
            )
            self._enforce(a, "cutoff", reason, assessment, now, trade_date, exposed, False)
        elif a.enforcing and a.enforce_date == trade_date:
            self._retry_if_exposed(a, now, exposed)

        tier = a.tracker.contracts_max
        contracts_max = tighter_min(tier, a.limits.max_contracts)
        self._views[account_id] = RiskView(
            account=account_id,
            profile=a.profile,
            floor=assessment.floor,
            floor_distance=assessment.floor_distance,
            buffer=a.tracker.buffer,
            daily_loss_limit=assessment.dll,
            dll_distance=assessment.dll_distance,
            dll_buffer=ZERO if assessment.dll is None else money(assessment.dll * a.tracker.buffer_pct / 100),
            contracts_max=contracts_max,
            cutoff_at=cutoff_at,
            flatten_at=flatten_at,
            window_end=window_end,
            enforcing=a.enforcing if a.enforce_date == trade_date else "",
        )
        sod = st.sod_balance
        yours = self._guard(
            account_id,
            now,
            trade_date,
            day_net=assessment.liquidation - sod,
            realized_net=balance - sod,
            positions=positions,
            exposed=exposed,
            firm_enforcing=bool(a.enforcing and a.enforce_date == trade_date),
        )
        used = contracts_in_use(a.profile, positions, self.engine.instruments)
        self._publish_status(a, assessment, positions, used, contracts_max, cutoff_at, flatten_at, now, yours)
        self._persist(a, now)
        return assessment

    # ------------------------------------------------------------------ yours, news, hedging

    def _profile_of(self, account: str) -> Profile | None:
        """The enforceable firm profile of ``account`` (None without one)."""
        acct = self.engine.account(account)
        if acct is None or not acct.profile or acct.profile not in self.profiles:
            return None
        profile = self.profiles.get(acct.profile)
        return profile if profile.enforceable else None

    def _all_positions(self) -> list[Any]:
        """Every open position in the engine, for the hedging rule (only when someone forbids it)."""
        if not any(self.guards.no_hedging(a) for a in self.engine.account_ids()):
            return []
        return self.engine.book.open_positions()

    def _exit_fee(self, p: Any) -> Decimal:
        return abs(p.quantity) * self.engine.instruments.resolve(p.symbol).fee_per_side

    def _guard(
        self,
        account: str,
        now: datetime,
        trade_date: date,
        *,
        day_net: Decimal,
        realized_net: Decimal,
        positions: list[Any],
        exposed: bool,
        firm_enforcing: bool,
    ) -> dict[str, Any]:
        """Your limits and the news rules for one account: act on them, return the meter fields."""
        actions, fields = self.guards.evaluate(
            account,
            now,
            trade_date=trade_date,
            day_net=day_net,
            realized_net=realized_net,
            positions=positions,
            exit_fee=self._exit_fee,
            exposed=exposed,
        )
        for act in actions:
            self.actor.act(account, act, now, trade_date, exposed=exposed, firm_enforcing=firm_enforcing)
        return fields

    # ------------------------------------------------------------------ loading and the day

    def _load(self, account_id: str, profile: Profile) -> TrackedAccount:
        saved = self.engine.journal.get_state(STATE_KEY.format(account=account_id)) or {}
        if saved.get("profile") and saved.get("profile") != profile.id:
            self._notice(
                "warning",
                f"{account_id}: rule profile changed from {saved['profile']} to {profile.id}; "
                "tterm starts tracking its floor afresh",
                account_id,
            )
        seeds = self.settings.accounts.get(account_id)
        a, fresh = restore(account_id, profile, saved, self._broker_sod(account_id), self.settings)
        self._accounts[account_id] = a
        for item in profile.unknown:
            text = sentence(profile, "unknown", item)
            self._notice("warning", f"{account_id} ({profile.id}): {text}; set it in a user profile", account_id)
        state = a.tracker.state
        if fresh and state.high_water_mark > profile.start and seeds is None:
            self._notice(
                "warning",
                f"{account_id}: tterm starts tracking at a balance of ${state.high_water_mark:,}, above the "
                f"${profile.start:,} start; if the firm's floor is higher than ${state.floor:,}, seed it under "
                f'[risk.accounts."{account_id}"] floor',
                account_id,
            )
        return a

    def _broker_sod(self, account_id: str) -> Decimal | None:
        snap = self.engine.balance(account_id)
        if snap is None:
            return None
        if snap.start_of_day_balance is not None:
            return snap.start_of_day_balance
        return snap.balance - snap.day_realized_pnl

    def _turn_day(self, a: TrackedAccount, trade_date: date, now: datetime) -> None:
        st = a.tracker.state
        if st.trade_date != trade_date:
            if a.evaluated and st.last_balance is not None:
                # tterm ran through the close: the day starts at the balance it ended with, and the
                # book still holds yesterday's realized P&L until the engine turns its day.
                sod = st.last_balance
                a.realized_base = self.engine.book.pnl(a.id).realized_net
            else:
                broker = self._broker_sod(a.id)
                sod = broker if broker is not None else (st.last_balance or a.profile.start)
                a.realized_base = ZERO
            a.tracker.start_day(trade_date, sod)
        self._day_limits(a, trade_date)

    def _day_limits(self, a: TrackedAccount, trade_date: date) -> None:
        cfg = self.settings
        seeds = cfg.accounts.get(a.id)
        wanted = DayLimits(
            trade_date=trade_date,
            buffer_pct=cfg.buffer_pct,
            cutoff_lead=cfg.cutoff_lead_minutes,
            max_contracts=seeds.max_contracts if seeds else None,
        )
        cur = a.limits
        if cur is None or cur.trade_date != trade_date:
            a.limits = wanted
        else:
            # Same day: the config may only tighten what is in force.
            tighter = DayLimits(
                trade_date=trade_date,
                buffer_pct=max(cur.buffer_pct, wanted.buffer_pct),
                cutoff_lead=max(cur.cutoff_lead, wanted.cutoff_lead),
                max_contracts=tighter_min(cur.max_contracts, wanted.max_contracts),
            )
            if tighter != wanted and "looser" not in a.notices:
                a.notices.add("looser")
                self._notice(
                    "warning",
                    f"{a.id}: the [risk] settings are looser than the limits in force today; "
                    "the looser values apply from the next session",
                    a.id,
                )
            a.limits = tighter
        a.tracker.buffer_pct = a.limits.buffer_pct

    def tighten(
        self,
        account: str,
        *,
        daily_loss: Decimal | None = None,
        max_contracts: int | None = None,
        buffer_pct: Decimal | None = None,
    ) -> None:
        """Tighten today's limits of ``account``; loosening is refused until the next session.

        ``daily_loss`` is your own daily loss ("yours" on the meter), beside the firm's DLL.
        """
        a = self._accounts.get(account)
        if a is None or a.limits is None:
            raise RiskError(f"no rule profile is tracked on {account!r}")
        lim = a.limits
        problems = []
        if daily_loss is not None:
            current = self.guards.limits(account).daily_loss
            if daily_loss <= 0:
                problems.append("a daily loss limit must be above zero")
            elif current is not None and daily_loss > current:
                problems.append(f"daily loss ${daily_loss:,} is looser than ${current:,} in force today")
        if max_contracts is not None:
            current_max = tighter_min(a.tracker.contracts_max, lim.max_contracts)
            if max_contracts <= 0:
                problems.append("max contracts must be at least 1")
            elif current_max is not None and max_contracts > current_max:
                problems.append(f"max contracts {max_contracts} is looser than {current_max} in force today")
        if buffer_pct is not None and not lim.buffer_pct <= buffer_pct < 100:
            problems.append(f"buffer {buffer_pct}% must be between {lim.buffer_pct}% (today's) and 100%")
        if problems:
            raise RiskError(f"{account}: " + "; ".join(problems) + " (limits only loosen at the next session)")
        a.limits = DayLimits(
            trade_date=lim.trade_date,
            buffer_pct=buffer_pct if buffer_pct is not None else lim.buffer_pct,
            cutoff_lead=lim.cutoff_lead,
            max_contracts=tighter_min(lim.max_contracts, max_contracts),
        )
        a.tracker.buffer_pct = a.limits.buffer_pct
        yours = self.guards.tighten(account, daily_loss=daily_loss) if daily_loss is not None else None
        self.engine.journal.record(
            "notice",
            {
                "source": "risk",
                "event": "tighten",
                "limits": a.limits.to_json(),
                "yours_daily_loss": yours.daily_loss if yours is not None else None,
            },
            account=account,
            ref="risk",
        )
        self.evaluate(account)

    def _snapshot_at(self, profile: Profile, trade_date: date) -> datetime | None:
        session = self.clock.session(trade_date)
        if session is None:
            return None
        t = profile.drawdown.snapshot
        if t is None:
            return session.close
        return datetime.combine(trade_date, t, tzinfo=CT).astimezone(UTC)

    def _cutoff(
        self, profile: Profile, trade_date: date, lead_minutes: Decimal
    ) -> tuple[datetime | None, datetime | None, datetime | None]:
        key = (profile.id, trade_date, lead_minutes)
        hit = self._cutoffs.get(key)
        if hit is not None:
            return hit
        result: tuple[datetime | None, datetime | None, datetime | None] = (None, None, None)
        flat_by = profile.session.cutoff
        if flat_by is not None:
            try:
                cutoff_at = self.clock.cutoff(trade_date, flat_by)
            except ClockError:
                cutoff_at = None
            if cutoff_at is not None:
                flatten_at = cutoff_at - timedelta(minutes=float(lead_minutes))
                result = (cutoff_at, flatten_at, self.clock.next_open(cutoff_at))
        if len(self._cutoffs) > 1024:
            self._cutoffs.clear()
        self._cutoffs[key] = result
        return result

    # ------------------------------------------------------------------ enforcement

    def _enforce(
        self,
        a: TrackedAccount,
        rule: str,
        reason: str,
        x: Assessment,
        now: datetime,
        trade_date: date,
        exposed: bool,
        firm: bool,
    ) -> None:
        if a.enforcing and a.enforce_date == trade_date:
            self._retry_if_exposed(a, now, exposed)
            return
        a.enforcing = reason
        a.enforce_rule = rule
        a.enforce_date = trade_date
        a.enforced_at = now
        assert a.limits is not None
        numbers = {
            "source": "risk",
            "event": "auto_flatten",
            "rule": rule,
            "firm_line": firm,
            "reason": reason,
            "profile": a.profile.id,
            "trade_date": trade_date,
            "balance": x.balance,
            "equity": x.equity,
            "equity_net_of_fees": x.liquidation,
            "high_water_mark": x.high_water_mark,
            "floor": x.floor,
            "flatten_level": x.floor_trigger,
            "day_pnl": x.day_pnl,
            "daily_loss_limit": x.dll,
            "dll_flatten_level": x.dll_trigger,
            "buffer_pct": a.limits.buffer_pct,
            "cutoff_lead_minutes": a.limits.cutoff_lead,
            "positions": [
                {"symbol": p.symbol, "quantity": p.quantity, "avg_price": p.avg_price, "mark": p.mark}
                for p in self.engine.book.open_positions(a.id)
            ],
            "open_orders": [o.order_id for o in self.engine.open_orders(a.id)],
        }
        self.engine.journal.record("notice", numbers, account=a.id, ref="risk")
        if firm and rule == "dll" and a.profile.daily_loss.action is DllAction.FAIL:
            extra = " The firm fails the account on this rule."
        elif firm and rule == "floor":
            extra = " This is the firm's own line: the account has most likely failed."
        else:
            extra = ""
        self._notice(
            "error" if firm else "warning",
            f"{a.id}: tterm is flattening and locking the account — {reason}.{extra}",
            a.id,
        )
        self._persist(a, now, force=True)
        self._start_flatten(a, reason, exposed)

    def _retry_if_exposed(self, a: TrackedAccount, now: datetime, exposed: bool) -> None:
        """Flatten again if positions or orders reappear (a late fill) or a flatten failed."""
        if not exposed or (a.task is not None and not a.task.done()):
            return
        if a.enforced_at is not None and now - a.enforced_at < timedelta(seconds=self.settings.retry_flatten_seconds):
            return
        a.enforced_at = now
        self.engine.journal.record(
            "notice",
            {"source": "risk", "event": "auto_flatten_retry", "rule": a.enforce_rule, "reason": a.enforcing},
            account=a.id,
            ref="risk",
        )
        self._start_flatten(a, a.enforcing, True)

    def _start_flatten(self, a: TrackedAccount, reason: str, exposed: bool) -> None:
        """Cancel working orders, flatten, then lock for the session (the Flattener journals each step)."""
        a.task = self.flattener.start(a.id, reason, exposed=exposed, lock=True, then=lambda: self.evaluate(a.id))

    # ------------------------------------------------------------------ status for the meters

    def _plain_status(self, account_id: str, now: datetime) -> None:
        """Accounts without a profile still get balance, equity and day P&L on the meter."""
        snap = self.engine.balance(account_id)
        pnl = self.engine.book.pnl(account_id)
        if snap is None:
            return
        sod = self._broker_sod(account_id)
        assert sod is not None
        positions = self.engine.positions(account_id)
        exposed = bool(positions or self.engine.open_orders(account_id))
        exit_fees = sum((self._exit_fee(p) for p in positions), ZERO)
        yours = self._guard(
            account_id,
            now,
            self.clock.trade_date(now),
            day_net=pnl.realized_net + pnl.unrealized - exit_fees,
            realized_net=pnl.realized_net,
            positions=positions,
            exposed=exposed,
            firm_enforcing=False,
        )
        lock = self.engine.lock_for(account_id)
        status = RiskStatus(
            account=account_id,
            profile="",
            balance=money(sod + pnl.realized_net),
            equity=money(sod + pnl.realized_net + pnl.unrealized),
            day_pnl=money(pnl.realized_net + pnl.unrealized),
            locked=bool(lock and lock.locked),
            lock_reason=lock.reason if lock else "",
            detail=self._no_profile.get(account_id, "no rule profile"),
            ts=now,
            **yours,
        )
        self._queue(account_id, status)

    def _publish_status(
        self,
        a: TrackedAccount,
        x: Assessment,
        positions: list[Any],
        used: Decimal,
        contracts_max: int | None,
        cutoff_at: datetime | None,
        flatten_at: datetime | None,
        now: datetime,
        yours: dict[str, Any],
    ) -> None:
        enforcing = a.enforcing if a.enforcing and a.enforce_date == a.tracker.state.trade_date else ""
        status = firm_status(
            a.id,
            a.profile,
            a.tracker,
            x,
            instruments=self.engine.instruments,
            lock=self.engine.lock_for(a.id),
            positions=positions,
            last_symbol=a.last_symbol,
            used=used,
            contracts_max=contracts_max,
            cutoff_at=cutoff_at,
            flatten_at=flatten_at,
            enforcing=enforcing,
            now=now,
            yours=yours,
        )
        self._queue(a.id, status)

    def _queue(self, account: str, status: RiskStatus) -> None:
        sig = status_sig(status)
        prev = self._statuses.get(account)
        self._statuses[account] = status
        if prev is not None and status_sig(prev) == sig:
            return
        self._pending[account] = status
        self._schedule_flush()

    def _notice(self, level: NoticeLevel, text: str, account: str = "") -> None:
        notice = Notice(level=level, text=text, account=account, source="risk", ts=self.clock.now())
        self._pending_notices.append(notice)
        self._schedule_flush()

    def _soon(self, fn: Any) -> None:
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:
            fn()

    def _schedule_flush(self) -> None:
        """Publish outside the engine's ingest of the current event, so event order stays intact."""
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        self._soon(self.flush)

    def flush(self) -> None:
        """Ingest the queued notices and meter updates."""
        self._flush_scheduled = False
        notices, self._pending_notices = self._pending_notices, []
        pending, self._pending = self._pending, {}
        for n in notices:
            self.engine.ingest(n)
        for status in pending.values():
            self.engine.ingest(status)

    # ------------------------------------------------------------------ persistence

    def _persist(self, a: TrackedAccount, now: datetime, *, force: bool = False) -> None:
        if force or a.due(now):
            self.engine.journal.set_state(STATE_KEY.format(account=a.id), a.to_json())
            a.saved(now)

    # ------------------------------------------------------------------ timer

    def _ensure_timer(self) -> None:
        if self._stopped or (self._timer is not None and not self._timer.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.create_task(self._run(), name="risk-monitor")
        # The engine cancels its tasks on stop(); the timer belongs with them.
        tasks = getattr(self.engine, "_tasks", None)
        if isinstance(tasks, list):
            tasks.append(self._timer)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.sleep(self._tick_interval)
            except asyncio.CancelledError:
                # Cancelled with the engine's tasks on stop: never start again.
                self._stopped = True
                raise
            try:
                self.poll_files()
                self.tick()
            except Exception as exc:  # a bad tick must not stop the monitor
                log.exception("risk monitor tick failed")
                self.engine.journal.record("error", {"action": "risk_tick", "error": repr(exc)})

    # ------------------------------------------------------------------ rule files edited while running

    def poll_files(self, now: datetime | None = None, *, force: bool = False) -> None:
        """Pick up edited profile and calendar files (every few seconds, from the timer)."""
        if self.files is None:
            return
        now = now or self.clock.now()
        if not force and self._polled_at is not None and now - self._polled_at < self._poll_every:
            return
        self._polled_at = now
        profiles = self.files.profiles.poll()
        if profiles is not None:
            self._apply_profiles(profiles)
        calendar = self.files.calendar.poll()
        if calendar is not None:
            self._apply_calendar(calendar)

    def _apply_profiles(self, out: Outcome[ProfileSet]) -> None:
        if out.value is None:
            self._refuse_reload("rule profiles", out.error)
            return
        new = out.value
        problems = []
        for acct in self.engine.accounts:
            if not acct.profile or acct.profile not in self.profiles:
                continue
            if acct.profile not in new:
                problems.append(f"{acct.id}: its profile {acct.profile!r} would no longer be defined")
            elif self.profiles.get(acct.profile).enforceable and not new.get(acct.profile).enforceable:
                problems.append(f"{acct.id}: its profile {acct.profile} would lose its drawdown amount")
        if problems:
            self._refuse_reload("rule profiles", "\n".join(problems))
            return
        self.profiles = new
        for a in self._accounts.values():
            a.profile = new.get(a.profile.id)
            a.tracker.profile = a.profile
        self._cutoffs.clear()
        self._no_profile.clear()
        self.guards.refresh()
        self.engine.journal.record("notice", {"source": "risk", "event": "reload", "what": "rule profiles"})
        self._notice("info", f"rule profiles reloaded ({len(new)} profiles)")
        self.tick()

    def _apply_calendar(self, out: Outcome[NewsCalendar]) -> None:
        if out.value is None:
            self._refuse_reload("news calendar", out.error)
            return
        self.guards.calendar = out.value
        self.guards.refresh()
        self.engine.journal.record("notice", {"source": "risk", "event": "reload", "what": "news calendar"})
        self._notice("info", f"news calendar reloaded ({len(out.value)} releases)")
        self.tick()

    def _refuse_reload(self, what: str, error: str) -> None:
        self.engine.journal.record("error", {"action": "reload", "what": what, "error": error})
        self._notice("error", f"{what} not reloaded; the previous set stays in force:\n{error}")


def monitor_of(engine: Engine) -> RiskMonitor | None:
    """The risk monitor attached to ``engine``, if any (it registers as an engine processor)."""
    for processor in engine.processors:
        owner = getattr(processor, "__self__", None)
        if isinstance(owner, RiskMonitor):
            return owner
    return None
