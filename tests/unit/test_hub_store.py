"""The hub's store: alone it commits every write; joined to the journal it commits with it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tterm.core.journal import Journal
from tterm.hub.store import SignalStore

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _insert(store: SignalStore, sid: str, key: str) -> str | None:
    return store.insert_signal(
        signal_id=sid,
        dedup_key=key,
        strategy="s",
        ticker="MES1!",
        symbol="MESZ6",
        form="traderspost",
        received_at=NOW,
        alert_time=NOW,
        signal={"action": "buy"},
        targets=[("paper:A", "1")],
    )


def _count(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


def test_a_store_on_its_own_commits_every_write(tmp_path: Path) -> None:
    store = SignalStore(tmp_path / "hub.sqlite3")
    assert _insert(store, "a1", "k1") is None
    assert _count(tmp_path / "hub.sqlite3", "signals") == 1
    store.record_steps("a1", "paper:A", [("order", {"n": 1}, "c1"), ("wait", {}, "")], first="sending")
    assert _count(tmp_path / "hub.sqlite3", "steps") == 2
    assert _insert(store, "a2", "k1") == "a1"  # the dedup key is taken
    store.close()


async def test_joined_store_commits_with_the_journal_and_durable_covers_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    store = SignalStore(tmp_path / "hub.sqlite3")
    store.join(journal)
    assert _insert(store, "a1", "k1") is None
    assert _insert(store, "a2", "k1") == "a1"  # dedup sees the uncommitted row: the in-memory index
    store.set_expected("s", "paper:A", "MESZ6", 1, NOW)
    # Not on disk yet: the pass has not ended ...
    assert _count(tmp_path / "hub.sqlite3", "signals") == 0
    # ... and durable() waits for the store's writes even when the journal has none of its own.
    await asyncio.wait_for(journal.durable(), 5)
    assert _count(tmp_path / "hub.sqlite3", "signals") == 1
    assert _count(tmp_path / "hub.sqlite3", "expected") == 1

    # One flush commits the journal's rows and the store's, the journal's first.
    journal.record("signal", {"status": "done"}, ref="a1")
    store.set_signal_status("a1", "done", "1 done of 1 account(s)")
    journal.flush()
    assert _count(tmp_path / "journal.sqlite3", "journal") == 1
    con = sqlite3.connect(tmp_path / "hub.sqlite3")
    assert con.execute("SELECT status FROM signals WHERE id = 'a1'").fetchone()[0] == "done"
    con.close()

    # The end of a loop pass hands them to the writer thread, without anyone waiting.
    store.record_steps("a1", "paper:A", [("order", {"n": 1}, "c1")], first="sending")
    assert journal.writer.pending
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not journal.writer.pending:
            break
    assert _count(tmp_path / "hub.sqlite3", "steps") == 1
    # A read sees what is still queued (it writes the queue first).
    store.set_step("a1", "paper:A", 0, "sent", order_id="O1")
    assert [s.status for s in store.steps("a1")] == ["sent"]

    # close() commits what is pending and leaves the journal alone.
    store.set_outcome("a1", "paper:A", "done", "order sent", "", NOW)
    store.close()
    assert _count(tmp_path / "hub.sqlite3", "outcomes") == 1
    journal.record("notice", {"text": "after the store closed"})
    journal.flush()
    journal.close()


def test_signal_ids_are_16_hex_digits_in_time_order() -> None:
    """Alert ids sort by arrival (so the indexes keyed by them grow at one end) and never repeat,
    even when many arrive within one millisecond."""
    from types import SimpleNamespace

    from tterm.hub.routing import SignalRouter

    router = SimpleNamespace(_last_sid=0)
    ids = [SignalRouter._new_signal_id(router) for _ in range(5000)]  # type: ignore[arg-type]
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_dedup_survives_a_restart_and_prune_forgets_the_key(tmp_path: Path) -> None:
    """The in-memory dedup index is loaded from the file, so a repeat after a restart is still
    refused; prune() drops the keys it deletes, so they can be used again."""
    from datetime import timedelta

    journal = Journal(tmp_path / "journal.sqlite3")
    store = SignalStore(tmp_path / "hub.sqlite3")
    store.join(journal)
    assert _insert(store, "0000000000000001", "k1") is None
    await journal.durable()
    store.close()
    journal.close()

    journal = Journal(tmp_path / "journal.sqlite3")
    store = SignalStore(tmp_path / "hub.sqlite3")
    store.join(journal)
    assert store.last_signal_id == "0000000000000001"
    assert _insert(store, "0000000000000002", "k1") == "0000000000000001"
    store.set_signal_status("0000000000000001", "done")
    assert store.prune(NOW + timedelta(days=400)) == 1
    assert _insert(store, "0000000000000003", "k1") is None
    await journal.durable()
    assert [r.id for r in store.signals()] == ["0000000000000003"]
    store.close()
    journal.close()
