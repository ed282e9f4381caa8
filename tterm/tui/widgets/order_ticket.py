"""The order ticket: every order field, validated as you type, with live bid/ask and the risk in $.

Sending never happens here: ``ctrl+s`` (or the button) builds an ``OrderRequest`` and posts
:class:`~tterm.tui.messages.SubmitOrder`; the app runs the confirmation dialog and the engine
call, exactly as it does for the palette, the command bar and the hotkeys.

Where the account's broker dry-runs orders, the status line shows its dry run of the ticket's
order (asked a moment after the last edit of an order that passes tterm's checks, see
:mod:`tterm.tui.dry_run`) in place of "passes the pre-trade checks"; the whole line is the
status's tooltip and the confirmation shows it in full. Other accounts show no dry run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from tterm.core.models import (
    Account,
    Bracket,
    Instrument,
    ModelError,
    OrderRequest,
    OrderSource,
    OrderType,
    Quote,
    RiskAction,
    RiskDecision,
    Side,
    TimeInForce,
)
from tterm.tui import dry_run
from tterm.tui import format as fmt
from tterm.tui.bridge import Bridge
from tterm.tui.estimate import estimate_risk
from tterm.tui.freshness import Freshness
from tterm.tui.keymap import bindings
from tterm.tui.messages import AccountChosen, SubmitOrder, SymbolChosen
from tterm.tui.presets import QuantityPresets

ORDER_TYPES = [("Market", OrderType.MARKET), ("Limit", OrderType.LIMIT), ("Stop", OrderType.STOP),
               ("Stop-limit", OrderType.STOP_LIMIT)]  # fmt: skip
TIFS = [(t.value.upper(), t) for t in TimeInForce]


class PriceInput(Input):
    """A price field that steps by the instrument's tick with the arrow keys (scope ``price``)."""

    BINDINGS = bindings("price")

    def __init__(self, *, id: str, placeholder: str = "") -> None:
        super().__init__(id=id, placeholder=placeholder, compact=True, restrict=r"[-0-9.]*")
        self.instrument: Instrument | None = None
        self.reference: Callable[[], Decimal | None] = lambda: None

    def action_tick(self, steps: int) -> None:
        inst = self.instrument
        if inst is None:
            self.notify("choose a symbol first: prices step by its tick", severity="warning")
            return
        try:
            current = Decimal(self.value) if self.value.strip() else None
        except InvalidOperation:
            current = None
        if current is None or not current.is_finite():
            start = self.reference()
            if start is None:
                self.notify(f"no market in {inst.symbol} yet to start from", severity="warning")
                return
            new = inst.round_price(start)
        else:
            new = inst.round_price(current) + steps * inst.tick_size
        self.value = fmt.price(new, inst).replace(",", "")
        self.cursor_position = len(self.value)


class OrderTicket(Vertical):
    """Account, symbol, side, quantity, type, prices, time in force and an optional bracket."""

    BINDINGS = bindings("ticket")
    #: The kinds of engine change this pane is fed (see tterm.tui.screens.trade).
    CONSUMES = frozenset({"quotes"})

    DEFAULT_CSS = """
    OrderTicket { height: auto; padding: 0 1; }
    OrderTicket .row { height: 1; }
    OrderTicket .lbl { width: 5; color: $text-muted; }
    OrderTicket .lbl2 { width: 5; color: $text-muted; padding-left: 1; }
    OrderTicket Input { width: 1fr; }
    OrderTicket Input.-invalid { color: $text-error; }
    OrderTicket Select { width: 1fr; }
    OrderTicket #t-account { width: 1fr; }
    OrderTicket #t-unit { width: 9; }
    OrderTicket #t-quote { width: 1fr; color: $text-muted; }
    OrderTicket #t-risk { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    OrderTicket #t-quote { text-wrap: nowrap; text-overflow: ellipsis; }
    OrderTicket #t-quote.-stale { color: $text-warning; }
    OrderTicket #t-status { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    OrderTicket #t-status.-error { color: $text-error; }
    OrderTicket #t-status.-warn { color: $text-warning; }
    OrderTicket #t-status.-ok { color: $text-success; }
    OrderTicket #t-send { width: 1fr; min-width: 10; height: 1; border: none; }
    OrderTicket #t-confirm { width: auto; padding-left: 1; color: $text-muted; }
    OrderTicket #t-confirm.-off { color: $text-warning; text-style: bold reverse; }
    """

    side: reactive[Side] = reactive(Side.BUY, init=False)

    def __init__(self, bridge: Bridge, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bridge = bridge
        self.instrument: Instrument | None = None
        self.symbol_error = ""
        self.quote: Quote | None = None
        self.account: str | None = None
        self.confirm_on = True
        self._preview_timer: Timer | None = None
        self._preview_seq = 0
        self.last_decision: RiskDecision | None = None
        #: The broker's dry run of the order the ticket shows (None: none asked or it is out of date).
        self.last_dry_run: dry_run.DryRun | None = None
        self._dry: dry_run.DryRun | None = None
        self._verdict: tuple[str, str] = ("", "")
        self.error = ""
        self.freshness: Freshness | None = None
        self.stale = False
        #: Quantity presets per asset class: a new symbol takes its class's current quantity.
        self.presets: QuantityPresets | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Acct", classes="lbl")
            yield Select([], id="t-account", compact=True, prompt="account")
        with Horizontal(classes="row"):
            yield Label("Sym", classes="lbl")
            yield Input(id="t-symbol", placeholder="MES, NQ1!, AAPL", compact=True)
        yield Static("", id="t-quote", classes="row")
        with Horizontal(classes="row"):
            yield Label("Side", classes="lbl")
            yield Select([("Buy", Side.BUY), ("Sell", Side.SELL)], value=Side.BUY, allow_blank=False,
                         id="t-side", compact=True)  # fmt: skip
            yield Label("Qty", classes="lbl2")
            yield Input("1", id="t-qty", type="integer", compact=True)
        with Horizontal(classes="row"):
            yield Label("Type", classes="lbl")
            yield Select(ORDER_TYPES, value=OrderType.MARKET, allow_blank=False, id="t-type", compact=True)
            yield Label("TIF", classes="lbl2")
            yield Select(TIFS, value=TimeInForce.DAY, allow_blank=False, id="t-tif", compact=True)
        with Horizontal(classes="row"):
            yield Label("Lmt", classes="lbl")
            yield PriceInput(id="t-limit", placeholder="limit")
            yield Label("Stp", classes="lbl2")
            yield PriceInput(id="t-stop", placeholder="stop")
        with Horizontal(classes="row"):
            yield Label("TP", classes="lbl")
            yield Input(id="t-tp", placeholder="—", compact=True)
            yield Label("SL", classes="lbl2")
            yield Input(id="t-sl", placeholder="—", compact=True)
            yield Select([("ticks", "ticks"), ("price", "price")], value="ticks", allow_blank=False, id="t-unit",
                         compact=True)  # fmt: skip
        yield Static("", id="t-risk")
        yield Static("", id="t-status")
        with Horizontal(classes="row"):
            yield Button("BUY", id="t-send", variant="success", compact=True)
            yield Static("", id="t-confirm")

    def on_mount(self) -> None:
        self.border_title = "Order ticket"
        for pid, ref in (("#t-limit", self._limit_reference), ("#t-stop", self._stop_reference)):
            self.query_one(pid, PriceInput).reference = ref
        self._sync_price_fields()
        self.revalidate()

    # ------------------------------------------------------------------ fields

    @property
    def order_type(self) -> OrderType:
        value = self.query_one("#t-type", Select).value
        return value if isinstance(value, OrderType) else OrderType.MARKET

    @property
    def quantity(self) -> int | None:
        """The ticket's quantity, or None when the field does not hold a valid one."""
        text = self.query_one("#t-qty", Input).value.strip()
        if not text.isdigit():
            return None
        qty = int(text)
        return qty if qty > 0 else None

    def _limit_reference(self) -> Decimal | None:
        q = self.quote
        if q is None:
            return None
        near = q.bid if self.side is Side.BUY else q.ask
        return near if near is not None else q.last

    def _stop_reference(self) -> Decimal | None:
        q = self.quote
        if q is None:
            return None
        far = q.ask if self.side is Side.BUY else q.bid
        return far if far is not None else q.last

    def set_accounts(self, accounts: list[Account], current: str | None) -> None:
        select = self.query_one("#t-account", Select)
        with select.prevent(Select.Changed):
            select.set_options([(a.name or a.id, a.id) for a in accounts])
            if current is not None and any(a.id == current for a in accounts):
                select.value = current
        self.account = current

    def set_account(self, account: str, confirm_on: bool) -> None:
        self.account = account
        self.confirm_on = confirm_on
        select = self.query_one("#t-account", Select)
        if select.value != account:
            with select.prevent(Select.Changed):
                try:
                    select.value = account
                except Exception:  # an account not in the options yet: the next set_accounts adds it
                    pass
        badge = self.query_one("#t-confirm", Static)
        badge.update("confirm on" if confirm_on else "CONFIRM OFF")
        badge.set_class(not confirm_on, "-off")
        self.revalidate()

    def follow(self, listed: str) -> None:
        """The watchlist cursor moved to ``listed``: show it (the side, type and prices stay)."""
        field = self.query_one("#t-symbol", Input)
        if field.value.strip().upper() != listed.upper():
            field.value = listed

    def set_quantity(self, quantity: int) -> None:
        field = self.query_one("#t-qty", Input)
        if field.value != str(quantity):
            field.value = str(quantity)

    def load(self, symbol: str | None = None, *, side: Side | None = None, quantity: int | None = None) -> None:
        """Prefill the ticket (from the watchlist or a palette ``ticket`` verb)."""
        if symbol is not None:
            self.query_one("#t-symbol", Input).value = symbol
        if side is not None:
            self.side = side
        if quantity is not None:
            self.query_one("#t-qty", Input).value = str(quantity)

    def set_freshness(self, fresh: Freshness) -> None:
        """Once a second: whether the ticket's quote is still current."""
        self.freshness = fresh
        if fresh.quote_stale(self.quote) or self.stale:
            self.update_quote(self.quote)

    def update_quote(self, quote: Quote | None) -> None:
        self.quote = quote
        inst = self.instrument
        text = ""
        fresh = self.freshness
        self.stale = bool(inst is not None and fresh is not None and fresh.quote_stale(quote))
        if inst is not None:
            if quote is None:
                text = f"{inst.symbol}: waiting for a quote"
            else:
                text = (
                    f"bid {fmt.touch(quote.bid, quote.bid_size, inst)}  "
                    f"ask {fmt.touch(quote.ask, quote.ask_size, inst)}"
                )
                if self.stale and fresh is not None:
                    text = f"STALE {fmt.age(fresh.quote_age(quote))} · {text}"
        elif self.symbol_error:
            text = self.symbol_error
        widget = self.query_one("#t-quote", Static)
        widget.update(text)
        widget.set_class(self.stale, "-stale")
        if self.order_type is OrderType.MARKET:
            self._show_risk()

    # ------------------------------------------------------------------ reacting to edits

    def watch_side(self, side: Side) -> None:
        select = self.query_one("#t-side", Select)
        if select.value != side:
            with select.prevent(Select.Changed):
                select.value = side
        self.revalidate()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "t-side" and isinstance(event.value, Side):
            self.side = event.value
            return
        if event.select.id == "t-account" and isinstance(event.value, str):
            self.post_message(AccountChosen(event.value))
            return
        if event.select.id == "t-type":
            self._sync_price_fields()
        self.revalidate()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "t-symbol":
            self._resolve_symbol(event.value)
        elif event.input.id == "t-qty" and self.presets is not None and self.instrument is not None:
            qty = self.quantity
            if qty is not None:
                self.presets.set(self.instrument, qty)
        self.revalidate()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_send()

    @on(Button.Pressed, "#t-send")
    def _send_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_send()

    def _resolve_symbol(self, text: str) -> None:
        text = text.strip()
        previous = self.instrument.symbol if self.instrument else None
        if not text:
            self.instrument, self.symbol_error = None, ""
        else:
            resolved = self.bridge.resolve(text)
            self.instrument, self.symbol_error = resolved.instrument, resolved.error
        for pid in ("#t-limit", "#t-stop"):
            self.query_one(pid, PriceInput).instrument = self.instrument
        contract = self.instrument.symbol if self.instrument else None
        if contract != previous:
            self.quote = self.bridge.state.quotes.get(contract) if contract else None
            self.post_message(SymbolChosen(contract))
            if self.instrument is not None and self.presets is not None:
                self.set_quantity(self.presets.quantity(self.instrument))
        self.update_quote(self.quote)

    def _sync_price_fields(self) -> None:
        otype = self.order_type
        self.query_one("#t-limit", PriceInput).disabled = not otype.needs_limit
        self.query_one("#t-stop", PriceInput).disabled = not otype.needs_stop

    # ------------------------------------------------------------------ building the order

    def build(self) -> tuple[OrderRequest | None, str, str | None]:
        """The order the ticket describes, or (None, reason, field id) for the first problem."""
        if self.account is None:
            return None, "no account yet", "t-account"
        symbol = self.query_one("#t-symbol", Input).value.strip()
        if not symbol:
            return None, "enter a symbol", "t-symbol"
        if self.instrument is None:
            return None, self.symbol_error or f"unknown symbol {symbol!r}", "t-symbol"
        inst = self.instrument
        qty = self.quantity
        if qty is None:
            return None, "quantity must be a whole number of at least 1", "t-qty"
        otype = self.order_type
        limit = stop = None
        if otype.needs_limit:
            limit, err = self._price("#t-limit", "limit price", inst)
            if err:
                return None, err, "t-limit"
        if otype.needs_stop:
            stop, err = self._price("#t-stop", "stop price", inst)
            if err:
                return None, err, "t-stop"
        bracket, err, field = self._bracket(inst)
        if err:
            return None, err, field
        tif = self.query_one("#t-tif", Select).value
        try:
            request = OrderRequest(
                account=self.account,
                symbol=inst.symbol,
                side=self.side,
                quantity=qty,
                order_type=otype,
                limit_price=limit,
                stop_price=stop,
                tif=tif if isinstance(tif, TimeInForce) else TimeInForce.DAY,
                bracket=bracket,
                source=OrderSource.TICKET,
            )
        except ModelError as exc:
            return None, str(exc), None
        return request, "", None

    def _price(self, selector: str, what: str, inst: Instrument) -> tuple[Decimal | None, str]:
        text = self.query_one(selector, PriceInput).value.strip()
        if not text:
            return None, f"a {self.order_type.value.replace('_', '-')} order needs a {what}"
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None, f"{what} {text!r} is not a number"
        if not value.is_finite():
            return None, f"{what} {text!r} is not a number"
        try:
            inst.round_price(value, "reject")
        except ModelError as exc:
            return None, str(exc)
        if value <= 0 and inst.asset_class.value != "future":
            return None, f"{what} must be positive"
        return value, ""

    def _bracket(self, inst: Instrument) -> tuple[Bracket | None, str, str | None]:
        unit = self.query_one("#t-unit", Select).value
        values: dict[str, Decimal | int | None] = {}
        for fid, name in (("t-tp", "take-profit"), ("t-sl", "stop-loss")):
            text = self.query_one(f"#{fid}", Input).value.strip()
            if not text:
                values[fid] = None
                continue
            if unit == "ticks":
                if not text.isdigit() or int(text) <= 0:
                    return None, f"{name} in ticks must be a whole number of at least 1", fid
                values[fid] = int(text)
            else:
                try:
                    price = Decimal(text)
                    inst.round_price(price, "reject")
                except (InvalidOperation, ModelError) as exc:
                    reason = str(exc) if isinstance(exc, ModelError) else f"{text!r} is not a price"
                    return None, f"{name}: {reason}", fid
                values[fid] = price
        if values["t-tp"] is None and values["t-sl"] is None:
            return None, "", None
        try:
            # values holds ints in tick mode and Decimals in price mode (parsed just above by unit).
            if unit == "ticks":
                bracket = Bracket(take_profit_ticks=values["t-tp"], stop_loss_ticks=values["t-sl"])  # type: ignore[arg-type]
            else:
                bracket = Bracket(take_profit_price=values["t-tp"], stop_loss_price=values["t-sl"])  # type: ignore[arg-type]
        except ModelError as exc:
            return None, str(exc), "t-tp"
        return bracket, "", None

    def revalidate(self) -> OrderRequest | None:
        """Validate as you type: mark the bad field, say why, and preview the good order."""
        if not self.is_mounted:
            return None
        request, error, field = self.build()
        for fid in ("t-symbol", "t-qty", "t-limit", "t-stop", "t-tp", "t-sl"):
            self.query_one(f"#{fid}").set_class(fid == field, "-invalid")
        self.error = error
        send = self.query_one("#t-send", Button)
        send.variant = "success" if self.side is Side.BUY else "error"
        qty = self.quantity
        sym = self.instrument.symbol if self.instrument else "…"
        send.label = f"{self.side.value.upper()} {qty if qty is not None else '?'} {sym}  ^s"
        if request is None:
            # A preview still in flight is for an order the ticket no longer describes.
            self._preview_seq += 1
            if self._preview_timer is not None:
                self._preview_timer.stop()
            self.last_decision = None
            self._dry_run(None)
            self._status(error, "-error" if field else "")
            self._show_risk()
            return None
        self._status("checking…", "")
        self._show_risk(request)
        acct = self.bridge.state.accounts.get(request.account)
        self._dry_run(dry_run.pending(acct.broker) if acct is not None and acct.previews else None)
        self._schedule_preview(request)
        return request

    def _status(self, text: str, cls: str) -> None:
        self._verdict = (text, cls)
        self._paint_status()

    def _paint_status(self) -> None:
        """The pre-trade verdict, and the broker's dry run where there is one (one line: at 80
        columns the ticket has no row to spare). An answered dry run stands in for a pass; a
        pre-trade warning stays in front of it."""
        text, cls = self._verdict
        dry = self._dry
        if dry is not None:
            if not dry.level:  # still asking
                text = f"{text} · {dry.text}"
            elif cls == "-warn" and not dry.blocks:
                text = f"{text} · {dry.text}"
                cls = "-error" if dry.level == "error" else "-warn"
            else:
                text, cls = dry.text, f"-{dry.level}"
        status = self.query_one("#t-status", Static)
        status.update(text)
        status.tooltip = text or None
        for c in ("-error", "-warn", "-ok"):
            status.set_class(c == cls, c)

    def _show_risk(self, request: OrderRequest | None = None) -> None:
        if request is None:
            request, _, _ = self.build()
        widget = self.query_one("#t-risk", Static)
        if request is None or self.instrument is None:
            widget.update("Risk —")
            return
        est = estimate_risk(request, self.instrument, self.quote)
        widget.update(f"Risk {est.text}")

    def _schedule_preview(self, request: OrderRequest) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_seq += 1
        seq = self._preview_seq
        self._preview_timer = self.set_timer(0.15, lambda: self._run_preview(request, seq))

    def _run_preview(self, request: OrderRequest, seq: int) -> None:
        self.run_worker(self._preview(request, seq), group="ticket-preview", exclusive=True, exit_on_error=False)

    async def _preview(self, request: OrderRequest, seq: int) -> None:
        try:
            decision = await self.bridge.client.preview(request)
        except Exception as exc:  # an unreachable engine must show, not crash the ticket
            if seq == self._preview_seq:
                self._status(f"cannot check the order: {exc}", "-error")
            return
        if seq != self._preview_seq:
            return
        self.last_decision = decision
        if decision.action is RiskAction.REJECT:
            self._status(f"✗ {decision.reason}", "-error")
        elif decision.action is RiskAction.WARN:
            self._status(f"⚠ {decision.reason}", "-warn")
        else:
            self._status("✓ passes the pre-trade checks", "-ok")
        acct = self.bridge.state.accounts.get(request.account)
        if acct is None or not acct.previews or not decision.allowed:
            self._dry_run(None)  # tterm's own refusal says it all: the broker is not asked
            return
        self._dry_run(dry_run.pending(acct.broker))
        # This worker is exclusive: the next edit cancels the wait, so only a settled order is asked.
        await asyncio.sleep(dry_run.TICKET_DEBOUNCE)
        bal = self.bridge.state.balances.get(request.account)
        result = await dry_run.ask(self.bridge.client, request, bal.buying_power if bal is not None else None)
        if seq == self._preview_seq:
            self._dry_run(result)

    def _dry_run(self, result: dry_run.DryRun | None) -> None:
        """Show the broker's dry run on the status line (None: no previews, or no order to ask)."""
        self.last_dry_run = result if result is not None and result.level else None
        self._dry = result
        self._paint_status()

    # ------------------------------------------------------------------ actions

    def action_send(self) -> None:
        request, error, field = self.build()
        if request is None:
            self.notify(f"ticket: {error}", severity="error")
            if field:
                self.query_one(f"#{field}").focus()
            return
        self.post_message(SubmitOrder(request))

    def action_toggle_side(self) -> None:
        self.side = self.side.opposite

    def action_reset(self) -> None:
        for fid in ("t-limit", "t-stop", "t-tp", "t-sl"):
            self.query_one(f"#{fid}", Input).value = ""
        qty = self.presets.quantity(self.instrument) if self.presets and self.instrument else 1
        self.query_one("#t-qty", Input).value = str(qty)
        self.query_one("#t-type", Select).value = OrderType.MARKET
        self.query_one("#t-tif", Select).value = TimeInForce.DAY
        self.side = Side.BUY
