"""Requests that widgets post up to the app; the app owns every call to the engine.

Widgets never call the engine themselves: they say what the user asked for, and the app runs it
through one path (confirmation, ``EngineClient`` call, notification of the outcome). Order events
flowing the other way are not messages: the app drains them from the bridge once per frame.
"""

from __future__ import annotations

from textual.message import Message

from tterm.core.models import Order, OrderRequest


class SubmitOrder(Message):
    """Send ``request`` (after the confirmation dialog unless it is off for the account)."""

    def __init__(self, request: OrderRequest) -> None:
        super().__init__()
        self.request = request


class CancelOrder(Message):
    def __init__(self, account: str, order_id: str) -> None:
        super().__init__()
        self.account = account
        self.order_id = order_id


class ModifyOrder(Message):
    """Open the modify dialog for a working order."""

    def __init__(self, order: Order) -> None:
        super().__init__()
        self.order = order


class CancelAll(Message):
    """Cancel every working order in ``account`` (None: the current account)."""

    def __init__(self, account: str | None) -> None:
        super().__init__()
        self.account = account


class Flatten(Message):
    """Close ``symbol`` (None: everything) in ``account`` and cancel its working orders."""

    def __init__(self, account: str, symbol: str | None) -> None:
        super().__init__()
        self.account = account
        self.symbol = symbol


class AccountChosen(Message):
    """The user picked another current account (ticket selector)."""

    def __init__(self, account: str) -> None:
        super().__init__()
        self.account = account


class SymbolChosen(Message):
    """The ticket's symbol changed; the app streams its quotes."""

    def __init__(self, contract: str | None) -> None:
        super().__init__()
        self.contract = contract


class PositionVerb(Message):
    """reverse or breakeven on one position (from the positions pane)."""

    def __init__(self, verb: str, account: str, symbol: str) -> None:
        super().__init__()
        self.verb = verb
        self.account = account
        self.symbol = symbol
