"""The webhook endpoint over real loopback HTTP, routed through the engine to scripted paper accounts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.hub_support import SECRET, hub_rig, hub_settings, now_iso, render
from tterm.core.models import OrderStatus, OrderType, PositionDrift, RiskAction, RiskDecision, SignalOutcome
from tterm.core.router import CheckContext


def orders(rig, account: str | None = None) -> list:
    snap = rig.engine._orders.values()
    return [o for o in snap if account is None or o.account == account]


def webhook_rows(rig) -> list:
    return rig.journal.entries(kind="webhook")


# --------------------------------------------------------------------------- every payload form


async def test_traderspost_buy_exit_and_cancel(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        status, body = await rig.post("trend", render("traderspost-buy.json"))
        assert status == 202 and body["ok"] and body["symbol"] == rig.contract()
        assert body["accounts"] == {"paper:A": f"BUY 1 {rig.contract()} at market in paper:A"}
        await rig.settle()
        assert rig.position("paper:A") == 1
        # A resting limit, then cancel it by alert.
        status, body = await rig.post(
            "trend",
            {"ticker": "MES1!", "action": "add", "quantity": 1, "orderType": "limit", "limitPrice": "4990",
             "time": now_iso(), "passphrase": SECRET},
        )  # fmt: skip
        assert status == 202, body
        await rig.settle()
        working = [o for o in orders(rig, "paper:A") if o.is_open]
        assert len(working) == 1 and working[0].limit_price == Decimal("4990.00")
        status, _ = await rig.post("trend", render("traderspost-cancel.json"))
        assert status == 202
        await rig.settle()
        assert not [o for o in orders(rig, "paper:A") if o.is_open]
        status, _ = await rig.post("trend", render("traderspost-exit.json"))
        assert status == 202
        await rig.settle()
        assert rig.position("paper:A") == 0


async def test_traderspost_limit_with_bracket(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        status, body = await rig.post("trend", render("traderspost-limit-bracket.json", **{"{{close}}": "5000.25"}))
        assert status == 202, body
        await rig.settle()
        placed = [o for o in orders(rig, "paper:A") if o.order_type is OrderType.LIMIT]
        assert placed and placed[0].limit_price == Decimal("5000.25") and placed[0].quantity == 2
        # The request carried a bracket 10 points (40 ticks) and 5 points (20 ticks) away.
        requests = [e.data for e in rig.journal.entries(kind="order_request")]
        assert requests[-1]["bracket"]["take_profit_ticks"] == 40
        assert requests[-1]["bracket"]["stop_loss_ticks"] == 20


async def test_pickmytrade_fans_out_to_named_accounts(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        body = render("pickmytrade.json")
        body = body.replace('"FUT50K"', '"A"').replace('"CASH"', '"B"')
        status, reply = await rig.post("fan", body)
        assert status == 202, reply
        assert set(reply["accounts"]) == {"paper:A", "paper:B"}
        await rig.settle()
        assert (rig.position("paper:A"), rig.position("paper:B"), rig.position("paper:C")) == (1, 2, 0)


async def test_pickmytrade_account_outside_the_strategy_is_refused(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        status, reply = await rig.post("trend", render("pickmytrade.json"))
        assert status == 403
        assert reply["error"] == "unauthorized" and "not mapped to strategy 'trend'" in reply["message"]
        await rig.settle()
        assert orders(rig) == []


async def test_target_position_heals_missed_and_repeated_alerts(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:

        def target(pos: str, size: int) -> str:
            return render(
                "target-position.json",
                **{"{{strategy.market_position}}": pos, "{{strategy.market_position_size}}": str(size),
                   "{{timenow}}": datetime.now(UTC).isoformat()},
            )  # fmt: skip

        await rig.post("trend", target("long", 2))
        await rig.settle()
        assert rig.position("paper:A") == 2
        # Repeated (new time, same target): nothing to do, still 2.
        status, reply = await rig.post("trend", target("long", 2))
        assert status == 202 and reply["accounts"]["paper:A"].startswith("nothing to do")
        await rig.settle()
        assert rig.position("paper:A") == 2
        # The "long 3" alert was missed; "short 1" still lands on -1, through flat.
        await rig.post("trend", target("short", 1))
        await rig.settle()
        assert rig.position("paper:A") == -1
        await rig.post("trend", target("flat", 0))
        await rig.settle()
        assert rig.position("paper:A") == 0


async def test_text_alerts(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        status, reply = await rig.post("trend", "buy 2 MES mkt tp 8 sl 16", path_secret=SECRET)
        assert status == 202, reply
        await rig.settle()
        assert rig.position("paper:A") == 2
        status, reply = await rig.post("trend", render("text-flatten.txt"), path_secret=SECRET)
        assert status == 202, reply
        await rig.settle()
        assert rig.position("paper:A") == 0
        # The passphrase may ride in the text itself.
        status, reply = await rig.post("trend", f"sell 1 MES mkt passphrase={SECRET}")
        assert status == 202, reply
        await rig.settle()
        assert rig.position("paper:A") == -1


async def test_symbol_map_and_default_quantity(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        await rig.quote("MNQ1!", "21000.00", "21000.25")
        status, reply = await rig.post("mapped", {"ticker": "NQ1!", "action": "buy", "passphrase": SECRET})
        assert status == 202, reply
        assert reply["symbol"] == rig.contract("MNQ1!")
        await rig.settle()
        assert rig.position("paper:B", "MNQ1!") == 3


# --------------------------------------------------------------------------- fan-out and reversal


async def test_fan_out_to_three_accounts_with_multipliers(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        body = {"ticker": "MES1!", "action": "buy", "quantity": 4, "time": now_iso(), "passphrase": SECRET}
        status, reply = await rig.post("fan", body)
        assert status == 202
        assert set(reply["accounts"]) == {"paper:A", "paper:B", "paper:C"}
        await rig.settle()
        assert (rig.position("paper:A"), rig.position("paper:B"), rig.position("paper:C")) == (4, 8, 2)
        outcomes = [e.data for e in rig.journal.entries(kind="signal", ref=reply["id"])]
        per_account = {o["account"]: o["status"] for o in outcomes if o["account"]}
        assert per_account == {"paper:A": "done", "paper:B": "done", "paper:C": "done"}
        assert outcomes[-1]["account"] == "" and outcomes[-1]["status"] == "done"


async def test_reversal_exit_fills_before_the_entry(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        await rig.post("trend", {"ticker": "MES1!", "action": "sell", "quantity": 2, "passphrase": SECRET})
        await rig.settle()
        assert rig.position("paper:A") == -2
        status, reply = await rig.post(
            "trend", {"ticker": "MES1!", "action": "buy", "quantity": 3, "passphrase": SECRET}
        )
        assert status == 202
        assert "wait until" in reply["accounts"]["paper:A"]
        await rig.settle()
        assert rig.position("paper:A") == 3
        fills = [e.data for e in rig.journal.entries(kind="fill")]
        # The cover (buy 2, reduce-only) filled before the entry (buy 3) was even sent.
        cover = next(i for i, f in enumerate(fills) if f["quantity"] == 2 and f["side"] == "buy")
        entry_request = next(e.id for e in rig.journal.entries(kind="order_request") if e.data["quantity"] == 3)
        cover_fill_row = list(rig.journal.entries(kind="fill"))[cover].id
        assert cover_fill_row < entry_request


class BlockCovers:
    """A pre-trade check that refuses every reduce-only order (so an exit cannot go out)."""

    name = "test-block-covers"

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if ctx.request.reduce_only:
            return RiskDecision(
                client_order_id=ctx.request.client_order_id,
                account=ctx.request.account,
                action=RiskAction.REJECT,
                reasons=("exits are blocked in this test",),
                check=self.name,
            )
        return None


async def test_reversal_does_not_enter_when_the_exit_fails(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, checks=(BlockCovers(),)) as rig:
        await rig.post("trend", {"ticker": "MES1!", "action": "sell", "quantity": 1, "passphrase": SECRET})
        await rig.settle()
        assert rig.position("paper:A") == -1
        status, reply = await rig.post(
            "trend", {"ticker": "MES1!", "action": "buy", "quantity": 1, "passphrase": SECRET}
        )
        # Every account's first step (the cover) is refused, so the reply says so at once.
        assert (status, reply["error"]) == (422, "risk-rejected")
        await rig.settle()
        assert rig.position("paper:A") == -1
        buys = [e for e in rig.journal.entries(kind="order_request") if e.data["side"] == "buy"]
        assert buys == []


async def test_entry_waits_for_the_exit_fill_and_gives_up_after_the_timeout(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(exit_fill_timeout=0.2)) as rig:
        await rig.post("trend", {"ticker": "MES1!", "action": "sell", "quantity": 1, "passphrase": SECRET})
        await rig.settle()
        # The broker accepts the cover but it never fills: hold back every fill event from now on.
        pump_events = []
        original = rig.engine._on_fill

        def swallow(fill, journal=True):
            pump_events.append(fill)
            return False

        from tterm.core.models import Fill

        rig.engine._dispatch[Fill] = swallow
        status, reply = await rig.post(
            "trend", {"ticker": "MES1!", "action": "buy", "quantity": 1, "passphrase": SECRET}
        )
        assert status == 202
        await rig.settle()
        outcome = [e.data for e in rig.journal.entries(kind="signal", ref=reply["id"]) if e.data["account"]][-1]
        assert outcome["status"] == "failed"
        assert "did not fill within 0.2 s" in outcome["summary"] and "entry not sent" in outcome["summary"]
        entries = [e for e in rig.journal.entries(kind="order_request") if e.data["side"] == "buy"]
        assert len(entries) == 1 and entries[0].data["reduce_only"]  # only the cover went out
        rig.engine._dispatch[Fill] = original


# --------------------------------------------------------------------------- authentication and limits


async def test_wrong_secret_is_401_and_trades_nothing(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        body = render("traderspost-buy.json").replace(SECRET, "wrong-secret-value")
        status, reply = await rig.post("trend", body)
        assert (status, reply["error"]) == (401, "unauthorized")
        status, reply = await rig.post("trend", "buy 1 MES mkt", path_secret="nope")
        assert status == 401
        status, reply = await rig.post("trend", {"ticker": "MES1!", "action": "buy", "quantity": 1})
        assert status == 401  # no secret at all
        await rig.settle()
        assert orders(rig) == []
        rows = webhook_rows(rig)
        assert len(rows) == 3 and all(r.data["outcome"] == "unauthorized" for r in rows)
        # Neither the right nor the wrong secret reaches the journal.
        text = json.dumps([r.data for r in rows])
        assert "wrong-secret-value" not in text and SECRET not in text
        assert rows[1].data["path"] == "/webhook/trend/****"


async def test_secret_is_masked_in_journaled_bodies(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        await rig.post("trend", render("traderspost-buy.json"))
        await rig.post("fan", render("pickmytrade.json").replace('"FUT50K"', '"A"').replace('"CASH"', '"B"'))
        await rig.post("trend", f"buy 1 MES mkt passphrase={SECRET}")
        await rig.settle()
        raw = (tmp_path / "journal.sqlite3").read_bytes() + (tmp_path / "journal.sqlite3-wal").read_bytes()
        assert SECRET.encode() not in raw
        rows = webhook_rows(rig)
        assert len(rows) == 3 and all(r.data["outcome"] == "accepted" for r in rows)
        assert '"ticker"' in rows[0].data["body"]


async def test_disallowed_ip_is_403(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(tradingview_ips_only=True)) as rig:
        status, reply = await rig.post("trend", render("traderspost-buy.json"))
        assert (status, reply["error"]) == (403, "unauthorized")
        assert "127.0.0.1 is not on the webhook allow-list" in reply["message"]
        # A spoofed X-Forwarded-For is ignored unless proxy headers are trusted.
        status, _ = await rig.post(
            "trend", render("traderspost-buy.json"), headers={"X-Forwarded-For": "52.89.214.238"}
        )
        assert status == 403
        await rig.settle()
        assert orders(rig) == []


async def test_proxy_headers_when_trusted(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(tradingview_ips_only=True, trust_proxy=True)) as rig:
        ok = {"X-Forwarded-For": "198.51.100.9, 52.89.214.238"}
        status, reply = await rig.post("trend", render("traderspost-buy.json"), headers=ok)
        assert status == 202, reply
        bad = {"X-Forwarded-For": "52.89.214.238, 198.51.100.9"}  # the proxy saw 198.51.100.9
        status, _ = await rig.post("trend", render("traderspost-buy.json"), headers=bad)
        assert status == 403
        assert webhook_rows(rig)[0].data["source"] == "52.89.214.238"


async def test_extra_allowed_ips(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(tradingview_ips_only=True, allowed_ips=["127.0.0.0/8"])) as rig:
        status, _ = await rig.post("trend", render("traderspost-buy.json"))
        assert status == 202


async def test_body_size_limit(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(max_body_bytes=1024)) as rig:
        body = json.dumps({"ticker": "MES1!", "action": "buy", "quantity": 1, "passphrase": SECRET, "pad": "x" * 2000})
        status, reply = await rig.post("trend", body)
        assert (status, reply["error"]) == (413, "too-large")
        assert webhook_rows(rig)[0].data["outcome"] == "too-large"


async def test_rate_limit_per_source(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(rate_limit=0.001, rate_burst=2)) as rig:
        codes = [(await rig.post("trend", "cancel all", path_secret=SECRET))[0] for _ in range(4)]
        assert codes[:2] == [202, 202] and codes[2:] == [429, 429]


async def test_unknown_strategy_is_404_after_authentication(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        status, reply = await rig.post("nope", render("traderspost-buy.json"))
        assert (status, reply["error"]) == (404, "unknown-strategy")
        status, _ = await rig.post("nope", "buy 1 MES mkt")  # unauthenticated: no hint that it does not exist
        assert status == 401


async def test_no_webhook_secret_configured_refuses_everything(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, webhook_secret=None) as rig:
        status, reply = await rig.post("trend", render("traderspost-buy.json"))
        assert status == 401 and "no webhook secret configured" in reply["message"]


# --------------------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("", 400, "malformed"),
        ('{"ticker": "MES1!", "action": "buy", "quantity": 1, "passphrase": "' + SECRET + '"', 400, "malformed"),
        ('{"passphrase": "' + SECRET + '", "hello": 1}', 400, "malformed"),
        ('{"passphrase": "' + SECRET + '", "ticker": "MES1!", "action": "buy", "quantity": "two"}', 400, "malformed"),
        ('{"passphrase": "' + SECRET + '", "ticker": "ZZZ9!", "action": "buy", "quantity": 1}', 422, "unknown-ticker"),
        ('{"passphrase": "' + SECRET + '", "ticker": "MES1!", "action": "hold"}', 422, "invalid-action"),
        ('{"passphrase": "' + SECRET + '", "ticker": "MES1!", "action": "buy"}', 422, "invalid-action"),
        ("buy two MES mkt", 400, "malformed"),
        ("theme dark", 422, "invalid-action"),
    ],
)
async def test_malformed_bodies_get_a_typed_error_and_trade_nothing(
    tmp_path: Path, body: str, status: int, error: str
) -> None:
    async with hub_rig(tmp_path) as rig:
        got, reply = await rig.post("trend", body, path_secret=SECRET)
        assert (got, reply["ok"], reply["error"]) == (status, False, error), reply
        assert reply["message"]
        await rig.settle()
        assert orders(rig) == []
        row = webhook_rows(rig)[-1].data
        assert row["outcome"] == error and row["status"] == status


async def test_invalid_json_from_an_empty_placeholder_is_repaired(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        body = '{"ticker": "MES1!", "action": "buy", "quantity": 1, "price": , "passphrase": "' + SECRET + '"}'
        status, reply = await rig.post("trend", body)
        assert status == 202, reply
        assert "repaired" in webhook_rows(rig)[-1].data


# --------------------------------------------------------------------------- staleness and duplicates


async def test_stale_alert_is_refused(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        old = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
        status, reply = await rig.post("trend", render("traderspost-buy.json", **{"{{timenow}}": old}))
        assert (status, reply["error"]) == (422, "stale")
        assert "s old (limit 60 s)" in reply["message"]
        future = (datetime.now(UTC) + timedelta(seconds=300)).isoformat()
        status, reply = await rig.post("trend", render("traderspost-buy.json", **{"{{timenow}}": future}))
        assert (status, reply["error"]) == (422, "stale") and "future" in reply["message"]
        await rig.settle()
        assert orders(rig) == []


async def test_100_concurrent_copies_make_exactly_one_order(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        body = render("traderspost-buy.json")
        results = await asyncio.gather(*(rig.post("trend", body) for _ in range(100)))
        accepted = [r for s, r in results if s == 202]
        duplicates = [r for s, r in results if s == 200 and r["error"] == "duplicate"]
        assert len(accepted) == 1 and len(duplicates) == 99
        assert {r["id"] for r in duplicates} == {accepted[0]["id"]}
        await rig.settle()
        assert len(orders(rig, "paper:A")) == 1
        assert rig.position("paper:A") == 1
        assert len(webhook_rows(rig)) == 100


async def test_duplicate_is_remembered_across_a_restart(tmp_path: Path) -> None:
    body = render("traderspost-buy.json")
    async with hub_rig(tmp_path) as rig:
        status, first = await rig.post("trend", body)
        assert status == 202
        await rig.settle()
    async with hub_rig(tmp_path) as rig:
        status, reply = await rig.post("trend", body)
        assert (status, reply["error"], reply["id"]) == (200, "duplicate", first["id"])
        await rig.settle()
        assert rig.position("paper:A") == 1  # restored from the paper store, not bought again


async def test_an_exit_and_an_entry_in_the_same_second_are_not_duplicates(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        t = now_iso()
        s1, _ = await rig.post(
            "trend", {"ticker": "MES1!", "action": "buy", "quantity": 1, "time": t, "passphrase": SECRET}
        )
        s2, _ = await rig.post("trend", {"ticker": "MES1!", "action": "exit", "time": t, "passphrase": SECRET})
        assert (s1, s2) == (202, 202)


# --------------------------------------------------------------------------- risk


class BlockMES:
    """A test pre-trade check standing in for the risk engine: no MES in account A."""

    name = "test-block"

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if ctx.request.account == "paper:A" and ctx.instrument.root == "MES" and not ctx.request.reduce_only:
            return RiskDecision(
                client_order_id=ctx.request.client_order_id,
                account=ctx.request.account,
                action=RiskAction.REJECT,
                reasons=("worst case crosses the daily loss limit",),
                check=self.name,
            )
        return None


async def test_risk_rejected_alert(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, checks=(BlockMES(),)) as rig:
        status, reply = await rig.post("trend", render("traderspost-buy.json"))
        assert (status, reply["error"]) == (422, "risk-rejected")
        assert "worst case crosses the daily loss limit" in reply["message"]
        await rig.settle()
        assert [o for o in orders(rig) if o.status is not OrderStatus.REJECTED] == []
        outcome = [e.data for e in rig.journal.entries(kind="signal", ref=reply["id"])]
        assert outcome[0]["status"] == "rejected" and outcome[0]["error"] == "risk-rejected"


async def test_risk_rejected_in_one_account_of_a_fan_out(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, checks=(BlockMES(),)) as rig:
        status, reply = await rig.post("fan", {"ticker": "MES1!", "action": "buy", "quantity": 2, "passphrase": SECRET})
        assert status == 202
        await rig.settle()
        assert (rig.position("paper:A"), rig.position("paper:B"), rig.position("paper:C")) == (0, 4, 1)
        per_account = {
            e.data["account"]: (e.data["status"], e.data["error"])
            for e in rig.journal.entries(kind="signal", ref=reply["id"])
            if e.data["account"]
        }
        assert per_account["paper:A"] == ("rejected", "risk-rejected")


# --------------------------------------------------------------------------- outcomes and drift


async def test_outcomes_are_published_on_the_engine_bus(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        sub = rig.engine.bus.subscribe("test", wants=(SignalOutcome,))
        _, reply = await rig.post("trend", render("traderspost-buy.json"))
        await rig.settle()
        got = sub.drain()
        assert [o.status.value for o in got] == ["accepted", "done", "done"]
        assert all(o.signal_id == reply["id"] for o in got)
        snap = await rig.hub.server.snapshot()
        assert [o.signal_id for o in snap.signals][-1] == reply["id"]


async def test_drift_alarm_for_target_strategies(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, settings=hub_settings(drift_grace=0)) as rig:
        sub = rig.engine.bus.subscribe("test", wants=(PositionDrift,))
        await rig.post("trend", render("target-position.json"))  # long 1
        await rig.settle()
        assert rig.hub.router.check_drift() == []
        # Someone closes the position by hand: the strategy still expects long 1.
        await rig.engine.flatten("paper:A")
        await rig.settle()
        alarms = rig.hub.router.check_drift()
        assert len(alarms) == 1 and (alarms[0].expected, alarms[0].actual) == (1, 0)
        assert rig.hub.router.check_drift() == []  # raised once, not every check
        notices = [e.data["text"] for e in rig.journal.entries(kind="notice") if "drift" in e.data.get("text", "")]
        assert notices and "expects +1" in notices[-1]
        # The next target alert heals it, and the alarm clears.
        await rig.post("trend", render("target-position.json", **{"{{timenow}}": datetime.now(UTC).isoformat()}))
        await rig.settle()
        cleared = rig.hub.router.check_drift()
        assert len(cleared) == 1 and not cleared[0].drifted
        assert [d.drifted for d in sub.drain()] == [True, False]


async def test_health(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        async with rig.http.get(f"{rig.url}/health") as resp:
            body = await resp.json()
        assert body["ok"] and "accounts" not in body
        async with rig.http.get(f"{rig.url}/health", headers={"Authorization": "Bearer api-token-0987654321"}) as resp:
            body = await resp.json()
        assert body["accounts"] == ["paper:A", "paper:B", "paper:C"] and body["strategies"] == [
            "fan",
            "mapped",
            "trend",
        ]


class NeedsQuote:
    """Like the risk engine's stale-data check: no quote, no new exposure."""

    name = "test-needs-quote"

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        if ctx.quote is None:
            return RiskDecision(
                client_order_id=ctx.request.client_order_id,
                account=ctx.request.account,
                action=RiskAction.REJECT,
                reasons=(f"no market data for {ctx.instrument.symbol}",),
                check=self.name,
            )
        return None


async def test_first_alert_for_a_symbol_subscribes_and_waits_for_a_quote(tmp_path: Path) -> None:
    async with hub_rig(tmp_path, checks=(NeedsQuote(),)) as rig:
        contract = rig.contract("M2K1!")
        status, reply = await rig.post(
            "trend", {"ticker": "M2K1!", "action": "buy", "quantity": 1, "passphrase": SECRET}
        )
        assert status == 202, reply
        assert reply["accounts"]["paper:A"] == f"planned when the first {contract} quote arrives"
        stream = rig.engine.events("test")
        while contract not in rig.engine.subscriptions():
            await asyncio.wait_for(stream.wait(), 5)
            stream.drain()
        await rig.quote("M2K1!", "2100.0", "2100.1")
        await rig.settle()
        assert rig.position("paper:A", "M2K1!") == 1
