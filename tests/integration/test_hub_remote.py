"""The remote engine API: attach, detach and re-attach over a real loopback WebSocket, hub unaffected."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hub_support import SECRET, TOKEN, hub_rig, render
from tterm.core.client import EngineClient, EngineError, EngineSnapshot
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    ConnectionState,
    ConnectionStatus,
    Fill,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    SignalOutcome,
)
from tterm.hub.remote import RemoteEngineClient


def ws_url(rig: Any) -> str:
    return rig.url.replace("http://", "ws://")


async def next_of(stream: Any, kind: type, pred: Any = lambda e: True, within: float = 5) -> Any:
    async def scan() -> Any:
        while True:
            event = await stream.get()
            if isinstance(event, kind) and pred(event):
                return event

    return await asyncio.wait_for(scan(), within)


async def attach(rig: Any, **kw: Any) -> RemoteEngineClient:
    client = RemoteEngineClient(ws_url(rig), TOKEN, **kw)
    await client.connect()
    return client


async def test_attach_gives_the_same_engine_client_seam(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig)
        try:
            assert isinstance(client, EngineClient)
            stream = client.events()
            snap = await client.snapshot()
            assert isinstance(snap, EngineSnapshot)
            assert {a.id for a in snap.accounts} == {"paper:A", "paper:B", "paper:C"}
            assert client.instrument("MES1!").symbol == rig.contract()
            # An order from the attached TUI goes through the hub's engine and comes back as events.
            req = OrderRequest(account="paper:B", symbol="MES1!", side=Side.BUY, quantity=2, source=OrderSource.HOTKEY)
            order = await client.place(req)
            assert isinstance(order, Order) and order.client_order_id == req.client_order_id
            fill = await next_of(stream, Fill, lambda f: f.client_order_id == req.client_order_id)
            assert fill.quantity == 2 and isinstance(fill.price, Decimal)
            pos = await next_of(stream, Position, lambda p: p.account == "paper:B" and p.quantity == 2)
            assert pos.symbol == rig.contract()
            assert rig.position("paper:B") == 2
            # A webhook alert on the hub shows up on the attached screen.
            await rig.post("trend", render("traderspost-buy.json"))
            outcome = await next_of(stream, SignalOutcome, lambda o: o.status.value == "done" and o.account == "")
            assert outcome.strategy == "trend"
            snap = await client.snapshot()
            assert outcome.signal_id in {s.signal_id for s in snap.signals}
        finally:
            await client.close()


async def test_commands_and_their_errors(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig)
        try:
            bad = OrderRequest(account="paper:A", symbol="MES1!", side=Side.BUY, quantity=0)
            rejected = await client.place(bad)
            assert rejected.status is OrderStatus.REJECTED and "at least 1" in rejected.reject_reason
            decision = await client.preview(OrderRequest(account="paper:A", symbol="MES1!", side=Side.SELL, quantity=1))
            assert decision.allowed
            limit = await client.place(
                OrderRequest(
                    account="paper:A",
                    symbol="MES1!",
                    side=Side.BUY,
                    quantity=1,
                    order_type=OrderType.LIMIT,
                    limit_price=Decimal("4990.00"),
                )
            )
            assert limit.is_open
            moved = await client.modify("paper:A", limit.order_id, limit_price=Decimal("4991.25"))
            assert moved.limit_price == Decimal("4991.25")
            cancelled = await client.cancel("paper:A", limit.order_id)
            assert cancelled.status is OrderStatus.CANCELLED
            with pytest.raises(EngineError, match="no order nope"):
                await client.cancel("paper:A", "nope")
            with pytest.raises(EngineError, match="unknown account"):
                await client.flatten("paper:ZZZ")
            with pytest.raises(UnknownSymbol):
                client.instrument("QQQQQQQ1!")
            await client.place(OrderRequest(account="paper:C", symbol="MES1!", side=Side.SELL, quantity=1))
            flat = await client.flatten("paper:C")
            assert flat and all(o.account == "paper:C" for o in flat)
            locks = await client.lock("paper:C", "done for the day")
            assert locks[0].locked and locks[0].by == "remote"
            assert await client.cancel_all("paper:A") == []
        finally:
            await client.close()


async def test_wrong_or_missing_token_is_refused(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        with pytest.raises(EngineError, match="refused the API token"):
            await RemoteEngineClient(ws_url(rig), "wrong").connect()
        async with rig.http.get(f"{rig.url}/ws") as resp:
            assert resp.status == 401
    async with hub_rig(tmp_path / "b", api_token=None) as rig:
        with pytest.raises(EngineError, match="refused"):
            await RemoteEngineClient(ws_url(rig), TOKEN).connect()


async def test_bad_address() -> None:
    with pytest.raises(EngineError, match="ws://"):
        RemoteEngineClient("http://127.0.0.1:1", TOKEN)


async def test_detach_and_reattach_leave_the_hub_untouched(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig)
        held = rig.engine.subscriptions().get(rig.contract("MNQ1!"), 0)  # the hub's own feed for strategy "mapped"
        resolved = await client.subscribe(["MNQ1!"])
        assert resolved == [rig.contract("MNQ1!")]
        assert rig.engine.subscriptions().get(rig.contract("MNQ1!")) == held + 1
        await client.place(OrderRequest(account="paper:A", symbol="MES1!", side=Side.BUY, quantity=1))
        await client.close()  # the SSH session drops / the TUI quits
        await rig.wait_clients(0)
        # The hub keeps trading: alerts still route, and the detached client's quote feed is released.
        assert rig.engine.subscriptions().get(rig.contract("MNQ1!"), 0) == held
        status, _ = await rig.post("trend", {"ticker": "MES1!", "action": "add", "quantity": 2, "passphrase": SECRET})
        assert status == 202
        await rig.settle()
        assert rig.position("paper:A") == 3
        again = await attach(rig)
        try:
            snap = await again.snapshot()
            pos = {(p.account, p.symbol): p.quantity for p in snap.positions}
            assert pos[("paper:A", rig.contract())] == 3
            assert len([f for f in snap.fills if f.account == "paper:A"]) == 2
        finally:
            await again.close()


async def test_reconnects_and_catches_up_after_the_link_drops(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig, backoff=(0.01, 0.05))
        try:
            stream = client.events()
            await client.snapshot()
            # The link drops (an SSH tunnel dies): the hub closes its side.
            for ws in list(rig.hub.server._clients):
                await ws.close()
            down = await next_of(stream, ConnectionStatus, lambda c: c.broker == "hub")
            assert down.state is ConnectionState.RECONNECTING
            # The hub trades on while the link is down.
            status, _ = await rig.post("trend", render("traderspost-buy.json"))
            assert status == 202
            await rig.settle()
            up = await next_of(
                stream, ConnectionStatus, lambda c: c.broker == "hub" and c.state is ConnectionState.CONNECTED, 10
            )
            assert "reconnected" in up.detail
            # The replayed snapshot brings the position that changed while the link was down.
            pos = await next_of(stream, Position, lambda p: p.account == "paper:A" and p.quantity == 1)
            assert pos.symbol == rig.contract()
            assert client.reconnects == 1
            order = await client.place(OrderRequest(account="paper:A", symbol="MES1!", side=Side.SELL, quantity=1))
            assert order.status is not OrderStatus.REJECTED
        finally:
            await client.close()


async def test_quotes_stream_and_the_last_one_wins(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig)
        try:
            stream = client.events()
            await client.subscribe(["MES1!"])
            for i in range(50):
                bid = Decimal("5000.00") + Decimal("0.25") * i
                await rig.broker.push_quote(Quote(symbol="MES1!", bid=bid, ask=bid + Decimal("0.25"), last=bid))
            last = Decimal("5000.00") + Decimal("0.25") * 49
            quote = await next_of(stream, Quote, lambda q: q.bid == last)
            assert quote.symbol == rig.contract()
        finally:
            await client.close()


async def test_hub_stop_closes_attached_clients(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = await attach(rig, backoff=(0.01, 0.02))
        stream = client.events()
        await rig.hub.server.stop()
        down = await next_of(stream, ConnectionStatus, lambda c: c.broker == "hub")
        assert down.state is ConnectionState.RECONNECTING
        # While the hub is away, commands are refused at once and nothing is queued to go out later.
        assert not client.connected
        with pytest.raises(EngineError, match="nothing was sent"):
            await client.place(OrderRequest(account="paper:A", symbol="MES1!", side=Side.BUY, quantity=1))
        retry = await next_of(stream, ConnectionStatus, lambda c: "retrying" in c.detail)
        assert "cannot reach the hub" in retry.detail
        await client.close()
        assert stream.closed
        assert rig.position("paper:A") == 0
