"""Modify a working order's quantity or price. The dialog stays open with the engine's reason
when a change is refused, and closes once the engine accepted it. Prices step by the
instrument's tick with up/down (ten ticks with shift or page keys), as in the ticket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tterm.core.models import Instrument, Order, Quote
from tterm.tui import format as fmt
from tterm.tui.widgets.order_ticket import PriceInput

#: Sends the change; returns None on success, or the reason it was refused.
ApplyModify = Callable[[int | None, Decimal | None, Decimal | None], Awaitable[str | None]]


class ModifyOrderScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "apply", "Apply", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    ModifyOrderScreen { align: center middle; background: $background 60%; }
    ModifyOrderScreen #box { width: 64; max-width: 95%; height: auto; padding: 1 2; border: thick $primary;
                             background: $surface; }
    ModifyOrderScreen #title { text-style: bold; padding-bottom: 1; }
    ModifyOrderScreen .row { height: 3; }
    ModifyOrderScreen .row Label { width: 12; padding-top: 1; }
    ModifyOrderScreen .row Input { width: 1fr; }
    ModifyOrderScreen #error { color: $text-error; height: auto; }
    ModifyOrderScreen #buttons { height: auto; align-horizontal: right; padding-top: 1; }
    ModifyOrderScreen Button { margin-left: 2; }
    """

    def __init__(
        self,
        order: Order,
        apply: ApplyModify,
        instrument: Instrument | None = None,
        quote: Callable[[], Quote | None] | None = None,
    ) -> None:
        super().__init__()
        self.order = order
        self.apply = apply
        self.instrument = instrument
        self.quote = quote or (lambda: None)

    def _price_input(self, fid: str, value: Decimal | None) -> PriceInput:
        field = PriceInput(id=fid)
        field.compact = False
        field.value = fmt.price(value, self.instrument).replace(",", "") if value is not None else ""
        field.instrument = self.instrument
        field.reference = self._reference
        return field

    def _reference(self) -> Decimal | None:
        q = self.quote()
        if q is None:
            return None
        return q.last if q.last is not None else q.mid

    def compose(self) -> ComposeResult:
        o = self.order
        with Vertical(id="box"):
            yield Static(
                f"Modify {o.side.value.upper()} {o.quantity} {o.symbol} ({o.order_type.value.replace('_', '-')}, "
                f"{o.filled_quantity} filled) · order {o.order_id}",
                id="title",
                markup=False,
            )
            with Horizontal(classes="row"):
                yield Label("Quantity")
                yield Input(str(o.quantity), id="m-qty", type="integer")
            if o.order_type.needs_limit:
                with Horizontal(classes="row"):
                    yield Label("Limit price")
                    yield self._price_input("m-limit", o.limit_price)
            if o.order_type.needs_stop:
                with Horizontal(classes="row"):
                    yield Label("Stop price")
                    yield self._price_input("m-stop", o.stop_price)
            yield Static("", id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Apply  (enter)", id="apply", variant="primary")
                yield Button("Cancel  (esc)", id="cancel")

    def on_mount(self) -> None:
        target = "#m-limit" if self.order.order_type.needs_limit else "#m-stop"
        if not self.order.order_type.needs_limit and not self.order.order_type.needs_stop:
            target = "#m-qty"
        self.query_one(target, Input).focus()

    def _changes(self) -> tuple[int | None, Decimal | None, Decimal | None] | str:
        o = self.order
        qty_text = self.query_one("#m-qty", Input).value.strip()
        if not qty_text.isdigit() or int(qty_text) <= 0:
            return "quantity must be a whole number of at least 1"
        qty = int(qty_text)
        prices: list[Decimal | None] = []
        for fid, old, needed in (("#m-limit", o.limit_price, o.order_type.needs_limit),
                                 ("#m-stop", o.stop_price, o.order_type.needs_stop)):  # fmt: skip
            if not needed:
                prices.append(None)
                continue
            text = self.query_one(fid, Input).value.strip()
            try:
                value = Decimal(text)
            except InvalidOperation:
                return f"{'limit' if fid == '#m-limit' else 'stop'} price {text!r} is not a number"
            prices.append(value if value != old else None)
        new_qty = qty if qty != o.quantity else None
        if new_qty is None and prices[0] is None and prices[1] is None:
            return "nothing changed: edit the quantity or a price"
        return new_qty, prices[0], prices[1]

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_apply(self) -> None:
        changes = self._changes()
        if isinstance(changes, str):
            self.query_one("#error", Static).update(changes)
            return
        self.run_worker(self._apply(*changes), group="modify", exclusive=True, exit_on_error=False)

    async def _apply(self, qty: int | None, limit: Decimal | None, stop: Decimal | None) -> None:
        self.query_one("#error", Static).update("sending…")
        error = await self.apply(qty, limit, stop)
        if error:
            self.query_one("#error", Static).update(error)
        else:
            self.dismiss(True)
