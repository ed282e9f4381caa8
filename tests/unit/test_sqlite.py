"""tterm.core.sqlite: WAL writers whose checkpoints run on a thread, never in a commit."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tterm.core.sqlite import Checkpointer, WalDatabase, checkpoint, wal_path


def _table(wal: WalDatabase) -> None:
    wal.db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")


def _run_checkpoint(wal: WalDatabase) -> None:
    """Have the thread checkpoint now and wait (on its event, not a clock) until it has."""
    cp = wal.checkpointer
    assert cp is not None
    cp.ran.clear()
    cp.kick()
    assert cp.ran.wait(10)


def test_writer_does_not_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    wal = WalDatabase(tmp_path / "a.db", interval=3600)
    assert wal.journal_mode == "wal"
    assert wal.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    _table(wal)
    for i in range(1500):  # well past SQLite's default 1000-page automatic checkpoint
        wal.db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200 + str(i),))
    # Nothing moved the WAL into the database: the writer's commits never checkpoint.
    probe = sqlite3.connect(tmp_path / "a.db")
    pending = checkpoint(probe, "PASSIVE")
    probe.close()
    assert pending.wal_frames > 1000
    _table(wal)
    wal.db.execute("INSERT INTO t (v) VALUES ('last')")
    _run_checkpoint(wal)
    cp = wal.checkpointer
    assert cp is not None and cp.runs >= 1 and cp.errors == 0
    assert cp.last is not None and cp.last.complete
    wal.close()
    assert not cp.alive
    left = wal_path(tmp_path / "a.db")
    assert not left.exists() or left.stat().st_size == 0  # close checkpoints everything
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1501
    db.close()


def test_checkpoints_never_make_the_writer_wait(tmp_path: Path) -> None:
    """With busy_timeout 0 any lock the checkpointer held against the writer would raise at once
    ("database is locked"); a reader pinning an old snapshot keeps checkpoints from finishing, and
    the writer still commits every transaction."""
    path = tmp_path / "b.db"
    wal = WalDatabase(path, busy_timeout=0, interval=3600)
    _table(wal)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0  # holds this snapshot
    cp = wal.checkpointer
    assert cp is not None
    for i in range(300):
        wal.db.execute("BEGIN")
        wal.db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        wal.db.execute("COMMIT")
        if i % 10 == 0:
            cp.kick()  # checkpoints run while the writer keeps committing
    _run_checkpoint(wal)
    assert cp.errors == 0
    assert cp.last is not None and not cp.last.complete  # the reader's snapshot is in the way
    reader.execute("COMMIT")
    reader.close()
    _run_checkpoint(wal)
    assert cp.last is not None and cp.last.complete
    assert wal.db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 300
    wal.close()


def test_a_log_over_the_cap_is_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Past the cap, a log that could not get back to its start is forced to (RESTART); a reader
    pinning an old snapshot makes that wait and fail with a warning, and once the reader is gone
    the log starts over from the beginning of the file."""
    path = tmp_path / "c.db"
    wal = WalDatabase(path, interval=3600, max_wal_bytes=1)
    _table(wal)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM t").fetchone()
    for i in range(50):
        wal.db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
    cp = wal.checkpointer
    assert cp is not None
    with caplog.at_level("WARNING", logger="tterm.core.sqlite"):
        _run_checkpoint(wal)
    assert cp.forced == 1 and cp.last is not None and not cp.last.complete
    assert "readers keep it from being checkpointed" in caplog.text
    wal.db.execute("INSERT INTO t (v) VALUES ('still writing')")
    size = wal.wal_bytes()
    reader.execute("COMMIT")
    reader.close()
    _run_checkpoint(wal)
    assert cp.last is not None and cp.last.complete
    wal.db.execute("INSERT INTO t (v) VALUES ('after the restart')")
    probe = sqlite3.connect(path)
    frames = checkpoint(probe, "PASSIVE").wal_frames
    probe.close()
    assert 0 < frames <= 4  # the log started over: only the last write is in it
    assert wal.wal_bytes() == size  # in place: the file was reused, not truncated and regrown
    assert wal.db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 52
    wal.close()


def test_memory_database_has_no_thread() -> None:
    wal = WalDatabase(":memory:")
    assert wal.checkpointer is None
    _table(wal)
    wal.close()
    wal.close()  # idempotent


def test_a_dropped_database_stops_its_thread(tmp_path: Path) -> None:
    wal = WalDatabase(tmp_path / "d.db", interval=3600)
    cp = wal.checkpointer
    assert cp is not None and cp.alive
    wal.db.close()
    del wal
    gc.collect()
    assert cp.join(10)


def test_bad_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        Checkpointer(tmp_path / "e.db", interval=0)
    with pytest.raises(ValueError, match="unknown checkpoint mode"):
        checkpoint(sqlite3.connect(":memory:"), "NOW")


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tterm.core.journal import Journal
    from tterm.brokers.paper.store import PaperStore
    from tterm.hub.store import SignalStore

    root = Path(sys.argv[1])
    journal = Journal(root / "journal.sqlite3")
    store = SignalStore(root / "hub.sqlite3")
    paper = PaperStore(root / "paper.sqlite3")
    for i in range(2000):
        journal.record("notice", {"text": f"row {i}"}, ref=str(i))
    store.set_expected("s", "paper:A", "MESZ6", 3, __import__("datetime").datetime.now(__import__("datetime").UTC))
    paper.write(meta={"counter": "41"})
    print("written", flush=True)
    sys.stdin.read()  # block until killed
    """
)


def test_committed_rows_survive_sigkill(tmp_path: Path) -> None:
    """Every commit is in the WAL; a process killed with SIGKILL before any checkpoint loses none
    of them: the next open replays the WAL."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "written"
        assert wal_path(tmp_path / "journal.sqlite3").stat().st_size > 0
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    from tterm.brokers.paper.store import PaperStore
    from tterm.core.journal import Journal
    from tterm.hub.store import SignalStore

    with Journal(tmp_path / "journal.sqlite3") as journal:
        assert journal.count() == 2000
        assert journal.entries(ref="1999")[0].data == {"text": "row 1999"}
    store = SignalStore(tmp_path / "hub.sqlite3")
    assert store.expected() == [("s", "paper:A", "MESZ6", 3)]
    store.close()
    paper = PaperStore(tmp_path / "paper.sqlite3")
    assert paper.load().meta["counter"] == "41"
    paper.close()


async def test_group_writer_commits_off_the_loop_and_keeps_a_batch_going_past_a_bad_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two connections, committed in the order registered; a statement that breaks a constraint
    is logged and counted and the rest of its batch is still committed; waiters resolve on
    their loop once their batch is on disk."""
    import asyncio
    import threading

    from tterm.core.sqlite import GroupWriter

    first = WalDatabase(tmp_path / "a.sqlite3", check_same_thread=False)
    second = WalDatabase(tmp_path / "b.sqlite3", check_same_thread=False)
    for db in (first.db, second.db):
        db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    writer = GroupWriter("test")
    writer.register(first.db)
    writer.register(second.db)
    seen: list[str] = []
    writer._write = _spy(writer._write, seen)  # type: ignore[method-assign]
    writer.add(first.db, "INSERT INTO t VALUES (?)", ("x",))
    writer.add(first.db, "INSERT INTO t VALUES (?)", ("x",))  # duplicate: refused, logged
    writer.add_many([(second.db, "INSERT INTO t VALUES (?)", ("y",)), (second.db, "INSERT INTO t VALUES (?)", ("z",))])
    assert writer.pending
    done = writer.wait()
    writer.kick()
    await asyncio.wait_for(done, 5)
    assert not writer.pending and writer.batches == 1 and writer.errors == 1
    assert seen == ["sqlite-writer:test"] and threading.current_thread().name != seen[0]
    assert "a queued write failed" in caplog.text
    for path, want in (("a.sqlite3", ["x"]), ("b.sqlite3", ["y", "z"])):
        con = sqlite3.connect(tmp_path / path)
        assert [r[0] for r in con.execute("SELECT k FROM t ORDER BY k")] == want
        con.close()
    writer.stop()
    with pytest.raises(sqlite3.ProgrammingError):
        writer.add(first.db, "INSERT INTO t VALUES (?)", ("late",))
    first.close()
    second.close()


async def test_group_writer_fails_the_waiters_of_a_batch_it_could_not_commit(tmp_path: Path) -> None:
    import asyncio

    from tterm.core.sqlite import GroupWriter

    db = WalDatabase(tmp_path / "a.sqlite3", check_same_thread=False)
    writer = GroupWriter("test")
    writer.register(db.db)
    writer.add(db.db, "INSERT INTO missing VALUES (1)")  # no such table: the batch fails
    done = writer.wait()
    writer.kick()
    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(done, 5)
    assert not db.db.in_transaction  # rolled back
    writer.stop()
    db.close()


def _spy(fn, seen):  # type: ignore[no-untyped-def]
    import threading

    def wrapped(ops):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return fn(ops)

    return wrapped


async def test_an_idle_group_writer_ends_its_thread_and_the_next_write_starts_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from tterm.core import sqlite as sq

    monkeypatch.setattr(sq, "IDLE_EXIT", 0.05)
    db = WalDatabase(tmp_path / "a.sqlite3", check_same_thread=False)
    db.db.execute("CREATE TABLE t (k TEXT)")
    writer = sq.GroupWriter("test")
    writer.register(db.db)
    for n in range(2):
        writer.add(db.db, "INSERT INTO t VALUES (?)", (str(n),))
        done = writer.wait()
        writer.kick()
        thread = writer._thread
        assert thread is not None
        await asyncio.wait_for(done, 5)
        thread.join(5)
        assert not thread.is_alive() and writer._thread is None
    assert db.db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    writer.stop()
    db.close()
