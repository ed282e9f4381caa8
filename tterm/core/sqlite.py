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

import logging
import os
import sqlite3
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

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
        self.db = sqlite3.connect(str(path), isolation_level=None)
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
