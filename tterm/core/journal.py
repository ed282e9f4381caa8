"""The journal: an append-only SQLite record of everything that touched an order or an account.

Every order request, acknowledgement, reject, fill, cancel, risk decision, lock, connection
change, notice, webhook and error is one row: ``(id, ts, kind, account, ref, data)`` where
``ref`` is usually the client order id and ``data`` is the event as JSON. Every payload passes
through :func:`tterm.core.redact.redact` first, so no secret reaches the file.

Storage choices:

- WAL mode with ``synchronous=NORMAL`` and group commit on a writer thread
  (:class:`tterm.core.sqlite.GroupWriter`): a row recorded while the event loop runs is queued,
  and at the end of the loop pass the queue goes to the thread, which inserts and commits it
  while the loop goes on (sqlite3 releases the GIL); what gathers meanwhile shares the next
  commit. Every caller about to act outside the process awaits :meth:`Journal.durable` first —
  the router before it sends an order, the hub before it acknowledges an alert — so what the
  world was told is always on disk first (write-ahead). :meth:`Journal.flush` commits at once,
  on the calling thread. A crash of the tterm process loses at most the rows of
  the pass it was in, all of them observations the brokers replay on restart. Outside a running
  loop every record commits at once. An operating-system crash or power loss may also lose the
  last transactions (WAL frames not yet on disk); that is the price of not fsyncing every event.
- Checkpoints (copying the WAL into the database file, with its fsyncs) run on a background
  thread with its own connection (:class:`tterm.core.sqlite.WalDatabase`), never inside one of
  the loop's commits.
- One connection, written by the writer thread and read by the loop under the writer's lock;
  a read first writes what is queued, so the loop always reads its own writes. Another thread
  must hand work to the loop (``loop.call_soon_threadsafe``); another process (``tterm journal
  export`` while the terminal runs) opens its own :class:`Journal` — WAL lets readers run beside
  the writer. Only one process writes a journal file (row ids are handed out in memory).
- ``ts`` is stored as fixed-width UTC ISO-8601 text, so text order is time order and the file
  reads well in the ``sqlite3`` shell. Rows are returned in the order they were recorded (id).
- A small ``state`` table holds persisted engine state as JSON (risk high-water marks, locks,
  webhook dedup keys); it is not journal history and is not redacted — never put a credential
  there (secrets belong in ``secrets.toml``, see :mod:`tterm.config`).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum

# c_make_encoder is the stdlib's C encoder, public in json.encoder but absent from typeshed's stub:
# the ignore covers only that missing stub name (the code checks it for None, see _fast_encoder).
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import Path, PurePath
from typing import Any, Literal, Protocol, TextIO

from tterm.core.files import private_dir
from tterm.core.models import (
    AccountLock,
    ConnectionStatus,
    Fill,
    Notice,
    Order,
    PositionDrift,
    RiskDecision,
    SignalOutcome,
    utcnow,
)
from tterm.core.redact import MASK, REDACTOR, is_secret_key, mask, redact, redact_text
from tterm.core.sqlite import GroupWriter, WalDatabase

JOURNAL_FILENAME = "journal.sqlite3"

JOURNAL_KINDS: frozenset[str] = frozenset(
    {
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
    }
)

EXPORT_COLUMNS = ("id", "ts", "kind", "account", "ref", "data")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts      TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    account TEXT    NOT NULL DEFAULT '',
    ref     TEXT    NOT NULL DEFAULT '',
    data    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_ts      ON journal (ts);
CREATE INDEX IF NOT EXISTS journal_kind    ON journal (kind);
CREATE INDEX IF NOT EXISTS journal_ref     ON journal (ref);
CREATE INDEX IF NOT EXISTS journal_account ON journal (account);
CREATE TABLE IF NOT EXISTS state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


_INSERT = "INSERT INTO journal (id, ts, kind, account, ref, data) VALUES (?, ?, ?, ?, ?, ?)"


class Companion(Protocol):
    """A store committed together with the journal (see :meth:`Journal.attach`): its connection
    (opened with ``check_same_thread=False``) is written by the journal's writer thread."""

    @property
    def db(self) -> sqlite3.Connection: ...


class JournalError(Exception):
    """The journal file cannot be used (written by a newer tterm, not a journal...)."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row as read back; ``data`` is the redacted JSON payload."""

    id: int
    ts: datetime
    kind: str
    account: str
    ref: str
    data: dict[str, Any]


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: Decimal -> str, datetime/date -> ISO-8601, enum -> value,
    dataclass -> dict of its fields, tuple/list/set -> list, Path -> str.

    Anything else falls back to ``str(obj)`` (which :func:`redact` then scrubs), so recording an
    unexpected type never fails the event that carries it.
    """
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    return str(obj)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


#: redact_text results for strings seen lately: a row repeats the same ids, accounts and symbols
#: as the rows before it (an order's request, decision, ack, updates and fill), so most strings
#: are scrubbed once. Bounded: cleared when full.
_TEXT: dict[str, str] = {}
_TEXT_LIMIT = 4096
_TEXT_MAX_LEN = 200
#: The redactor's generation the cache was filled under: a secret registered since (a broker's new
#: token, the hub's webhook secret) may be in a string cached as harmless, so the cache starts over.
_TEXT_GENERATION = [REDACTOR.generation]


def _text(value: str) -> str:
    if _TEXT_GENERATION[0] != REDACTOR.generation:
        _TEXT.clear()
        _TEXT_GENERATION[0] = REDACTOR.generation
    done = _TEXT.get(value)
    if done is None:
        done = redact_text(value)
        if len(value) <= _TEXT_MAX_LEN:
            if len(_TEXT) >= _TEXT_LIMIT:
                _TEXT.clear()
            _TEXT[value] = done
    return done


def _dataclass_dict(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields of one of our dataclasses as JSON values, the common types inline (this runs for
    every journaled event, so each field costs a type check, not a function call)."""
    out: dict[str, Any] = {}
    for name in names:
        v = getattr(obj, name)
        c = type(v)
        if c is str:
            out[name] = _text(v)
        elif v is None or c is int or c is bool or c is float:
            out[name] = v
        elif c is Decimal:
            out[name] = str(v)
        elif c is datetime:
            out[name] = v.isoformat()
        elif isinstance(v, Enum):
            out[name] = v._value_
        else:
            out[name] = _scrubbed(v)
    return out


def _scrubbed(obj: Any) -> Any:
    """JSON form of a value inside one of our own dataclasses, with free text scrubbed.

    The fast path for core events: their field names are ours and never secret, so the key walk
    of :func:`redact` is skipped; strings still pass :func:`redact_text` (a vendor's reject text
    could echo a credential) and any mapping inside gets the full :func:`redact`.
    """
    cls = type(obj)
    if obj is None or cls is int or cls is float or cls is bool:
        return obj
    if cls is str:
        return _text(obj)
    if cls is Decimal:
        return str(obj)
    if cls is datetime or cls is date:
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj._value_
    if cls is tuple or cls is list:
        return [_scrubbed(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _dataclass_dict(obj, _field_names(cls))
    if isinstance(obj, Mapping):
        return redact(to_jsonable(obj))
    return redact(to_jsonable(obj))


def _clean(obj: Any) -> Any:
    """``redact(to_jsonable(obj))`` in one walk (mappings are what the hub and the engine record
    for requests and errors; each is walked once instead of twice)."""
    cls = type(obj)
    if cls is str:
        return _text(obj)
    if obj is None or cls is int or cls is float or cls is bool:
        return obj
    if cls is Decimal:
        return str(obj)
    if cls is dict or isinstance(obj, Mapping):
        return _clean_items(obj.items())
    if cls is list or cls is tuple:
        return [_clean(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # to_jsonable makes a dataclass a dict, whose field names redact then checks like any key.
        return _clean_items((name, getattr(obj, name)) for name in _field_names(cls))
    return redact(to_jsonable(obj))


def _clean_items(items: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in items:
        key = str(k)
        if is_secret_key(key):
            plain = to_jsonable(v)
            if plain is not None and plain != "":
                out[key] = mask(plain) if isinstance(plain, str | int | float) else MASK
                continue
            out[key] = plain
        else:
            out[key] = _clean(v)
    return out


def _not_json(obj: Any) -> Any:
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _make_to_json() -> Callable[[Any], str]:
    """Compact JSON text (``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``), with
    one C encoder built once for every row instead of one per call. Payloads are freshly built
    trees of plain JSON types, so the circular-reference check is not needed."""
    if c_make_encoder is None:  # a Python without the C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    encoder = c_make_encoder(None, _not_json, encode_basestring, None, ":", ",", False, False, True)

    def to_json(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return to_json


_to_json = _make_to_json()
#: Compact JSON text of plain JSON types, for every store that keeps JSON in SQLite.
compact_json = _to_json


def _ts_text(ts: datetime) -> str:
    if ts.tzinfo is UTC:  # the usual case (utcnow): already UTC
        return ts.isoformat(timespec="microseconds")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"journal timestamps must be timezone-aware, got naive {ts.isoformat()}")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _kinds(kind: str | Iterable[str] | None) -> list[str] | None:
    if kind is None:
        return None
    kinds = [kind] if isinstance(kind, str) else list(kind)
    unknown = sorted(set(kinds) - JOURNAL_KINDS)
    if unknown:
        raise ValueError(
            f"unknown journal kind {', '.join(map(repr, unknown))} (known: {', '.join(sorted(JOURNAL_KINDS))})"
        )
    return kinds


class Journal:
    """The SQLite journal (see the module docstring for durability and threading)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = path if str(path) == ":memory:" else Path(path).expanduser()
        self._clock = clock
        self._commit_scheduled = False
        if isinstance(self.path, Path):
            private_dir(self.path.parent, tighten=False)
        # isolation_level=None: we open transactions ourselves (BEGIN) to commit a loop pass at once.
        # Checkpoints run on the WalDatabase's thread, never inside one of our commits.
        self._wal = WalDatabase(self.path, start=False, check_same_thread=False)
        self._db = self._wal.db
        self.writer = GroupWriter(self.path.name if isinstance(self.path, Path) else "journal")
        self.writer.register(self._db)
        try:
            self._setup()
        except BaseException:
            self._wal.close()
            raise

    def _setup(self) -> None:
        db = self._db
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: not a tterm journal ({exc})") from exc
        if version > _SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: journal schema version {version} is newer than this tterm understands "
                f"({_SCHEMA_VERSION}); upgrade tterm"
            )
        self.journal_mode = self._wal.start()
        db.executescript(_SCHEMA)
        if version < _SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        # AUTOINCREMENT's high-water mark: ids of deleted rows are never handed out again.
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        top = db.execute("SELECT MAX(id) FROM journal").fetchone()[0]
        self._last_id = max(int(seq[0]) if seq else 0, int(top or 0))

    # ------------------------------------------------------------------ writing

    def record(
        self,
        kind: str,
        data: Mapping[str, Any] | object,
        *,
        account: str = "",
        ref: str = "",
        ts: datetime | None = None,
    ) -> int:
        """Append one row (handed to the writer thread at the end of this loop pass, or committed
        now with no loop running); returns its id. ``data`` is redacted before it is stored.

        Ids are handed out here, not by SQLite, since the row is written later: one process
        writes a journal file (another may read it beside, as ``tterm journal export`` does)."""
        if kind not in JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {kind!r} (known: {', '.join(sorted(JOURNAL_KINDS))})")
        names = _FIELDS.get(type(data))
        if names is not None:  # one of our dataclasses, seen before
            payload: Any = _dataclass_dict(data, names)
        elif dataclasses.is_dataclass(data) and not isinstance(data, type):
            payload = _scrubbed(data)
        else:
            payload = _clean(data)
        if not isinstance(payload, dict):
            payload = {"value": payload}
        text = _to_json(payload)
        stamp = _ts_text(ts if ts is not None else self._clock())
        self._last_id += 1
        row_id = self._last_id
        self.writer.add(self._db, _INSERT, (row_id, stamp, kind, account or "", ref or "", text))
        self._commit_later()
        return row_id

    def attach(self, store: Companion) -> None:
        """Commit ``store`` with the journal: its writes join this journal's group commit
        (:meth:`commit_soon`), and every :meth:`flush` / :meth:`durable` covers it too — the
        journal first, so a store never records a state whose journal rows are not on disk."""
        self.writer.register(store.db)

    def detach(self, store: Companion) -> None:
        self.writer.unregister(store.db)

    def commit_soon(self) -> None:
        """Have the group commit at the end of this loop pass cover a companion's new writes."""
        self._commit_later()

    def flush(self) -> None:
        """Commit everything recorded so far, now, on this thread (and then the attached stores'
        writes)."""
        self.writer.drain()

    async def durable(self) -> None:
        """Wait until everything recorded so far is committed (write-ahead, in a loop).

        Every caller waiting in the same loop pass shares the pass's one group commit, so many
        orders sent at once cost one commit, not one each, and none leaves before its request row
        is on disk.
        """
        if not self.writer.pending:
            return
        done = self.writer.wait()
        self._commit_later()
        await asyncio.shield(done)

    def _commit_later(self) -> None:
        """Commit at the end of this loop pass, or at once when no event loop is running."""
        if self._commit_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._commit_scheduled = True
        loop.call_soon(self._hand_off)

    def _hand_off(self) -> None:
        self._commit_scheduled = False
        self.writer.kick()

    def record_event(self, event: object) -> int | None:
        """Journal a core event by its type; quotes, positions, snapshots and risk status are not
        journaled (they are derived or too frequent) and return None.

        ``ref`` is the client order id for orders, fills and risk decisions, the broker name for a
        connection change, the source of a notice and who set a lock.
        """
        match event:
            case Order():
                return self.record("order_update", event, account=event.account, ref=event.client_order_id)
            case Fill():
                return self.record("fill", event, account=event.account, ref=event.client_order_id)
            case ConnectionStatus():
                return self.record("connection", event, ref=event.broker)
            case Notice():
                return self.record("notice", event, account=event.account, ref=event.source)
            case RiskDecision():
                return self.record("risk_decision", event, account=event.account, ref=event.client_order_id)
            case AccountLock():
                return self.record("lock", event, account=event.account, ref=event.by)
            case SignalOutcome():
                return self.record("signal", event, account=event.account, ref=event.signal_id)
            case PositionDrift():
                return self.record("notice", event, account=event.account, ref="drift")
        return None

    # ------------------------------------------------------------------ reading

    def _select(
        self,
        *,
        kind: str | Iterable[str] | None = None,
        account: str | None = None,
        ref: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> sqlite3.Cursor:
        where: list[str] = []
        args: list[Any] = []
        kinds = _kinds(kind)
        if kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args.extend(kinds)
        if account is not None:
            where.append("account = ?")
            args.append(account)
        if ref is not None:
            where.append("ref = ?")
            args.append(ref)
        if since is not None:
            where.append("ts >= ?")
            args.append(_ts_text(since))
        if until is not None:
            where.append("ts < ?")
            args.append(_ts_text(until))
        sql = "SELECT id, ts, kind, account, ref, data FROM journal"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            sql += " LIMIT ?"
            args.append(limit)
        return self._db.execute(sql, args)

    def _reading(self) -> threading.RLock:
        """Write what is queued, then hold the writer's lock for a read (``with self._reading():``)."""
        self.writer.drain()
        return self.writer.lock

    def entries(
        self,
        *,
        kind: str | Iterable[str] | None = None,
        account: str | None = None,
        ref: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[JournalEntry]:
        """Rows matching every given filter, in recorded order; ``since`` inclusive, ``until``
        exclusive. An unknown kind raises ValueError."""
        with self._reading():
            rows = self._select(
                kind=kind,
                account=account,
                ref=ref,
                since=since,
                until=until,
                limit=limit,
                newest_first=newest_first,
            ).fetchall()
        return [
            JournalEntry(id=i, ts=datetime.fromisoformat(t), kind=k, account=a, ref=r, data=json.loads(d))
            for i, t, k, a, r, d in rows
        ]

    def export(
        self,
        fmt: Literal["csv", "jsonl"],
        out: TextIO,
        *,
        since: datetime | None = None,
        kind: str | Iterable[str] | None = None,
    ) -> int:
        """Write matching rows to ``out`` and return how many; streams, so any size works.

        csv: a header row, then ``id, ts, kind, account, ref, data`` with ``data`` as compact JSON.
        jsonl: one JSON object per line with the same keys and ``data`` as a nested object.
        """
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown export format {fmt!r} (use csv or jsonl)")
        # The cursor is closed here, not by a generator's finaliser: a reader that goes away
        # (``| head``) raises BrokenPipeError out of the loop, and the journal may be closed
        # before a suspended generator is collected (which then fails on the closed database).
        lock = self._reading()
        lock.acquire()
        rows = self._select(since=since, kind=kind)
        n = 0
        try:
            if fmt == "csv":
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(EXPORT_COLUMNS)
                for row in rows:
                    writer.writerow(row)
                    n += 1
            else:
                for i, t, k, a, r, d in rows:
                    obj = {"id": i, "ts": t, "kind": k, "account": a, "ref": r, "data": json.loads(d)}
                    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
                    n += 1
        finally:
            rows.close()
            lock.release()
        return n

    def count(self) -> int:
        """Number of rows in the journal."""
        with self._reading():
            return int(self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    # ------------------------------------------------------------------ persisted state

    def get_state(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` (Decimals come back as strings), else ``default``."""
        with self._reading():
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        """Store ``value`` (made JSON-able like journal payloads) under ``key`` (group-committed
        like :meth:`record`; :meth:`flush` to commit at once)."""
        text = json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)
        self.writer.add(
            self._db,
            "INSERT INTO state (key, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (key, text, _ts_text(self._clock())),
        )
        self._commit_later()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Commit what is pending and close the connection (idempotent)."""
        try:
            self.writer.stop()
        except sqlite3.ProgrammingError:
            return  # already closed
        with self.writer.lock:
            self._wal.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
