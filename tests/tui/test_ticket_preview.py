"""The ticket's preview says what the send will say: a cash account's ticket for a futures order
shows the broker's refusal, not "passes the pre-trade checks"."""

from __future__ import annotations

from tests.tui.conftest import make_app, wait_for

SIZE = (140, 44)


async def test_a_cash_accounts_futures_ticket_is_refused_before_the_send(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        app.set_account("paper:CASH")
        app.ticket.load("MES1!")

        def status() -> str:
            return str(app.ticket.query_one("#t-status").render())

        await wait_for(lambda: status().startswith(("✓", "✗")), pilot)
        assert status().startswith("✗"), status()
        assert "cash account" in status()
        # The same ticket in the futures account passes.
        app.set_account("paper:FUT50K")
        await wait_for(lambda: status().startswith("✓"), pilot)
