"""The option chain screen (``chain AAPL``, key ``n`` on the watchlist) and its multi-leg ticket.

The chain comes from ``EngineClient.option_chain`` (the broker's Greeks, or Black-Scholes ones
labelled computed), one expiry at a time; ``[``/``]`` step expiries. The options shown and the
underlying stream quotes while the screen is open, and the chain is fetched again every
:data:`REFRESH_SECONDS` for IV, Greeks and open interest. Legs are picked at the cursor (``b`` /
``s``), built by :mod:`tterm.core.strategy` (``v`` vertical, ``d`` straddle, ``g`` strangle, ``i``
iron condor) or typed as an option symbol (``a``). The ticket shows the legs' markets, the net
(natural, mid and the limit sent), debit or credit, maximum profit and loss in dollars and the
breakevens; ``enter`` sends it as one multi-leg order through the ticket's path (pre-trade
preview, confirmation, place). What cannot be sent (one leg, an expired series, a net price off
the penny grid, an option symbol that does not parse) is refused in the ticket with the reason.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import Footer, Static

import tterm.core.strategy as st
from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    AccountKind,
    ModelError,
    OptionChain,
    Order,
    OrderSource,
    OrderStatus,
    Quote,
    Side,
)
from tterm.tui import format as fmt
from tterm.tui.messages import SubmitOrder
from tterm.tui.modals.prompt import Prompt
from tterm.tui.screens.market import MarketScreen
from tterm.tui.widgets.chain_table import ChainTable

REFRESH_SECONDS = 15.0
"""The chain (IV, Greeks, open interest) is fetched again this often; quotes stream between."""


class StrategyTicket(Static):
    """The multi-leg ticket under the chain: legs, net, risk and what happened to the last send."""

    DEFAULT_CSS = """
    StrategyTicket { height: auto; max-height: 12; border-top: solid $border-blurred; padding: 0 1;
                     background: $surface; }
    """


class ChainScreen(MarketScreen):
    """Calls and puts of one expiry, and a ticket that sends what is picked as one order."""

    DEFAULT_CSS = """
    ChainScreen ChainTable { height: 1fr; }
    """

    def __init__(self, *args: Any, expiry: date | None = None, account: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expiry = expiry
        self.account = account
        self.chain: OptionChain | None = None
        self.legs: tuple[st.Leg, ...] = ()
        self.quantity = 1
        self.net: Decimal | None = None  # the limit; None with ``market`` True is a market order
        self.market = False
        self.status = ""
        self.status_error = False
        self.sent: dict[str, str] = {}  # client order id -> description, to follow what was sent
        self.orders: dict[str, Order] = {}
        self._streaming: list[str] = []
        self._refreshed = 0.0
        self.title = f"chain {self.instrument.symbol}"

    @property
    def table(self) -> ChainTable:
        return self.query_one(ChainTable)

    @property
    def ticket(self) -> StrategyTicket:
        return self.query_one(StrategyTicket)

    def compose(self) -> ComposeResult:
        yield ChainTable(id="chain")
        yield StrategyTicket(id="strategy-ticket")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.table.focus()
        self._show_ticket()

    # ------------------------------------------------------------------ loading and streaming

    async def start(self) -> None:
        await self.load(self.expiry)

    async def load(self, expiry: date | None) -> bool:
        """Fetch one expiry's chain and stream its options; a refusal keeps what is shown."""
        try:
            chain = await self.engine.option_chain(self.instrument.symbol, expiry)
        except (EngineError, UnknownSymbol, ModelError) as exc:
            message = f"option chain of {self.instrument.symbol}: {exc}"
            self.table.say(message)
            self.notify(message, severity="error", timeout=10)
            return False
        chain = st.with_computed_greeks(chain, self.now())  # where the broker sent none, labelled
        first = self.chain is None or chain.expiry != self.chain.expiry
        self.chain = chain
        self.expiry = chain.expiry
        self._refreshed = time.monotonic()
        # The configured strikes either side of the money, or as many as the screen has rows for.
        self.table.show(chain, max(self.settings.chain_strikes, (self.table.size.height - 2) // 2))
        self.table.set_legs(self._leg_marks())
        if first:
            await self._stream([self.instrument.symbol, *self.table.symbols])
        self._show_ticket()
        return True

    async def _stream(self, symbols: list[str]) -> None:
        old, self._streaming = self._streaming, []
        try:
            if symbols:
                await self.engine.subscribe(symbols)
                self._streaming = symbols
        except (EngineError, UnknownSymbol, ModelError) as exc:
            self.table.say(f"no live quotes: {exc}")
        if old:
            await self.engine.unsubscribe(old)

    async def stop(self) -> None:
        if self._streaming:
            symbols, self._streaming = self._streaming, []
            await self.engine.unsubscribe(symbols)

    def apply(self, events: list[Any]) -> None:
        table = self.table
        changed = False
        for ev in events:
            t = type(ev)
            if t is Quote:
                if table.update_quote(ev):
                    changed = True
            elif t is Order and ev.client_order_id in self.sent:
                self.orders[ev.client_order_id] = ev
                self._follow(ev)
        if changed and self.legs:
            self.legs = tuple(leg.priced(table.quote_of(leg.symbol)) for leg in self.legs)
            self._show_ticket()
        if self.chain is not None and time.monotonic() - self._refreshed > REFRESH_SECONDS:
            self._refreshed = time.monotonic()
            self.run_worker(self.load(self.expiry), group="chain-load", exclusive=True, exit_on_error=False)

    def _follow(self, order: Order) -> None:
        what = self.sent[order.client_order_id]
        if order.status is OrderStatus.REJECTED:
            self._say(f"REJECTED {what}: {order.reject_reason}", error=True)
        elif order.status is OrderStatus.FILLED:
            avg = f" at {fmt.price(order.avg_fill_price)} net" if order.avg_fill_price is not None else ""
            self._say(f"FILLED {what}{avg}")
        else:
            self._say(f"{order.status.value.replace('_', ' ')}: {what} ({order.order_id})")

    # ------------------------------------------------------------------ keys (bindings on the table)

    @on(ChainTable.Moved)
    def _moved(self, event: ChainTable.Moved) -> None:
        event.stop()

    def action_expiry(self, step: int) -> None:
        chain = self.chain
        if chain is None:
            return
        i = chain.expiries.index(chain.expiry) + step if chain.expiry in chain.expiries else 0
        if not 0 <= i < len(chain.expiries):
            self._say("no " + ("later" if step > 0 else "earlier") + " expiry", error=True)
            return
        self.table.say(f"loading {chain.expiries[i]:%Y-%m-%d}…")
        self.run_worker(self.load(chain.expiries[i]), group="chain-load", exclusive=True, exit_on_error=False)

    def action_leg(self, side: str) -> None:
        q = self.table.quote_at()
        if q is None:
            self._say("no option at the cursor", error=True)
            return
        self._set_legs(lambda: st.add_leg(self.legs, st.leg_of(q, Side(side))))

    def action_build(self, kind: str) -> None:
        chain, strike = self.chain, self.table.current_strike
        if chain is None or strike is None:
            self._say("no chain yet", error=True)
            return
        builders = {
            "vertical": lambda: st.vertical(chain, strike, self.table.right),
            "straddle": lambda: st.straddle(chain, strike),
            "strangle": lambda: st.strangle(chain, strike),
            "iron_condor": lambda: st.iron_condor(chain, strike),
        }
        self._set_legs(lambda: tuple(leg.priced(self.table.quote_of(leg.symbol)) for leg in builders[kind]()))

    def action_flip(self) -> None:
        self._set_legs(lambda: tuple(leg.flipped() for leg in self.legs))

    def action_remove_leg(self) -> None:
        self._set_legs(lambda: self.legs[:-1])

    def action_clear_legs(self) -> None:
        self._set_legs(lambda: ())

    def action_quantity(self, step: int) -> None:
        self.quantity = max(1, min(10_000, self.quantity + step))
        self._show_ticket()

    def action_price(self, step: int) -> None:
        if not self.legs:
            return
        if self.market or self.net is None:
            self.market = False
            self.net = self._default_net()
            if self.net is None:
                self._say("the legs have no market to price from: type a price (p)", error=True)
                return
        self.net = self.net + step * st.NET_TICK
        if self.net == 0:
            self.net += step * st.NET_TICK  # zero is neither a debit nor a credit: step across it
        self._show_ticket()

    def action_type_price(self) -> None:
        self._ask_price()

    def action_add_symbol(self) -> None:
        self._ask_leg()

    def action_send(self) -> None:
        try:
            request = self.build_request()
        except st.StrategyError as exc:
            self._say(f"not sent: {exc}", error=True)
            self.notify(f"not sent: {exc}", severity="error", timeout=10)
            return
        self.sent[request.client_order_id] = request.symbol
        self._say(f"reviewing: {request.describe(lambda v: fmt.price(v))}")
        self.post_message(SubmitOrder(request))

    # ------------------------------------------------------------------ prompts

    @work(group="chain-prompt", exit_on_error=False)
    async def _ask_price(self) -> None:
        text = await self.app.push_screen_wait(
            Prompt("Net price per unit", placeholder="1.25 (debit), -0.80 (credit), mkt",
                   hint="a positive price is paid, a negative one received; enter sets it, escape cancels")
        )  # fmt: skip
        if text is None:
            return
        if text.lower() in ("mkt", "market", "m"):
            self.market, self.net = True, None
            self._show_ticket()
            return
        try:
            value = Decimal(text)
        except InvalidOperation:
            self._say(f"{text!r} is not a price", error=True)
            return
        try:
            st.check_net_price(value)
        except st.StrategyError as exc:
            self._say(str(exc), error=True)
            return
        self.market, self.net = False, value
        self._show_ticket()

    @work(group="chain-prompt", exit_on_error=False)
    async def _ask_leg(self) -> None:
        text = await self.app.push_screen_wait(
            Prompt("Add a leg by option symbol", placeholder="buy AAPL  261218C00200000 [ratio]",
                   hint="buy or sell, the OCC symbol (padding optional), an optional ratio")
        )  # fmt: skip
        if text:
            self.add_leg_text(text)

    def add_leg_text(self, text: str) -> bool:
        """``buy|sell SYMBOL [RATIO]``: the leg, or the reason it cannot be one (nothing changes)."""
        words = text.split()
        if len(words) < 2 or words[0].lower() not in ("buy", "b", "sell", "s"):
            self._say(f"write 'buy SYMBOL [ratio]' or 'sell SYMBOL [ratio]', not {text!r}", error=True)
            return False
        side = Side.BUY if words[0].lower() in ("buy", "b") else Side.SELL
        ratio = 1
        if len(words) > 2 and words[-1].isdigit():
            ratio = int(words[-1])
            words = words[:-1]
        raw = " ".join(words[1:])
        try:
            st.parse_option_symbol(raw)
            inst = self.engine.instrument(raw)
            leg = st.Leg(inst, side, ratio).priced(self.table.quote_of(inst.symbol))
            st.check_live([leg], self._today())
        except (st.StrategyError, UnknownSymbol, ModelError) as exc:
            self._say(f"leg refused: {exc}", error=True)
            return False
        return self._set_legs(lambda: st.add_leg(self.legs, leg))

    # ------------------------------------------------------------------ the ticket

    def _set_legs(self, make: Any) -> bool:
        try:
            legs = make()
        except st.StrategyError as exc:
            self._say(str(exc), error=True)
            return False
        self.legs = tuple(legs)
        self.market = False
        self.net = self._default_net()
        self.status, self.status_error = "", False
        self.table.set_legs(self._leg_marks())
        self._show_ticket()
        return True

    def _leg_marks(self) -> dict[str, int]:
        return {leg.symbol: leg.side.sign * leg.ratio for leg in self.legs}

    def _default_net(self) -> Decimal | None:
        """The mid, on the penny grid toward paying (a debit up, a credit down); else the natural."""
        if len(self.legs) < 2:
            return None
        net = st.mid(self.legs)
        if net is None:
            net = st.natural(self.legs)
        if net is None:
            return None
        net = st.on_grid(net, toward="pay")
        return net if net != 0 else st.NET_TICK

    def _today(self) -> date:
        now = self.now()
        return now.astimezone(self.tz).date() if self.tz is not None else now.date()

    def account_for(self) -> str | None:
        """The account the ticket trades: the current one, unless it cannot hold options (then the
        first that can)."""
        accounts = self.state.accounts
        current = getattr(self.app, "account", None) or self.account
        acct = accounts.get(current) if current else None
        if acct is not None and acct.kind is not AccountKind.FUTURES:
            return acct.id
        other = next((a for a in accounts.values() if a.kind is not AccountKind.FUTURES), None)
        return other.id if other is not None else current

    def build_request(self) -> Any:
        account = self.account_for()
        if account is None:
            raise st.StrategyError("no account yet: the engine has not reported any")
        st.check_legs(self.legs)
        if self.market:
            net = None
        elif self.net is None:
            raise st.StrategyError("no net price: the legs have no market; type one (p) or send at market (p, mkt)")
        else:
            net = self.net
        return st.build_request(account, self.legs, self.quantity, net, today=self._today(), source=OrderSource.TICKET)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status, self.status_error = text, error
        self._show_ticket()

    def _show_ticket(self) -> None:
        if not self.is_mounted:
            return
        self.ticket.update(self.render_ticket())

    def render_ticket(self) -> Text:
        out = Text()
        legs = self.legs
        account = self.account_for()
        acct = self.state.accounts.get(account) if account else None
        if not legs:
            out.append("Multi-leg ticket: ", style="bold")
            out.append("b/s add a leg at the cursor · v vertical · d straddle · g strangle · i iron condor · "
                       "a by symbol", style="dim")  # fmt: skip
        else:
            out.append(f"{st.kind_of(legs).upper()}  ", style="bold")
            out.append(f"{self.quantity} × {st.name_of(legs)}  in {acct.name if acct else account}\n")
            for leg in legs:
                tone = "bold green" if leg.side is Side.BUY else "bold red"
                out.append(f"  {leg.side.value.upper():<4} {leg.ratio}× ", style=tone)
                out.append(f"{leg.symbol:<22} bid {fmt.price(leg.bid)}  ask {fmt.price(leg.ask)}\n")
            nat, mid = st.natural(legs), st.mid(legs)
            out.append(f"  natural {_net(nat)}  mid {_net(mid)}  ", style="dim")
            if self.market:
                out.append("MARKET", style="bold")
            elif self.net is not None:
                out.append(f"limit {_net(self.net)}", style="bold")
                try:
                    a = st.analyse(legs, self.net)
                except st.StrategyError as exc:
                    out.append(f"  {exc}", style="bold red")
                else:
                    q = self.quantity
                    out.append(f" = {fmt.money(abs(a.net) * a.multiplier * q)} {a.effect.value}\n")
                    profit = "unlimited" if a.max_profit is None else fmt.money(a.money(a.max_profit, q))
                    loss = "unlimited" if a.max_loss is None else fmt.money(a.money(a.max_loss, q))
                    bes = ", ".join(fmt.price(b) for b in a.breakevens) or fmt.DASH
                    out.append(f"  max profit {profit}  max loss {loss}  breakeven {bes}")
            out.append("\n  ⏎ send · ,/. price · p type it · +/- qty · r reverse · x drop · c clear", style="dim")
        if self.status:
            out.append("\n" + self.status, style="bold red" if self.status_error else "bold")
        return out


def _net(value: Decimal | None) -> str:
    if value is None:
        return fmt.DASH
    return f"{abs(value):.2f} {'debit' if value > 0 else 'credit' if value < 0 else 'even'}"


__all__ = ["ChainScreen", "StrategyTicket"]
