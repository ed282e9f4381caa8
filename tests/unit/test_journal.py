"""The journal: a full order round trip recorded, read back and exported; redaction; WAL; state."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core.journal import JOURNAL_KINDS, Journal, JournalEntry, to_jsonable
from tterm.core.models import (
    AccountLock,
    AccountSnapshot,
    Bracket,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Notice,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    RiskAction,
    RiskDecision,
    RiskStatus,
    Side,
)
from tterm.core.redact import MASK, is_secret_key, mask, normalize_key, redact, redact_text

T0 = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)


class StepClock:
    """A clock that advances one second per call, so rows get distinct, known timestamps."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "data" / "journal.sqlite3", clock=StepClock())
    yield j
    j.close()


def _round_trip(j: Journal) -> list[int]:
    """Record the life of two orders: one bought in two fills, one limit cancelled."""
    req = OrderRequest(
        account="paper:FUT50K",
        symbol="MESM6",
        side=Side.BUY,
        quantity=3,
        order_type=OrderType.LIMIT,
        limit_price=Decimal("5012.25"),
        bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4),
        client_order_id="ttA",
    )
    working = Order(
        order_id="1",
        client_order_id="ttA",
        account="paper:FUT50K",
        symbol="MESM6",
        side=Side.BUY,
        quantity=3,
        order_type=OrderType.LIMIT,
        status=OrderStatus.WORKING,
        limit_price=Decimal("5012.25"),
        broker="paper",
    )
    fill1 = Fill("f1", "1", "ttA", "paper:FUT50K", "MESM6", Side.BUY, 1, Decimal("5012.25"), Decimal("0.62"))
    fill2 = Fill("f2", "1", "ttA", "paper:FUT50K", "MESM6", Side.BUY, 2, Decimal("5012.00"), Decimal("1.24"))
    decision = RiskDecision("ttA", "paper:FUT50K", RiskAction.ALLOW, ("worst case -$15.00",), "dll", Decimal(-15))
    ids = [
        j.record_event(decision),
        j.record("order_request", req, account=req.account, ref=req.client_order_id),
        j.record("order_ack", working, account=working.account, ref=working.client_order_id),
        j.record_event(working),
        j.record_event(fill1),
        j.record_event(working.evolve(status=OrderStatus.PARTIALLY_FILLED, filled_quantity=1)),
        j.record_event(fill2),
        j.record_event(
            working.evolve(status=OrderStatus.FILLED, filled_quantity=3, avg_fill_price=Decimal("5012.0833"))
        ),
        j.record("cancel_request", {"client_order_id": "ttB", "order_id": "2"}, account="paper:FUT50K", ref="ttB"),
        j.record_event(
            working.evolve(
                order_id="2", client_order_id="ttB", status=OrderStatus.CANCELLED, limit_price=Decimal("5000")
            )
        ),
        j.record_event(ConnectionStatus("paper", ConnectionState.RECONNECTING, "feed gap")),
        j.record_event(ConnectionStatus("paper", ConnectionState.CONNECTED)),
    ]
    assert all(isinstance(i, int) for i in ids)
    return ids  # type: ignore[return-value]


EXPECTED_KINDS = [
    "risk_decision",
    "order_request",
    "order_ack",
    "order_update",
    "fill",
    "order_update",
    "fill",
    "order_update",
    "cancel_request",
    "order_update",
    "connection",
    "connection",
]


def test_full_round_trip_reads_back_in_order(journal: Journal) -> None:
    ids = _round_trip(journal)
    assert ids == sorted(ids)
    rows = journal.entries()
    assert [r.kind for r in rows] == EXPECTED_KINDS
    assert [r.id for r in rows] == ids
    assert [r.ts for r in rows] == [T0 + timedelta(seconds=i + 1) for i in range(len(ids))]
    assert all(r.ts.tzinfo is not None for r in rows)

    req = rows[1].data
    assert (rows[1].account, rows[1].ref) == ("paper:FUT50K", "ttA")
    assert req["limit_price"] == "5012.25"  # Decimal as str
    assert req["side"] == "buy" and req["order_type"] == "limit"  # enums by value
    assert req["bracket"] == {
        "take_profit_ticks": 8,
        "stop_loss_ticks": 4,
        "take_profit_price": None,
        "stop_loss_price": None,
    }
    assert datetime.fromisoformat(req["created_at"]).tzinfo is not None

    fills = journal.entries(kind="fill")
    assert [(f.data["quantity"], Decimal(f.data["price"]), Decimal(f.data["fee"])) for f in fills] == [
        (1, Decimal("5012.25"), Decimal("0.62")),
        (2, Decimal("5012.00"), Decimal("1.24")),
    ]
    statuses = [r.data["status"] for r in journal.entries(kind="order_update", ref="ttA")]
    assert statuses == ["working", "partially_filled", "filled"]
    assert journal.entries(ref="ttB", kind="order_update")[0].data["status"] == "cancelled"
    risk = journal.entries(kind="risk_decision")[0]
    assert risk.data["reasons"] == ["worst case -$15.00"] and risk.data["worst_case"] == "-15"
    conn = journal.entries(kind="connection")
    assert [(c.ref, c.data["state"]) for c in conn] == [("paper", "reconnecting"), ("paper", "connected")]


def test_export_csv_and_jsonl_parse_back(journal: Journal) -> None:
    _round_trip(journal)
    rows = journal.entries()

    buf = io.StringIO()
    assert journal.export("csv", buf) == len(rows)
    parsed = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [int(p["id"]) for p in parsed] == [r.id for r in rows]
    assert [p["kind"] for p in parsed] == EXPECTED_KINDS
    assert [json.loads(p["data"]) for p in parsed] == [r.data for r in rows]
    assert [datetime.fromisoformat(p["ts"]) for p in parsed] == [r.ts for r in rows]
    assert [(p["account"], p["ref"]) for p in parsed] == [(r.account, r.ref) for r in rows]

    buf = io.StringIO()
    assert journal.export("jsonl", buf) == len(rows)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [
        JournalEntry(d["id"], datetime.fromisoformat(d["ts"]), d["kind"], d["account"], d["ref"], d["data"])
        for d in lines
    ] == rows

    buf = io.StringIO()
    assert journal.export("jsonl", buf, kind=["fill", "risk_decision"], since=rows[3].ts) == 2
    assert [json.loads(line)["kind"] for line in buf.getvalue().splitlines()] == ["fill", "fill"]
    with pytest.raises(ValueError, match="unknown export format"):
        journal.export("xml", io.StringIO())  # type: ignore[arg-type]


def test_filters(journal: Journal) -> None:
    _round_trip(journal)
    journal.record("notice", {"text": "other account"}, account="paper:CASH")
    assert [r.kind for r in journal.entries(account="paper:CASH")] == ["notice"]
    assert len(journal.entries(kind=["fill", "connection"])) == 4
    newest = journal.entries(limit=2, newest_first=True)
    assert [r.kind for r in newest] == ["notice", "connection"]
    window = journal.entries(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    assert [r.kind for r in window] == ["order_request", "order_ack"]
    assert journal.entries(kind="webhook") == []
    with pytest.raises(ValueError, match="unknown journal kind 'fills'"):
        journal.entries(kind="fills")
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.entries(since=datetime(2026, 1, 1))


def test_record_rejects_unknown_kind_and_naive_time(journal: Journal) -> None:
    with pytest.raises(ValueError, match="unknown journal kind 'ordr'"):
        journal.record("ordr", {})
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.record("notice", {}, ts=datetime(2026, 1, 1, 12))
    assert journal.count() == 0
    assert {
        "order_request",
        "order_ack",
        "order_reject",
        "order_update",
        "fill",
        "cancel_request",
        "modify_request",
        "flatten",
        "risk_decision",
        "lock",
        "connection",
        "notice",
        "webhook",
        "signal",
        "error",
        "group_request",
        "emulation",
        "login",
        "alert",
        "broker_preview",
    } == JOURNAL_KINDS


def test_record_event_kinds_and_skips(journal: Journal) -> None:
    lock = AccountLock("paper:FUT50K", True, "daily loss limit hit", by="risk")
    notice = Notice("warning", "feed stale", account="paper:FUT50K", source="paper")
    assert journal.record_event(lock) is not None
    assert journal.record_event(notice) is not None
    skipped = [
        Quote("MESM6", Decimal("5000"), Decimal("5000.25")),
        Position("paper:FUT50K", "MESM6", 1),
        AccountSnapshot("paper:FUT50K", Decimal(50000), Decimal(50000)),
        RiskStatus("paper:FUT50K", "p", Decimal(1), Decimal(1), Decimal(0)),
        object(),
    ]
    assert [journal.record_event(e) for e in skipped] == [None] * len(skipped)
    rows = journal.entries()
    assert [(r.kind, r.account, r.ref) for r in rows] == [
        ("lock", "paper:FUT50K", "risk"),
        ("notice", "paper:FUT50K", "paper"),
    ]
    assert rows[0].data["reason"] == "daily loss limit hit"


def test_non_mapping_payload_is_wrapped(journal: Journal) -> None:
    journal.record("error", "broker said no")
    journal.record("signal", [1, Decimal("2.5")])
    assert [r.data for r in journal.entries()] == [{"value": "broker said no"}, {"value": [1, "2.5"]}]


def test_wal_mode_and_each_record_committed(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "journal.sqlite3"
    j = Journal(path)
    assert j.journal_mode == "wal"
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j.record("notice", {"text": "one"})
    # Visible to another connection at once: the record was committed, not left in a transaction.
    assert other.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 1
    names = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"journal_ts", "journal_kind", "journal_ref", "journal_account"} <= names
    other.close()
    j.close()
    j.close()  # idempotent


def test_memory_journal() -> None:
    with Journal(":memory:") as j:
        j.record("notice", {"text": "hi"})
        assert j.count() == 1


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        assert j.get_state("risk:hwm:paper:FUT50K") is None
        assert j.get_state("missing", default=7) == 7
        j.set_state("risk:hwm:paper:FUT50K", {"hwm": Decimal("51234.50"), "at": T0})
        j.set_state("locks", ["paper:FUT50K"])
        j.set_state("locks", ["paper:FUT50K", "paper:CASH"])
        j.record("notice", {"text": "kept"})
    with Journal(path) as j:
        assert j.get_state("risk:hwm:paper:FUT50K") == {"hwm": "51234.50", "at": T0.isoformat()}
        assert j.get_state("locks") == ["paper:FUT50K", "paper:CASH"]
        assert [r.data for r in j.entries()] == [{"text": "kept"}]


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    from tterm.core.journal import JournalError

    with pytest.raises(JournalError, match="newer"):
        Journal(path)


# --------------------------------------------------------------------------- redaction


def test_journal_row_never_contains_a_secret(tmp_path: Path) -> None:
    secrets = ["hunter2-PASSWORD-xyz", "AKIAVERYSECRETKEY99", "eyJhbGciOiJIUzI1NiJ9.payload.sig", "SECVALUE123"]
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        j.record(
            "webhook",
            {
                "passphrase": secrets[0],
                "order": {"apiKey": secrets[1], "symbol": "MES1!"},
                "headers": [{"Authorization": f"Bearer {secrets[2]}"}],
                "note": f"login failed for password={secrets[0]}",
            },
        )
        j.record("error", {"request": {"name": "me", "password": secrets[0], "cid": 8, "sec": secrets[3]}})
        rows = j.entries()
    assert rows[0].data["order"]["symbol"] == "MES1!"
    assert rows[0].data["passphrase"] == MASK + secrets[0][-2:]
    assert rows[1].data["request"]["name"] == "me"
    # The database and its write-ahead log, byte for byte, as they sit on disk.
    raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    assert b"MES1!" in raw
    for s in secrets:
        assert s.encode() not in raw
        assert s[:-2] not in json.dumps([r.data for r in rows])


_ALPHA = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=6, max_size=40)
_SECRET_KEYS = st.sampled_from(
    ["password", "Password", "PASSWORD", "secret", "token", "access_token", "accessToken", "refresh-token",
     "RefreshToken", "api_key", "apiKey", "API-KEY", "apikey", "passphrase", "sec", "cid", "authorization",
     "Authorization", "key", "client_secret", "app_key", "md_access_token"]
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(key=_SECRET_KEYS, secret=_ALPHA, depth=st.integers(0, 3), as_list=st.booleans())
def test_secret_never_stored_property(key: str, secret: str, depth: int, as_list: bool) -> None:
    payload: object = {key: secret, "symbol": "mes"}
    for _ in range(depth):
        payload = {"wrap": [payload] if as_list else payload}
    with Journal(":memory:") as j:
        j.record("webhook", payload)
        stored = json.dumps(j.entries()[0].data)
    assert secret not in stored
    assert "mes" in stored


def test_redact_masks_keys_in_every_spelling() -> None:
    for k in ["password", "userPassword", "Refresh-Token", "REFRESH_TOKEN", "apiKey", "x-api-key", "sec", "CID"]:
        assert is_secret_key(k), k
    for k in ["symbol", "client_order_id", "account", "side", "dedup_key", "secondary", "cidr"]:
        assert not is_secret_key(k), k
    assert normalize_key("refreshToken") == normalize_key("Refresh-Token") == "refresh_token"


def test_redact_copies_and_keeps_shape() -> None:
    original = {"token": "abcdefghij", "items": ({"password": "p"},), "n": 5, "empty": {"secret": ""}}
    out = redact(original)
    assert out == {"token": "****ij", "items": ({"password": "****"},), "n": 5, "empty": {"secret": ""}}
    assert original["token"] == "abcdefghij"  # the input is untouched
    assert redact({"credentials": {"user": "u", "pw": "x"}})["credentials"] == MASK


def test_mask() -> None:
    assert mask("") == MASK
    assert mask("abc") == MASK
    assert mask("abcdefgh") == "****gh"
    assert mask(12345678) == "****78"  # type: ignore[arg-type]


def test_redact_text() -> None:
    text = 'GET /x?access_token=abcdef123456&sym=MES {"sec": "topsecretvalue"} Authorization: Bearer tok.en.value99'
    out = redact_text(text)
    for s in ["abcdef123456", "topsecretvalue", "tok.en.value99"]:
        assert s not in out
    assert "sym=MES" in out
    assert redact_text("5 sec: retry") == "5 sec: retry"


def test_to_jsonable_types() -> None:
    assert to_jsonable({"a": (1, Decimal("1.50")), "b": {Side.BUY}, "p": Path("/x")}) == {
        "a": [1, "1.50"],
        "b": ["buy"],
        "p": "/x",
    }


async def test_group_commit_on_the_writer_thread_and_flush_writes_ahead(tmp_path):
    """Rows recorded in one loop pass go to the writer thread together at its end and commit
    there while the loop goes on; durable() waits for that commit; flush() commits at once, so a
    second process (the export, a crash restart) sees what was flushed before any action."""
    import asyncio as _asyncio
    import threading

    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    reader = Journal(path)
    journal.record("notice", {"text": "one"})
    journal.record("notice", {"text": "two"})
    assert reader.count() == 0  # not yet committed: same pass
    await journal.durable()
    assert reader.count() == 2  # committed by the writer thread
    assert journal.writer._thread is not None and journal.writer._thread is not threading.current_thread()
    assert journal.count() == 2  # the writer's own reads see its writes
    journal.record("order_request", {"symbol": "MESZ6"}, ref="c1")
    journal.flush()
    assert reader.count() == 3  # write-ahead: visible before anything is awaited
    journal.record("notice", {"text": "read your writes"})
    assert [e.data["text"] for e in journal.entries(kind="notice")][-1] == "read your writes"
    journal.set_state("k", {"v": 1})
    assert journal.get_state("k") == {"v": 1}
    journal.set_state("k", {"v": 2})
    journal.close()  # close commits what is pending
    assert reader.get_state("k") == {"v": 2}
    reader.close()
    await _asyncio.sleep(0)


def test_outside_a_loop_every_record_commits_at_once(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    reader = Journal(path)
    journal.record("notice", {"text": "one"})
    assert reader.count() == 1
    journal.close()
    reader.close()


async def test_durable_waiters_in_one_pass_share_one_commit(tmp_path):
    import asyncio as _asyncio

    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    reader = Journal(path)
    before = journal.writer.batches

    async def place(n: int) -> int:
        journal.record("order_request", {"n": n}, ref=f"c{n}")
        await journal.durable()
        return reader.count()  # what a second process sees the moment this order may go out

    seen = await _asyncio.gather(*(place(n) for n in range(10)))
    assert journal.writer.batches - before == 1
    assert min(seen) == 10  # every request was on disk before any of them was "sent"
    journal.close()
    reader.close()


async def test_ids_survive_a_restart_and_rows_keep_their_order(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    first = [journal.record("notice", {"n": n}) for n in range(3)]
    await journal.durable()
    journal.close()
    again = Journal(path)
    later = again.record("notice", {"n": 3})
    assert later == first[-1] + 1
    assert [e.id for e in again.entries()] == [*first, later]
    again.close()


def test_core_events_are_scrubbed_every_time_they_are_recorded(tmp_path: Path) -> None:
    """The fast path for our own dataclasses (field list and scrubbed strings remembered between
    rows) still masks a credential echoed in free text, on the first row and every later one."""
    from tterm.core.models import Notice, Order, OrderStatus, OrderType, Side

    secret = "TOPSECRETVALUE42"
    reason = f"vendor said: invalid token={secret}"
    order = Order(
        order_id="O1",
        client_order_id="c1",
        account="paper:A",
        symbol="MESZ6",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.MARKET,
        status=OrderStatus.REJECTED,
        reject_reason=reason,
        broker="paper",
    )
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as j:
        for _ in range(3):
            j.record_event(order)
            j.record_event(Notice(level="error", text=f"login failed: Bearer {secret}", source="t"))
        rows = j.entries()
    assert [r.kind for r in rows] == ["order_update", "notice"] * 3
    for r in rows[::2]:
        assert r.data["status"] == "rejected" and r.data["side"] == "buy" and r.data["quantity"] == 1
        assert r.data["reject_reason"].startswith("vendor said: invalid token=****")
    raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    assert secret.encode() not in raw


_KEYS = st.sampled_from(["symbol", "note", "password", "apiKey", "sec", "token", "dedup_key", "accounts", "x"])


@dataclass(frozen=True)
class _Login:
    user: str
    token: str
    limit: Decimal | None = None


_LEAVES = (
    st.builds(_Login, st.sampled_from(["me", "Bearer zzzzzzzz1"]), st.text(max_size=12), st.none() | st.decimals(0, 9))
    | st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | st.sampled_from(["", "MESZ6", "password=hunter22 ok", "Bearer abcdef123", "plain text", "token: xyz"])
    | st.text(max_size=20)
)
_PAYLOADS = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(_KEYS, _PAYLOADS, max_size=5))
def test_one_walk_cleaning_equals_redact_of_jsonable(payload: dict) -> None:
    """The journal's single-pass cleaning of mapping payloads is exactly redact(to_jsonable(x))."""
    from tterm.core.journal import _clean

    assert _clean(payload) == redact(to_jsonable(payload))


async def test_a_closed_journal_refuses_rows_instead_of_queueing_them(tmp_path: Path) -> None:
    import sqlite3

    journal = Journal(tmp_path / "j.sqlite3")
    journal.record("notice", {"text": "kept"})
    journal.close()
    with pytest.raises(sqlite3.ProgrammingError):
        journal.record("notice", {"text": "after close"})
    journal.close()  # idempotent
    reader = Journal(tmp_path / "j.sqlite3")
    assert [e.data["text"] for e in reader.entries()] == ["kept"]
    reader.close()
