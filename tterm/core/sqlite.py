"""SQLite for tterm's stores: a WAL writer connection whose checkpoints run on a thread, never in a commit.

Why: in WAL mode with ``synchronous=NORMAL`` a commit only appends pages to the ``-wal`` file; the
costly part is the *checkpoint*, which copies the WAL back into the database file and fsyncs both.
SQLite's default runs it inside whichever commit pushes the WAL past 1000 pages — on the event loop,
so every alert, quote and order waits behind a disk flush. :class:`WalDatabase` turns the automatic
checkpoint off for its writer (``wal_autocheckpoint=0``) and runs ``PRAGMA wal_checkpoint(PASSIVE)``
from a daemon thread with its own connection every ``interval`` seconds. A PASSIVE checkpoint never
takes the write lock and never waits for readers, so the writer is never blocked by it; Python's
sqlite3 module releases the GIL while SQLite works, so its fsyncs do not stall the loop either.

Durability is what it was: a committed transaction is in the WAL, and opening the file after a crash
of the process (SIGKILL) replays it. The thread only moves committed pages from one file to the other.

WAL size: when every frame has been copied, the next write transaction starts the log over from
the beginning and overwrites the file in place (no truncation after each cycle: giving the blocks
back and allocating them again costs the writer file-system work). That needs a moment with every
frame copied: a writer that never pauses appends behind each PASSIVE pass, and a reader that holds
an old snapshot (a long ``tterm journal export``) stops the passes short of the end, so the log can
grow. Past ``max_wal_bytes`` of log the thread runs more PASSIVE passes to shrink the tail while the
writer goes on, then one RESTART checkpoint, during which the writer waits for the last few hundred
frames (and for readers, up to ``cap_wait`` seconds) — a pause every few hundred MiB of sustained
writing, instead of one in every 4 MiB commit as SQLite's own automatic checkpoint would make it,
in exchange for a log that cannot grow without bound. :meth:`WalDatabase.close` ends with a
TRUNCATE checkpoint, leaving a complete database file and an empty WAL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tterm.core.files import private_dir, private_file, tighten_file

log = logging.getLogger(__name__)

#: Seconds between two background checkpoints. Each complete one lets the next commit start the
#: WAL over, and that commit syncs the new WAL header (SQLite's rule, on the writer's thread): a
#: longer interval means fewer of those syncs and a larger WAL.
CHECKPOINT_INTERVAL = 1.0
#: Above this much log not yet back at its start, the checkpoint thread restarts it (see the module
#: docstring). Under a sustained write load the log only restarts this way.
MAX_WAL_BYTES = 256 * 1024 * 1024
#: The longest a forced RESTART checkpoint (the size cap) or the TRUNCATE at close waits.
CAP_WAIT = 0.2
#: Frames a forced restart leaves for the writer to wait on, at most (passive passes shrink the
#: tail first while the writer keeps writing).
SHORT_TAIL = 256
WAL_FRAME_HEADER = 24
#: Seconds a group writer's thread waits for work before it ends (the next write starts another).
IDLE_EXIT = 30.0


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """What one ``PRAGMA wal_checkpoint`` did: ``busy`` if it could not finish (readers or a
    writer in the way), the WAL's length in frames, and how many of them are now in the database."""

    busy: bool
    wal_frames: int
    checkpointed: int

    @property
    def complete(self) -> bool:
        return not self.busy and self.checkpointed >= self.wal_frames


def checkpoint(db: sqlite3.Connection, mode: str = "PASSIVE") -> CheckpointResult:
    """Run one checkpoint on ``db`` (PASSIVE, FULL, RESTART or TRUNCATE)."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"unknown checkpoint mode {mode!r}")
    busy, frames, done = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return CheckpointResult(bool(busy), max(frames, 0), max(done, 0))


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


class Checkpointer:
    """The daemon thread that checkpoints one database file (see the module docstring).

    It holds no reference to the store that started it; :meth:`stop` (or the store being garbage
    collected) ends it.
    """

    def __init__(
        self,
        path: Path,
        *,
        interval: float = CHECKPOINT_INTERVAL,
        max_wal_bytes: int = MAX_WAL_BYTES,
        cap_wait: float = CAP_WAIT,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"checkpoint interval must be positive, got {interval}")
        self.path = path
        self.interval = interval
        self.max_wal_bytes = max_wal_bytes
        self.cap_wait = cap_wait
        self.runs = 0
        self.frames_checkpointed = 0
        self.forced = 0
        self.errors = 0
        self._frame_bytes = 0
        self.last: CheckpointResult | None = None
        self._stop = threading.Event()
        self._kick = threading.Event()
        #: Set after each checkpoint run (tests wait on it instead of sleeping).
        self.ran = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint:{path.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Checkpoint now rather than at the next interval."""
        self._kick.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (after :meth:`stop`); True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                self._kick.wait(self.interval)
                self._kick.clear()
                if self._stop.is_set():
                    break
                try:
                    if db is None:
                        db = sqlite3.connect(str(self.path), isolation_level=None)
                    self._once(db)
                except sqlite3.Error as exc:
                    # Never fatal: the WAL keeps every commit; the next run tries again.
                    self.errors += 1
                    if self.errors in (1, 10, 100):
                        log.warning("checkpoint of %s failed (%s); will retry", self.path.name, exc)
                finally:
                    self.ran.set()
        finally:
            if db is not None:
                db.close()

    def _once(self, db: sqlite3.Connection) -> None:
        if self._frame_bytes == 0:
            self._frame_bytes = int(db.execute("PRAGMA page_size").fetchone()[0]) + WAL_FRAME_HEADER
        result = self._passive(db)
        # A PASSIVE pass copies the log as it stood when the pass began; the log starts over only
        # once a pass has caught up with a writer that then pauses. A writer that never pauses
        # (or a reader pinning an old snapshot) keeps it growing: past the cap, restart it.
        if result.wal_frames * self._frame_bytes > self.max_wal_bytes:
            # Shrink what the writer must wait for: each pass copies what was appended during
            # the one before, so passes get shorter while the writer goes on.
            for _ in range(6):
                before = result.wal_frames
                result = self._passive(db)
                if result.wal_frames - before <= SHORT_TAIL:
                    break
            self.forced += 1
            db.execute(f"PRAGMA busy_timeout={int(self.cap_wait * 1000)}")
            try:
                result = checkpoint(db, "RESTART")
            finally:
                db.execute("PRAGMA busy_timeout=0")
            if not result.complete:
                log.warning(
                    "%s: the WAL is over %g MiB and readers keep it from being checkpointed",
                    self.path.name,
                    self.max_wal_bytes / 2**20,
                )
        self.last = result

    def _passive(self, db: sqlite3.Connection) -> CheckpointResult:
        result = checkpoint(db, "PASSIVE")
        self.runs += 1
        self.frames_checkpointed += result.checkpointed
        return result


class WalDatabase:
    """One writer connection in WAL mode (``isolation_level=None``: callers BEGIN/COMMIT themselves),
    with its checkpoints on a :class:`Checkpointer` thread. ``":memory:"`` gets a plain connection.

    Open it, check what must be checked before the file is changed (a schema version), then call
    :meth:`start` to switch to WAL and start checkpointing.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        interval: float = CHECKPOINT_INTERVAL,
        max_wal_bytes: int = MAX_WAL_BYTES,
        start: bool = True,
        check_same_thread: bool = True,
    ) -> None:
        self.path: Path | None = None if str(path) == ":memory:" else Path(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._interval = interval
        self._max_wal_bytes = max_wal_bytes
        self.checkpointer: Checkpointer | None = None
        self.journal_mode = ""
        if self.path is not None:
            # Mode 0600 whatever the umask. SQLite gives the -wal and -shm files it creates the
            # database file's own mode; ones an older tterm left readable are tightened here.
            private_dir(self.path.parent, tighten=False)
            private_file(self.path)
            for suffix in ("-wal", "-shm"):
                tighten_file(self.path.with_name(self.path.name + suffix))
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=check_same_thread)
        self._closed = False
        if start:
            try:
                self.start()
            except BaseException:
                self.db.close()
                raise

    def start(self) -> str:
        """Switch to WAL (with checkpoints off the writer) and start the checkpoint thread."""
        db = self.db
        self.journal_mode = str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        if self.journal_mode == "wal" and self.path is not None and self.checkpointer is None:
            db.execute("PRAGMA wal_autocheckpoint=0")
            self.checkpointer = Checkpointer(self.path, interval=self._interval, max_wal_bytes=self._max_wal_bytes)
            self.checkpointer.start()
            # A store dropped without close() must not leave its thread running.
            weakref.finalize(self, self.checkpointer.stop, 0)
        return self.journal_mode

    def wal_bytes(self) -> int:
        """The WAL file's current size (0 without one)."""
        if self.path is None:
            return 0
        try:
            return os.path.getsize(wal_path(self.path))
        except OSError:
            return 0

    def close(self) -> None:
        """Stop checkpointing, checkpoint everything (TRUNCATE), close. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.checkpointer is not None:
            self.checkpointer.stop()
        try:
            if self.db.in_transaction:
                self.db.commit()
            if self.checkpointer is not None:
                self.db.execute(f"PRAGMA busy_timeout={int(CAP_WAIT * 1000)}")
                checkpoint(self.db, "TRUNCATE")
        except sqlite3.Error as exc:
            # Another process still reading: the WAL stays and is checkpointed by the next opener.
            log.info("final checkpoint of %s skipped (%s)", self.path, exc)
        finally:
            self.db.close()


class GroupWriter:
    """Group commit on a writer thread, for the journal and the stores joined to it.

    The event loop queues its writes (:meth:`add`, plain Python, no SQLite call) and asks for them
    to be committed (:meth:`kick`, once per loop pass); a daemon thread runs every queued
    statement and commits each connection, in the order the connections were registered (the
    journal first, so a store never holds a state whose journal rows are not on disk). Python's
    sqlite3 releases the GIL while SQLite works, so the loop goes on parsing, answering and routing
    while a batch is written, and the next batch gathers meanwhile: the busier the hub, the more
    rows share one commit. A coroutine that must not go on before its rows are on disk awaits
    :meth:`wait`'s future, resolved on its loop once the batch holding them is committed.

    :meth:`drain` runs everything queued on the calling thread instead (a synchronous flush, a
    read that must see the loop's own writes, no loop running). :attr:`lock` is held whenever a
    registered connection is used, by the thread or by a reader; ``_queue`` guards the queue only,
    and is always taken after :attr:`lock`, so batches run in the order they were queued.

    A statement that fails (a constraint) is logged and counted and the rest of its batch still
    commits, as it would have inline; a commit that fails is rolled back and fails every waiter of
    the batch (nothing of it is on disk).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self._queue = threading.Lock()
        self._ops: list[tuple[sqlite3.Connection, str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._conns: list[sqlite3.Connection] = []
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._busy = False
        self._thread: threading.Thread | None = None
        #: Batches committed, and statements that failed (see the class docstring).
        self.batches = 0
        self.errors = 0

    def register(self, conn: sqlite3.Connection) -> None:
        """Commit ``conn`` in each batch (after the ones registered before it)."""
        with self.lock:
            if conn not in self._conns:
                self._conns.append(conn)

    def unregister(self, conn: sqlite3.Connection) -> None:
        self.drain()
        with self.lock:
            if conn in self._conns:
                self._conns.remove(conn)

    def add(self, conn: sqlite3.Connection, sql: str, args: Any = ()) -> None:
        """Queue one statement for the next batch."""
        if self._closed:
            raise sqlite3.ProgrammingError(f"{self.name}: cannot write, the database is closed")
        with self._queue:
            self._ops.append((conn, sql, args))

    def add_many(self, statements: list[tuple[sqlite3.Connection, str, Any]]) -> None:
        """Queue several statements that must land in one transaction (the same batch)."""
        if self._closed:
            raise sqlite3.ProgrammingError(f"{self.name}: cannot write, the database is closed")
        with self._queue:
            self._ops.extend(statements)

    @property
    def pending(self) -> bool:
        """True while something queued or being written is not committed yet."""
        return bool(self._ops) or self._busy

    def wait(self) -> asyncio.Future[None]:
        """A future on the running loop, done once everything queued so far is committed (the
        caller kicks, usually at the end of its loop pass)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._queue:
            self._waiters.append(fut)
        return fut

    def kick(self) -> None:
        """Have the thread write what is queued now (starting it if it is not running)."""
        if self._stopping:
            if self._thread is None:
                self.drain()
                return
        else:
            with self._queue:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"sqlite-writer:{self.name}", daemon=True)
                    self._thread.start()
        self._wake.set()

    def drain(self) -> None:
        """Write and commit everything queued, on this thread; raises if the commit fails."""
        with self.lock:
            error = self._batch()
        if error is not None:
            raise error

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the thread (idempotent)."""
        self._stopping = True
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._wake.set()
            thread.join(timeout)
        self.drain()
        self._closed = True

    def _run(self) -> None:
        while True:
            if not self._wake.wait(IDLE_EXIT):
                # Idle: end, so a writer nobody closed does not keep a thread (and its
                # connections) forever; the next kick starts another.
                with self._queue:
                    if not (self._ops or self._waiters or self._wake.is_set()):
                        self._thread = None
                        return
                continue
            self._wake.clear()
            with self.lock:
                self._batch()
            if self._stopping and not self._ops:
                return

    def _batch(self) -> BaseException | None:
        """One batch, with :attr:`lock` held: run the queue, commit, resolve its waiters."""
        with self._queue:
            ops, self._ops = self._ops, []
            waiters, self._waiters = self._waiters, []
            self._busy = True
        error: BaseException | None = None
        try:
            if ops:
                self._write(ops)
                for conn in self._conns:
                    if conn.in_transaction:
                        conn.commit()
                self.batches += 1
        except sqlite3.Error as exc:
            error = exc
            log.error("%s: a group commit of %d statements failed (%s); rolled back", self.name, len(ops), exc)
            for conn in self._conns:
                try:
                    if conn.in_transaction:
                        conn.rollback()
                except sqlite3.Error:
                    pass
        finally:
            self._busy = False
        on_thread = threading.current_thread() is self._thread
        for fut in waiters:
            if on_thread:
                try:
                    fut.get_loop().call_soon_threadsafe(_settle, fut, error)
                except RuntimeError:
                    pass  # that loop is closed: nobody waits any more
            else:
                _settle(fut, error)
        return error

    def _write(self, ops: list[tuple[sqlite3.Connection, str, Any]]) -> None:
        for conn, sql, args in ops:
            if not conn.in_transaction:
                conn.execute("BEGIN")
            try:
                conn.execute(sql, args)
            except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
                # A bad statement from a caller: the others of the batch are still written.
                self.errors += 1
                log.error("%s: a queued write failed (%s): %s", self.name, exc, sql.split("(")[0].strip())


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)
