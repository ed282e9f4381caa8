"""Price alerts in the engine on the paper broker: firing once, surviving a restart, the journal,
bad input, and the webhook-out and command an alert may run."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tterm.brokers.paper.broker import PaperBroker
from tterm.brokers.paper.ledger import PaperAccountSpec
from tterm.core.alerts import AlertActions, AlertFired, AlertOp, AlertSpec, AlertState
from tterm.core.alerts.monitor import STATE_KEY
from tterm.core.client import EngineError
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import AccountKind, Notice, Quote

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 09:00 CT, market open


class Rig:
    """An engine on a scripted paper broker over the data dir ``tmp`` (build again = a restart)."""

    def __init__(self, tmp: Path, actions: AlertActions | None = None) -> None:
        clock = CmeClock(default_calendar(), now=lambda: NOW)
        master = InstrumentMaster(calendar=clock.calendar, today=lambda: date(2026, 11, 24))
        self.broker = PaperBroker(
            "paper",
            accounts=[PaperAccountSpec(id="FUT50K", name="Paper 50K", kind=AccountKind.FUTURES, balance=D(50000))],
            instruments=master,
            clock=clock,
            seed=7,
            store_path=tmp / "paper.sqlite3",
            scripted=True,
        )
        self.journal = Journal(tmp / "journal.sqlite3")
        self.engine = Engine(brokers=[self.broker], instruments=master, journal=self.journal, clock=clock)
        if actions is not None:
            self.engine.alerts.configure(actions)
        self.sub = self.engine.events("test")

    async def start(self) -> Rig:
        await self.engine.start()
        return self

    async def stop(self) -> None:
        await self.engine.stop()
        self.journal.close()

    async def last(self, symbol: str, price: str) -> None:
        inst = self.engine.instrument(symbol)
        p = D(price)
        await self.broker.push_quote(Quote(inst.symbol, bid=p - D("0.25"), ask=p + D("0.25"), last=p))
        await self.engine.settle()
        await self.engine.alerts.settle()

    def fired(self) -> list[AlertFired]:
        return [e for e in self.sub.drain() if isinstance(e, AlertFired)]

    def rows(self, event: str | None = None) -> list[dict[str, Any]]:
        rows = [e.data for e in self.journal.entries(kind="alert")]
        return [r for r in rows if event is None or r["event"] == event]


@pytest.fixture
async def rig(tmp_path: Path):
    r = await Rig(tmp_path).start()
    await r.engine.watch(["MES"])
    await r.last("MES", "6800.00")
    yield r
    await r.stop()


async def test_an_alert_fires_once_and_is_journaled(rig: Rig) -> None:
    alert = await rig.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801")))
    assert alert.alert_id == 1 and alert.armed and alert.symbol == "MESZ6" and alert.listed == "MES"
    await rig.last("MES", "6801.00")
    assert rig.fired() == []
    await rig.last("MES", "6801.25")
    fired = rig.fired()
    assert len(fired) == 1
    assert fired[0].price == D("6801.25") and fired[0].alert.state is AlertState.FIRED
    assert "ALERT #1" in fired[0].text
    await rig.last("MES", "6802.00")
    await rig.last("MES", "6800.00")
    await rig.last("MES", "6803.00")
    assert rig.fired() == []
    [listed] = await rig.engine.list_alerts()
    assert listed.state is AlertState.FIRED and listed.fired_price == D("6801.25") and listed.fired_at == NOW
    assert [r["event"] for r in rig.rows()] == ["created", "fired"]
    assert rig.rows("fired")[0]["price"] == "6801.25"
    snap = await rig.engine.snapshot()
    assert [a.alert_id for a in snap.alerts] == [1]


async def test_a_condition_already_true_fires_at_once(rig: Rig) -> None:
    await rig.engine.add_alert(AlertSpec("MES", AlertOp.LE, D("6805")))
    await rig.engine.alerts.settle()
    await rig.engine.settle()
    assert len(rig.fired()) == 1


@pytest.mark.parametrize(("start", "level", "move"), [("6800", "6801", "6801.25"), ("6800", "6799", "6798.75")])
async def test_crosses_either_way(rig: Rig, start: str, level: str, move: str) -> None:
    await rig.last("MES", start)
    alert = await rig.engine.add_alert(AlertSpec("MES", AlertOp.CROSSES, D(level)))
    assert alert.side != 0
    await rig.last("MES", start)
    assert rig.fired() == []
    await rig.last("MES", move)
    assert len(rig.fired()) == 1


async def test_bid_ask_and_mid(rig: Rig) -> None:
    from tterm.core.alerts import AlertField

    await rig.engine.add_alert(AlertSpec("MES", AlertOp.GE, D("6802"), field=AlertField.BID))
    await rig.last("MES", "6802.00")  # bid 6801.75
    assert rig.fired() == []
    await rig.last("MES", "6802.25")  # bid 6802.00
    assert len(rig.fired()) == 1


async def test_an_alert_survives_a_restart_and_fires_after_it_never_twice(tmp_path: Path) -> None:
    first = await Rig(tmp_path).start()
    await first.engine.watch(["MES"])
    await first.last("MES", "6800.00")
    a1 = await first.engine.add_alert(AlertSpec("MES", AlertOp.CROSSES, D("6810")))
    a2 = await first.engine.add_alert(
        AlertSpec("MES", AlertOp.LT, D("6790")),
    )
    await first.stop()

    second = await Rig(tmp_path).start()
    alerts = await second.engine.list_alerts()
    assert [(a.alert_id, a.armed) for a in alerts] == [(a1.alert_id, True), (a2.alert_id, True)]
    # The engine streams the armed alerts' contract by itself (no screen asked for MES).
    assert second.engine.subscriptions().get("MESZ6")
    await second.last("MES", "6812.00")  # crossed the level while we were down (we last saw it below)
    fired = second.fired()
    assert [f.alert.alert_id for f in fired] == [a1.alert_id]
    await second.stop()

    third = await Rig(tmp_path).start()
    await third.last("MES", "6780.00")  # fires #2, never #1 again
    await third.last("MES", "6820.00")
    assert [f.alert.alert_id for f in third.fired()] == [a2.alert_id]
    states = {a.alert_id: a.state for a in await third.engine.list_alerts()}
    assert states == {a1.alert_id: AlertState.FIRED, a2.alert_id: AlertState.FIRED}
    assert [r["event"] for r in third.rows()] == ["created", "created", "fired", "fired"]
    new = await third.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6900")))
    assert new.alert_id == 3  # numbers are never reused
    await third.stop()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (AlertSpec("NOPE", AlertOp.GT, D("10")), "NOPE"),
        (AlertSpec("MES", AlertOp.GT, D("6800.10")), "off the tick grid"),
        (AlertSpec("MES", AlertOp.GT, D("0")), "must be positive"),
        (AlertSpec("MES", AlertOp.GT, D("-5")), "must be positive"),
        (AlertSpec("MES", AlertOp.GT, D("6800"), webhook="phone"), "no webhook named 'phone'"),
        (AlertSpec("MES", AlertOp.GT, D("6800"), command="say"), "no command named 'say'"),
    ],
)
async def test_bad_input_creates_nothing(rig: Rig, spec: AlertSpec, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        await rig.engine.add_alert(spec)
    assert await rig.engine.list_alerts() == []
    assert rig.rows() == []
    assert (rig.journal.get_state(STATE_KEY) or {}).get("next_id", 1) == 1


async def test_remove_and_replace(rig: Rig) -> None:
    base = rig.engine.subscriptions().get("MESZ6", 0)
    a = await rig.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6810")))
    assert rig.engine.subscriptions()["MESZ6"] == base + 1
    edited = await rig.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6820")), replaces=a.alert_id)
    assert [x.alert_id for x in await rig.engine.list_alerts()] == [edited.alert_id]
    with pytest.raises(EngineError, match="no alert #99"):
        await rig.engine.remove_alert(99)
    with pytest.raises(EngineError, match="no alert #99 to replace"):
        await rig.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6830")), replaces=99)
    gone = await rig.engine.remove_alert(edited.alert_id)
    assert gone.state is AlertState.REMOVED
    await rig.engine.alerts.settle()
    assert await rig.engine.list_alerts() == []
    assert rig.engine.subscriptions().get("MESZ6", 0) == base
    await rig.last("MES", "6850.00")
    assert rig.fired() == []
    assert [(r["event"], r.get("why")) for r in rig.rows()] == [
        ("created", None),
        ("created", None),
        ("removed", f"replaced by #{edited.alert_id}"),
        ("removed", "removed"),
    ]


# --------------------------------------------------------------------------- webhook-out and commands


@pytest.fixture
async def hook_server():
    got: list[dict[str, Any]] = []
    status = {"code": 200}

    async def handle(request: web.Request) -> web.Response:
        got.append({"path": request.path, "type": request.content_type, "body": await request.json()})
        return web.Response(status=status["code"], text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", got, status
    await runner.cleanup()


async def test_webhook_out_posts_the_alert_and_a_failure_is_journaled(tmp_path: Path, hook_server) -> None:
    base, got, status = hook_server
    actions = AlertActions(webhooks={"phone": f"{base}/hook/s3cr3t-token"}, timeout=3)
    r = await Rig(tmp_path, actions).start()
    await r.engine.watch(["MES"])
    await r.last("MES", "6800")
    await r.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801"), webhook="phone", note="breakout"))
    await r.last("MES", "6801.25")
    assert len(got) == 1
    body = got[0]["body"]
    assert got[0]["type"] == "application/json" and got[0]["path"] == "/hook/s3cr3t-token"
    assert body["alert_id"] == 1 and body["price"] == "6801.25" and body["level"] == "6801.00"
    assert body["symbol"] == "MESZ6" and body["listed"] == "MES" and body["note"] == "breakout"
    assert r.rows("action_done")[0]["result"] == "HTTP 200"

    status["code"] = 500
    await r.engine.add_alert(AlertSpec("MES", AlertOp.LT, D("6800"), webhook="phone"))
    await r.last("MES", "6799.75")
    failed = r.rows("action_failed")
    assert len(failed) == 1 and failed[0]["error"] == "webhook phone: HTTP 500"
    await r.engine.settle()
    notices = [e for e in r.sub.drain() if isinstance(e, Notice)]
    assert any("webhook phone: HTTP 500" in n.text for n in notices)
    # The URL (it may carry a token) never reaches the journal.
    dump = json.dumps([e.data for e in r.journal.entries()])
    assert "s3cr3t-token" not in dump
    await r.stop()


async def test_unreachable_webhook_is_journaled(tmp_path: Path) -> None:
    actions = AlertActions(webhooks={"down": "http://127.0.0.1:9/nothing"}, timeout=2)
    r = await Rig(tmp_path, actions).start()
    await r.engine.watch(["MES"])
    await r.last("MES", "6800")
    await r.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801"), webhook="down"))
    await r.last("MES", "6802")
    [failed] = r.rows("action_failed")
    assert failed["name"] == "down" and failed["error"].startswith("webhook down: ")
    await r.stop()


async def test_command_gets_the_alert_and_a_failing_one_is_journaled(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = (
        "import json, os, sys; d = json.load(sys.stdin); "
        f"open({str(out)!r}, 'w').write(json.dumps([d, os.environ['TTERM_ALERT_PRICE']]))"
    )
    actions = AlertActions(
        commands={
            "save": [sys.executable, "-c", script],
            "broken": [sys.executable, "-c", "import sys; print('no such device', file=sys.stderr); sys.exit(3)"],
            "missing": ["/nonexistent/tterm-alert-cmd"],
        },
        timeout=10,
    )
    r = await Rig(tmp_path, actions).start()
    await r.engine.watch(["MES"])
    await r.last("MES", "6800")
    await r.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801"), command="save"))
    await r.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801"), command="broken"))
    await r.engine.add_alert(AlertSpec("MES", AlertOp.GT, D("6801"), command="missing"))
    await r.last("MES", "6801.50")
    payload, env_price = json.loads(out.read_text())
    assert payload["alert_id"] == 1 and payload["price"] == "6801.50" and env_price == "6801.50"
    done = r.rows("action_done")
    assert [d["name"] for d in done] == ["save"]
    failed = {f["name"]: f["error"] for f in r.rows("action_failed")}
    assert failed["broken"] == "command broken: exit status 3: no such device"
    assert failed["missing"].startswith("command missing: cannot start")
    await r.stop()


async def test_an_alert_whose_symbol_no_broker_knows_yet_waits_for_one(tmp_path: Path) -> None:
    from tterm.core.models import AssetClass, ConnectionState, ConnectionStatus, Instrument

    first = await Rig(tmp_path).start()
    first.engine.instruments.add(Instrument("ZZTOP", AssetClass.EQUITY, D("0.01"), D("0.01")))
    await first.engine.add_alert(AlertSpec("ZZTOP", AlertOp.GT, D("10")))
    await first.stop()

    second = await Rig(tmp_path).start()  # a new master: ZZTOP is unknown until a broker teaches it
    await second.engine.settle()
    await second.engine.alerts.settle()
    notices = [e for e in second.sub.drain() if isinstance(e, Notice)]
    assert any("alerts on ZZTOP wait for a broker" in n.text for n in notices)
    assert "ZZTOP" not in second.engine.subscriptions()
    second.engine.instruments.add(Instrument("ZZTOP", AssetClass.EQUITY, D("0.01"), D("0.01")))
    second.engine.ingest(ConnectionStatus(broker="paper", state=ConnectionState.CONNECTED, detail="back"))
    await second.engine.alerts.settle()
    assert second.engine.subscriptions().get("ZZTOP") == 1
    await second.broker.push_quote(Quote("ZZTOP", bid=D("10.00"), ask=D("10.02"), last=D("10.01")))
    await second.engine.settle()
    await second.engine.alerts.settle()
    assert [f.alert.symbol for f in second.fired()] == ["ZZTOP"]
    await second.stop()
