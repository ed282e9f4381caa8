"""A preview runs every check the send runs: whatever the paper broker would refuse at the send
(a cash account trading futures, selling short, spending more cash than it has; a futures
account trading shares) the preview refuses first, with the same reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.test_engine_paper import CASH, FUT, h  # noqa: F401 - the fixture
from tterm.core.models import OrderRequest, OrderStatus, OrderType, Side

D = Decimal


def buy(account: str, symbol: str, quantity: int, **kw: object) -> OrderRequest:
    return OrderRequest(account=account, symbol=symbol, side=Side.BUY, quantity=quantity, **kw)  # type: ignore[arg-type]


CASES = [
    pytest.param(buy(CASH, "MES1!", 1), "cash account", id="cash-futures"),
    pytest.param(buy(CASH, "AAPL", 10).with_changes(side=Side.SELL), "sell short", id="cash-short"),
    pytest.param(
        buy(CASH, "AAPL", 5000, order_type=OrderType.LIMIT, limit_price=D("187.50")), "not enough cash", id="overspend"
    ),
    pytest.param(buy(FUT, "AAPL", 1), "futures account", id="fut-shares"),
]


@pytest.mark.parametrize(("request_", "reason"), CASES)
async def test_the_preview_refuses_what_the_send_would(h, request_: OrderRequest, reason: str) -> None:  # noqa: F811
    await h.quote("AAPL", "187.49", "187.51")
    decision = await h.engine.preview(request_)
    assert not decision.allowed, decision
    assert reason in decision.reason
    order = await h.engine.place(request_)
    assert order.status is OrderStatus.REJECTED
    assert reason in (order.reject_reason or "")


async def test_a_good_order_passes_both(h) -> None:  # noqa: F811
    await h.quote("AAPL", "187.49", "187.51")
    request = OrderRequest(account=CASH, symbol="AAPL", side=Side.BUY, quantity=10)
    assert (await h.engine.preview(request)).allowed
    assert (await h.engine.place(request)).status is not OrderStatus.REJECTED
