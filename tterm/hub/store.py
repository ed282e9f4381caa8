"""The hub's durable state: accepted alerts, their dedup keys, each account's planned steps.

A small SQLite file (``hub.sqlite3`` in the data dir, WAL) so that what the hub acknowledged
survives a restart and a SIGKILL. Standing alone, every write is its own committed transaction.
Joined to the engine's journal (:meth:`SignalStore.join`, which the hub does), writes are queued
on the journal's writer thread (:class:`tterm.core.sqlite.GroupWriter`) and group-committed there
right after the journal's own commit, and ``Journal.durable()`` / ``flush()`` cover them: the hub
awaits it before it answers an alert and the router before it sends an order, so both are
write-ahead as before, at one commit per batch, off the event loop; and the hub never records an
alert as finished before the journal holds its outcome.

The duplicate check cannot wait for the thread (between the check and the insert nothing else may
run), so the store keeps every dedup key it holds in memory (:attr:`SignalStore._dedup`, loaded
from the file when it opens, so dedup survives a restart; :meth:`prune` forgets the keys it
deletes); the UNIQUE constraint stays as the last word.

- ``signals``: one row per accepted alert with its dedup key (UNIQUE, so a repeat can never be
  accepted twice, even across restarts), the parsed signal, the accounts it fans out to, and its
  status (``accepted`` until every account has an outcome).
- ``steps``: the plan of each account, written in one transaction before the first step runs;
  every order step carries its client order id and moves ``planned`` -> ``sending`` -> ``sent``
  (or ``failed``/``skipped``). After a crash, a ``sending`` step is looked up at the broker by its
  client order id before anything is resent.
- ``outcomes``: what each account's part of an alert finally did.
- ``expected``: the position each target-position strategy wants per account and symbol, for the
  drift alarm.

Only the event loop thread calls a store; joined, its connection is also written by the journal's
writer thread, under that writer's lock (a read first writes what is queued, so it sees the loop's
own writes).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tterm.core.files import private_dir
from tterm.core.journal import compact_json
from tterm.core.sqlite import WalDatabase

if TYPE_CHECKING:
    from tterm.core.journal import Journal

HUB_DB_FILENAME = "hub.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    id          TEXT PRIMARY KEY,
    dedup_key   TEXT UNIQUE,
    strategy    TEXT NOT NULL,
    ticker      TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    form        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    alert_time  TEXT,
    signal      TEXT NOT NULL,
    targets     TEXT NOT NULL,
    status      TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS signals_status ON signals (status);
CREATE INDEX IF NOT EXISTS signals_received ON signals (received_at);
CREATE TABLE IF NOT EXISTS steps (
    signal_id       TEXT NOT NULL,
    account         TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    data            TEXT NOT NULL,
    client_order_id TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    order_id        TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (signal_id, account, seq)
);
CREATE INDEX IF NOT EXISTS steps_coid ON steps (client_order_id);
CREATE TABLE IF NOT EXISTS outcomes (
    signal_id TEXT NOT NULL,
    account   TEXT NOT NULL,
    status    TEXT NOT NULL,
    summary   TEXT NOT NULL,
    error     TEXT NOT NULL DEFAULT '',
    ts        TEXT NOT NULL,
    PRIMARY KEY (signal_id, account)
);
CREATE TABLE IF NOT EXISTS expected (
    strategy TEXT NOT NULL,
    account  TEXT NOT NULL,
    symbol   TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    ts       TEXT NOT NULL,
    PRIMARY KEY (strategy, account, symbol)
);
"""


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class SignalRow:
    id: str
    dedup_key: str | None
    strategy: str
    ticker: str
    symbol: str
    form: str
    received_at: datetime
    alert_time: datetime | None
    signal: dict[str, Any]
    targets: list[tuple[str, str]]
    status: str
    summary: str
    error: str


@dataclass(frozen=True, slots=True)
class StepRow:
    signal_id: str
    account: str
    seq: int
    kind: str
    data: dict[str, Any]
    client_order_id: str
    status: str
    order_id: str
    detail: str


class SignalStore:
    """SQLite-backed state of the hub (see the module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path if str(path) == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            private_dir(self.path.parent, tighten=False)
        # Checkpoints run on the WalDatabase's thread, never inside one of our commits.
        self._wal = WalDatabase(self.path, check_same_thread=False)
        self._db = self._wal.db
        self._journal: Journal | None = None
        try:
            self._db.executescript(_SCHEMA)
            #: dedup key -> id of the alert holding it (see the module docstring).
            self._dedup: dict[str, str] = dict(
                self._db.execute("SELECT dedup_key, id FROM signals WHERE dedup_key IS NOT NULL").fetchall()
            )
            top = self._db.execute("SELECT MAX(id) FROM signals").fetchone()[0]
            #: The greatest alert id in the file when it was opened ('' for none).
            self.last_signal_id: str = str(top or "")
        except BaseException:
            self._wal.close()
            raise

    @property
    def db(self) -> sqlite3.Connection:
        """The connection (for the journal's writer thread)."""
        return self._db

    def close(self) -> None:
        if self._journal is not None:
            self._journal.detach(self)  # writes what is queued first
            self._journal = None
        self._wal.close()

    # ------------------------------------------------------------------ commits

    def join(self, journal: Journal) -> None:
        """Group-commit with ``journal`` from now on (see the module docstring)."""
        self._journal = journal
        journal.attach(self)

    def _read(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        """Rows of one query; joined, after what is queued is written, under the writer's lock."""
        if self._journal is None:
            return self._db.execute(sql, args).fetchall()
        writer = self._journal.writer
        writer.drain()
        with writer.lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> None:
        """One write: queued on the journal's writer when joined, else committed at once."""
        if self._journal is None:
            self._db.execute(sql, args)
            return
        self._journal.writer.add(self._db, sql, args)
        self._journal.commit_soon()

    def _write_many(self, statements: list[tuple[str, tuple[Any, ...] | list[Any]]]) -> None:
        """Several writes, atomically (one batch of the writer when joined, else one transaction)."""
        if self._journal is not None:
            self._journal.writer.add_many([(self._db, sql, args) for sql, args in statements])
            self._journal.commit_soon()
            return
        self._db.execute("BEGIN")
        try:
            for sql, args in statements:
                self._db.execute(sql, args)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ signals

    def insert_signal(
        self,
        *,
        signal_id: str,
        dedup_key: str | None,
        strategy: str,
        ticker: str,
        symbol: str,
        form: str,
        received_at: datetime,
        alert_time: datetime | None,
        signal: dict[str, Any],
        targets: list[tuple[str, str]],
        status: str = "accepted",
    ) -> str | None:
        """Insert an accepted alert; returns None, or the id of the alert that already holds
        ``dedup_key`` (checked against the in-memory index and claimed in it at once, so no repeat
        slips through; the UNIQUE constraint stays behind it). Standing alone, an id already
        taken raises ``sqlite3.IntegrityError``; joined, ids must be new (see ``last_signal_id``)."""
        if dedup_key is not None:
            holder = self._dedup.get(dedup_key)
            if holder is not None:
                return holder
        self._write(
            "INSERT INTO signals (id, dedup_key, strategy, ticker, symbol, form, received_at, alert_time, "
            "signal, targets, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
            (
                signal_id,
                dedup_key,
                strategy,
                ticker,
                symbol,
                form,
                _ts(received_at),
                _ts(alert_time) if alert_time else None,
                compact_json(signal),
                compact_json(targets),
                status,
            ),
        )
        if dedup_key is not None:
            self._dedup[dedup_key] = signal_id
        return None

    def set_signal_status(self, signal_id: str, status: str, summary: str = "", error: str = "") -> None:
        self._write(
            "UPDATE signals SET status = ?, summary = ?, error = ? WHERE id = ?", (status, summary, error, signal_id)
        )

    def _signal(self, row: tuple[Any, ...]) -> SignalRow:
        return SignalRow(
            id=row[0],
            dedup_key=row[1],
            strategy=row[2],
            ticker=row[3],
            symbol=row[4],
            form=row[5],
            received_at=datetime.fromisoformat(row[6]),
            alert_time=datetime.fromisoformat(row[7]) if row[7] else None,
            signal=json.loads(row[8]),
            targets=[(a, m) for a, m in json.loads(row[9])],
            status=row[10],
            summary=row[11],
            error=row[12],
        )

    _COLUMNS = (
        "id, dedup_key, strategy, ticker, symbol, form, received_at, alert_time, signal, targets, status, "
        "summary, error"
    )

    def signal(self, signal_id: str) -> SignalRow | None:
        rows = self._read(f"SELECT {self._COLUMNS} FROM signals WHERE id = ?", (signal_id,))
        row = rows[0] if rows else None
        return self._signal(row) if row else None

    def unfinished(self) -> list[SignalRow]:
        """Alerts acknowledged but not finished in every account, oldest first."""
        rows = self._read(f"SELECT {self._COLUMNS} FROM signals WHERE status = 'accepted' ORDER BY received_at, rowid")
        return [self._signal(r) for r in rows]

    def signals(self, *, limit: int = 100) -> list[SignalRow]:
        """The latest alerts, newest first."""
        sql = f"SELECT {self._COLUMNS} FROM signals ORDER BY received_at DESC, rowid DESC LIMIT ?"
        rows = self._read(sql, (limit,))
        return [self._signal(r) for r in rows]

    def prune(self, before: datetime) -> int:
        """Forget finished alerts received before ``before`` (their dedup keys go with them)."""
        stamp = _ts(before)
        found = self._read("SELECT id, dedup_key FROM signals WHERE received_at < ? AND status != 'accepted'", (stamp,))
        ids = [r[0] for r in found]
        if not ids:
            return 0
        for _, key in found:
            if key is not None:
                self._dedup.pop(key, None)
        statements: list[tuple[str, tuple[Any, ...] | list[Any]]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for table, col in (("steps", "signal_id"), ("outcomes", "signal_id"), ("signals", "id")):
                statements.append((f"DELETE FROM {table} WHERE {col} IN ({marks})", chunk))
        self._write_many(statements)
        return len(ids)

    # ------------------------------------------------------------------ steps

    def record_steps(
        self, signal_id: str, account: str, steps: list[tuple[str, dict[str, Any], str]], *, first: str = "planned"
    ) -> None:
        """Write an account's whole plan (kind, data, client order id) in one transaction; the first
        step gets status ``first`` (``sending`` when it is an order about to go out)."""
        rows = [
            (
                signal_id,
                account,
                seq,
                kind,
                compact_json(data),
                coid,
                first if seq == 0 else "planned",
            )
            for seq, (kind, data, coid) in enumerate(steps)
        ]
        sql = (
            "INSERT INTO steps (signal_id, account, seq, kind, data, client_order_id, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self._write_many([(sql, row) for row in rows])

    def set_step(
        self, signal_id: str, account: str, seq: int, status: str, *, order_id: str = "", detail: str = ""
    ) -> None:
        self._write(
            "UPDATE steps SET status = ?, order_id = CASE WHEN ? != '' THEN ? ELSE order_id END, detail = ? "
            "WHERE signal_id = ? AND account = ? AND seq = ?",
            (status, order_id, order_id, detail, signal_id, account, seq),
        )

    def steps(self, signal_id: str, account: str | None = None) -> list[StepRow]:
        sql = (
            "SELECT signal_id, account, seq, kind, data, client_order_id, status, order_id, detail FROM steps "
            "WHERE signal_id = ?"
        )
        args: list[Any] = [signal_id]
        if account is not None:
            sql += " AND account = ?"
            args.append(account)
        sql += " ORDER BY account, seq"
        return [
            StepRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8]) for r in self._read(sql, args)
        ]

    # ------------------------------------------------------------------ outcomes

    def set_outcome(self, signal_id: str, account: str, status: str, summary: str, error: str, ts: datetime) -> None:
        self._write(
            "INSERT INTO outcomes (signal_id, account, status, summary, error, ts) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(signal_id, account) DO UPDATE SET status = excluded.status, summary = excluded.summary, "
            "error = excluded.error, ts = excluded.ts",
            (signal_id, account, status, summary, error, _ts(ts)),
        )

    def outcomes(self, signal_id: str) -> dict[str, tuple[str, str, str]]:
        """account -> (status, summary, error) for every account that finished."""
        rows = self._read("SELECT account, status, summary, error FROM outcomes WHERE signal_id = ?", (signal_id,))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # ------------------------------------------------------------------ expected positions

    def set_expected(self, strategy: str, account: str, symbol: str, quantity: int, ts: datetime) -> None:
        self._write(
            "INSERT INTO expected (strategy, account, symbol, quantity, ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(strategy, account, symbol) DO UPDATE SET quantity = excluded.quantity, ts = excluded.ts",
            (strategy, account, symbol, quantity, _ts(ts)),
        )

    def expected(self) -> list[tuple[str, str, str, int]]:
        """(strategy, account, symbol, quantity) of every target-position strategy."""
        return [
            (r[0], r[1], r[2], int(r[3]))
            for r in self._read("SELECT strategy, account, symbol, quantity FROM expected")
        ]
