"""The broker's dry run in the ticket and the confirmation, on the strict fakes (Tastytrade's
/orders/dry-run, Schwab's previewOrder): the ticket shows cost, fees and buying power as the user
edits; a dry-run reject refuses the send with the broker's reason; a dry run that does not answer
reads "broker check unavailable" and the user decides; paper shows no dry-run line; asking never
places an order at the fake; every dry run is journaled."""

from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from tests.integration import schwab_adapter_support as sw
from tests.integration import tastytrade_support as tt
from tests.tui.conftest import FROZEN, make_app, make_settings, wait_for
from tterm.config import AccountSettings, BrokerSettings
from tterm.core.clock import CmeClock
from tterm.core.engine import Engine
from tterm.core.journal import Journal
from tterm.runtime import build_engine
from tterm.tui.modals.confirm import ConfirmDialog

SIZE = (160, 44)
TT_DRY_RUN = f"/accounts/{tt.MARGIN.split(':')[1]}/orders/dry-run"
TT_CASH_DRY_RUN = f"/accounts/{tt.CASH.split(':')[1]}/orders/dry-run"


def line(app) -> str:
    """The ticket's status line: the pre-trade verdict and, where the broker has one, its dry run."""
    return str(app.ticket.query_one("#t-status").render())


def shown(app) -> bool:
    return app.ticket.last_dry_run is not None and "dry run" in line(app)


def check(dialog: ConfirmDialog) -> str:
    return str(dialog.query_one("#check").render())


async def says(dialog: ConfirmDialog, pilot, text: str) -> None:
    """Wait until the confirmation's dry-run line says ``text``."""
    try:
        await wait_for(lambda: text in check(dialog), pilot, limit=8)
    except TimeoutError:
        raise AssertionError(f"the dialog's dry-run line never said {text!r}: {check(dialog)!r}") from None


async def seen(app, pilot, text: str) -> None:
    """Wait until the ticket's dry-run line says ``text`` (and say what it said if it never does)."""
    try:
        await wait_for(lambda: text in line(app), pilot, limit=8)
    except TimeoutError:
        raise AssertionError(f"the status line never said {text!r}: {line(app)!r}") from None


async def dialog_of(pilot, app) -> ConfirmDialog:
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    assert isinstance(app.screen, ConfirmDialog)
    return app.screen


def order_posts(fake) -> list[tuple]:
    """Requests that would place or change an order (a dry run is neither)."""
    return [r for r in fake.requests if r[0] in ("POST", "PUT", "DELETE") and "/orders" in r[1]
            and "dry-run" not in r[1] and "previewOrder" not in r[1]]  # fmt: skip


@pytest.fixture
async def tastytrade(tmp_path, monkeypatch):
    fake = await tt.start_fake(FakeClock(FROZEN))
    fake.set_quote("/MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
    fake.set_quote("AAPL", bid="230.00", ask="230.02", last="230.01")
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_TT_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("TTERM_TT_REFRESH_TOKEN", fake.refresh_token)
    settings = make_settings()
    settings.brokers["tt"] = BrokerSettings(type="tastytrade", enabled=True, environment="demo",
                                            options=tt.options(fake))  # fmt: skip
    engine = build_engine(settings, paper_seed=7, scripted=True, clock=CmeClock(now=lambda: FROZEN), root=tmp_path)
    await engine.start()
    try:
        await tt.until(lambda: tt.MARGIN in engine.account_ids(), "the Tastytrade accounts")
        await engine.subscribe(["MESZ6", "AAPL"])
        await tt.until(lambda: engine.quote("MESZ6") is not None and engine.quote("AAPL") is not None, "quotes")
        yield fake, engine, settings
    finally:
        await engine.stop()
        await fake.stop()


async def ticket_on(app, pilot, account: str, symbol: str, qty: str) -> None:
    await wait_for(lambda: account in app.bridge.state.accounts, pilot)
    app.set_account(account)
    app.ticket.load(symbol)
    await wait_for(lambda: app.ticket.instrument is not None, pilot)
    app.ticket.query_one("#t-qty").value = qty
    app.ticket.query_one("#t-qty").focus()  # ctrl+s is the ticket's send


async def test_tastytrade_dry_run_in_the_ticket_and_a_reject_blocks_the_send(tastytrade) -> None:
    fake, engine, settings = tastytrade
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await ticket_on(app, pilot, tt.MARGIN, "MESZ6", "1")
        await seen(app, pilot, "dry run ok")
        assert shown(app) and "fees $1.05" in line(app) and "buying power $" in line(app), line(app)
        assert "cost $" in line(app) and "→" in line(app)
        # The cash account's shares: edits are debounced, a burst asks for the settled one only.
        await ticket_on(app, pilot, tt.CASH, "AAPL", "1")
        await seen(app, pilot, "dry run ok")
        before = sum(1 for r in fake.requests if r[1] == TT_CASH_DRY_RUN)
        for q in ("2", "20", "200"):
            app.ticket.query_one("#t-qty").value = q
            await pilot.pause(0.05)
        await seen(app, pilot, "rejects it")
        assert "buying power" in line(app).split("rejects it")[1], line(app)
        assert sum(1 for r in fake.requests if r[1] == TT_CASH_DRY_RUN) - before == 1
        # The send: the confirmation asks again and the reject keeps Send refused.
        await pilot.press("ctrl+s")
        dialog = await dialog_of(pilot, app)
        await says(dialog, pilot, "rejects it")
        assert dialog.query_one("#yes").disabled
        await pilot.press("y")
        await pilot.pause(0.1)
        assert app.screen is dialog, "a rejected dry run was sent"
        await pilot.press("n")
        await wait_for(lambda: not isinstance(app.screen, ConfirmDialog), pilot)
        assert order_posts(fake) == [] and not fake.book.orders
        # A good order: the dialog shows the accepted dry run, then Send places it.
        await ticket_on(app, pilot, tt.MARGIN, "MESZ6", "1")
        await seen(app, pilot, "dry run ok")
        await pilot.press("ctrl+s")
        dialog = await dialog_of(pilot, app)
        await says(dialog, pilot, "dry run ok")
        assert not dialog.query_one("#yes").disabled
        await pilot.press("y")
        await wait_for(lambda: len(fake.book.orders) == 1, pilot)
    rows = engine.journal.entries(kind="broker_preview")
    assert rows and {r.account for r in rows} == {tt.MARGIN, tt.CASH}
    assert any(r.data.get("accepted") is False for r in rows) and any(r.data.get("accepted") for r in rows)


async def test_a_dry_run_that_does_not_answer_is_shown_and_the_user_decides(tastytrade, monkeypatch) -> None:
    fake, engine, settings = tastytrade
    monkeypatch.setattr("tterm.core.engine.PREVIEW_TIMEOUT", 1.0)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        fake.slow(TT_DRY_RUN, 2.0, times=10)
        await ticket_on(app, pilot, tt.MARGIN, "MESZ6", "3")
        # While the broker is asked the ticket takes keys: the quantity is edited as usual.
        await seen(app, pilot, "asking the broker")
        await pilot.press("backspace", "1")
        assert app.ticket.query_one("#t-qty").value == "1"
        await seen(app, pilot, "broker check unavailable")
        assert "no answer in 1 s" in line(app), line(app)
        await pilot.press("ctrl+s")
        dialog = await dialog_of(pilot, app)
        # Send waits for the dry run: a y before the answer sends nothing (Esc would cancel).
        assert "asking the broker" in check(dialog) and dialog.query_one("#yes").disabled
        await pilot.press("y")
        await pilot.pause(0.05)
        assert app.screen is dialog and order_posts(fake) == []
        await says(dialog, pilot, "broker check unavailable")
        assert "you may still send" in check(dialog)
        assert order_posts(fake) == []
        await pilot.press("y")
        await wait_for(lambda: len(fake.book.orders) == 1, pilot)
    errors = [r for r in engine.journal.entries(kind="broker_preview") if "error" in r.data]
    assert errors and "no answer" in errors[0].data["error"]


async def test_with_confirmation_off_a_dry_run_reject_is_not_sent(tastytrade) -> None:
    fake, engine, settings = tastytrade
    settings.accounts[tt.CASH] = AccountSettings(confirm_orders=False)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await ticket_on(app, pilot, tt.CASH, "AAPL", "200")
        await seen(app, pilot, "rejects it")
        await pilot.press("ctrl+s")
        await wait_for(lambda: any("NOT SENT" in n.message for n in app._notifications), pilot)
        assert not isinstance(app.screen, ConfirmDialog)
        assert order_posts(fake) == [] and not fake.book.orders


async def test_schwab_previeworder_in_the_ticket_and_its_reject(tmp_path) -> None:
    fake = await sw.start_fake(FakeClock(FROZEN))
    master = sw.InstrumentMaster(today=lambda: fake.clock.now().date())
    broker = sw.make_broker(fake, tmp_path, master=master)
    await sw.log_in(fake, broker)
    engine = Engine(brokers=[broker], instruments=master, journal=Journal(tmp_path / "journal.sqlite3"),
                    clock=CmeClock(now=lambda: FROZEN))  # fmt: skip
    await engine.start()
    settings = make_settings()
    app = make_app(engine, settings)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(app.ready.is_set, pilot)
            await ticket_on(app, pilot, sw.CASH, "AAPL", "1")
            await seen(app, pilot, "sw dry run ok")
            assert "fees $" in line(app) and "cost $" in line(app), line(app)
            app.ticket.query_one("#t-qty").value = "100000"
            await seen(app, pilot, "rejects it")
            assert "buying power" in line(app), line(app)
            await pilot.press("ctrl+s")
            dialog = await dialog_of(pilot, app)
            await says(dialog, pilot, "rejects it")
            await pilot.press("y")
            await pilot.pause(0.1)
            assert app.screen is dialog
            await pilot.press("n")
        assert order_posts(fake) == [] and not fake.order_bodies
        assert any(p for p in fake.requests if "previewOrder" in p[1])
    finally:
        await engine.stop()
        await fake.stop()


async def test_paper_shows_no_dry_run_line(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await ticket_on(app, pilot, "paper:FUT50K", "MES1!", "1")
        await wait_for(lambda: line(app).startswith("✓"), pilot)
        await pilot.pause(0.6)
        assert line(app) == "✓ passes the pre-trade checks" and app.ticket.last_dry_run is None
        await pilot.press("ctrl+s")
        dialog = await dialog_of(pilot, app)
        assert not dialog.query("#check") and not dialog.query_one("#yes").disabled
        await pilot.press("n")
    assert engine.journal.entries(kind="broker_preview") == []


def test_the_dry_run_in_plain_words() -> None:
    from decimal import Decimal as D

    from tterm.core.models import OrderPreview
    from tterm.tui import dry_run

    ok = dry_run.explain(OrderPreview(broker="sw", accepted=True, warnings=("the market is closed",),
                                      order_value=D("2300.20"), commission=D("0"),
                                      buying_power_after=D("22699.80")), D("25000"))  # fmt: skip
    assert ok.text == ("✓ sw dry run ok · cost $2,300.20 · fees $0.00 · buying power $25,000.00 → $22,699.80"
                       " · ⚠ the market is closed")  # fmt: skip
    assert ok.level == "warn" and not ok.blocks and not ok.unavailable
    no = dry_run.explain(OrderPreview(broker="tt", accepted=False, rejects=("not enough buying power", "closed")))
    assert no.blocks == "not enough buying power; closed" and no.level == "error"
    silent = dry_run.explain(OrderPreview(broker="tt", accepted=False))
    assert "no reason given" in silent.blocks
    down = dry_run.unavailable("preview at tt failed: 503")
    assert down.unavailable and down.text == "⚠ broker check unavailable: preview at tt failed: 503"
