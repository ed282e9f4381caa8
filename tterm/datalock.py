"""One process owns a data directory: an OS file lock on ``<data dir>/tterm.lock``.

Two engines on one data directory corrupt the books (two paper brokers hand out the same order
and fill ids; each journal write and store save races the other's). So every command that runs an
engine on the data dir (``tterm``, ``tterm hub``, ``tterm flatten``, ``tterm lock``) first takes an
exclusive ``flock`` on the lock file. The kernel releases it when the process ends, however it
ends (``kill -9`` included), so a crash never leaves the directory locked.

The owner writes who it is into the file (pid, kind, command, host, start time and, for a hub,
the ``ws://`` address of its remote API once it is bound), so a second command can say who holds
the directory, or attach to it when it is a hub (:class:`DataDirBusy` carries the
:class:`Owner`). The record is rewritten in place, never renamed over: the lock belongs to the
file's inode.

``flock`` is advisory and per open file: it works between processes on one machine (and on
Linux NFS clients, where the kernel maps it to a POSIX byte-range lock). Windows has no
``fcntl``; there the lock is not taken (README, Known limitations).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from tterm.config import display_path
from tterm.core.files import open_private, private_dir, secure_tree
from tterm.core.models import utcnow

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    # POSIX only: None marks its absence (every use checks), which the module type cannot say.
    fcntl = None  # type: ignore[assignment]

LOCK_FILENAME = "tterm.lock"

#: How long a second command waits for a hub that owns the data dir but is still starting (its
#: brokers connect before it binds its port).
HUB_START_WAIT = 30.0

#: What the owner runs: the embedded terminal, a hub, or a one-shot command.
KINDS = ("terminal", "hub", "flatten", "lock")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a data directory."""

    pid: int
    kind: str
    command: str
    host: str
    started: str
    #: The hub's remote API (``ws://127.0.0.1:8787``); empty until it is bound, and for every other kind.
    hub_url: str = ""

    @classmethod
    def from_json(cls, text: str) -> Owner | None:
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                kind=str(data["kind"]),
                command=str(data.get("command", "")),
                host=str(data.get("host", "")),
                started=str(data.get("started", "")),
                hub_url=str(data.get("hub_url") or ""),
            )
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def local(self) -> bool:
        """Whether the owner runs on this machine (a hub URL on 127.0.0.1 means nothing elsewhere)."""
        return not self.host or self.host == socket.gethostname()

    @property
    def attachable(self) -> bool:
        return self.kind == "hub" and bool(self.hub_url) and self.local

    def describe(self) -> str:
        """``tterm hub (pid 4242, since 2026-03-02 14:31 UTC, ws://127.0.0.1:8787)``."""
        since = self.started
        with contextlib.suppress(ValueError):
            since = datetime.fromisoformat(self.started).strftime("%Y-%m-%d %H:%M UTC")
        where = "" if self.local else f" on {self.host}"
        words = [f"pid {self.pid}{where}", f"since {since}"] + ([self.hub_url] if self.hub_url else [])
        return f"{self.command or 'tterm ' + self.kind} ({', '.join(words)})"


class DataDirBusy(Exception):
    """The data directory is owned by another process (``owner``; None if it could not be read)."""

    def __init__(self, root: Path, owner: Owner | None) -> None:
        self.root = root
        self.owner = owner
        who = owner.describe() if owner is not None else "another tterm process (its lock file gives no details)"
        super().__init__(f"the data dir {display_path(root)} is in use by {who}")


class DataDirLock:
    """The exclusive lock on one data directory (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.path = self.root / LOCK_FILENAME
        self._fd: int | None = None
        self._owner: Owner | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, kind: str, command: str = "") -> None:
        """Take the lock or raise :class:`DataDirBusy` naming the owner. Also makes the data dir
        private (0700, files 0600), which is the owner's job."""
        if kind not in KINDS:
            raise ValueError(f"unknown owner kind {kind!r} (known: {', '.join(KINDS)})")
        if self._fd is not None:
            return
        private_dir(self.root)
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            for attempt in range(3):
                if fcntl is None:
                    break
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    owner = read_owner(self.root, wait=1.0)
                    # None: nobody holds it now (only a reader's brief shared lock was in the way).
                    if owner is not None or attempt == 2:
                        raise DataDirBusy(self.root, owner) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        secure_tree(self.root)
        self._owner = Owner(
            pid=os.getpid(),
            kind=kind,
            command=command or f"tterm {kind}",
            host=socket.gethostname(),
            started=utcnow().isoformat(timespec="seconds"),
        )
        self._write()

    def publish(self, *, hub_url: str) -> None:
        """Add the hub's remote API address to the record (after the hub has bound its port)."""
        if self._fd is None or self._owner is None:
            raise RuntimeError("publish() before acquire()")
        self._owner = Owner(**{**asdict(self._owner), "hub_url": hub_url})
        self._write()

    def _write(self) -> None:
        assert self._fd is not None and self._owner is not None
        data = (json.dumps(asdict(self._owner), separators=(",", ":")) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Drop the lock (the record stays; the next owner overwrites it). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the file releases the flock

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_owner(root: Path | str, *, wait: float = 0.0) -> Owner | None:
    """Who holds ``root`` now (None: nobody does, or the record is unreadable).

    ``wait``: a process that has just taken the lock writes its record a moment later; retry a
    record that is empty or half-written for up to this many seconds.
    """
    path = Path(root).expanduser() / LOCK_FILENAME
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # held: read the record below
                else:
                    return None  # nobody holds it (a crashed owner's record is stale)
            owner = Owner.from_json(os.read(fd, 65536).decode("utf-8", errors="replace"))
        finally:
            os.close(fd)
        if owner is not None or time.monotonic() >= deadline:
            return owner
        time.sleep(0.02)  # another process's write: there is no event to wait on


def wait_for_hub_url(root: Path | str, *, timeout: float) -> Owner | None:
    """The owner record once its hub has published its address (a hub that is still connecting
    its brokers has not bound yet), or whatever the record says when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        owner = read_owner(root, wait=0.5)
        if owner is None or owner.kind != "hub" or owner.hub_url or time.monotonic() >= deadline:
            return owner
        time.sleep(0.1)


def command_line() -> str:
    """How this process was started, for the lock record (``tterm hub --port 0``)."""
    words = list(sys.argv[1:])
    return " ".join(["tterm", *words]) if words else "tterm run"


def settled_owner(busy: DataDirBusy, *, timeout: float = HUB_START_WAIT) -> Owner | None:
    """The owner of a busy data dir; for a hub that has not bound yet, once it has (bounded)."""
    owner = busy.owner
    if owner is not None and owner.kind == "hub" and not owner.hub_url:
        print(f"tterm: {busy}; waiting for it to finish starting...", file=sys.stderr)
        owner = wait_for_hub_url(busy.root, timeout=timeout) or owner
    return owner


def busy_message(busy: DataDirBusy, owner: Owner | None, what: str) -> str:
    """Why ``what`` cannot run on a data dir another process owns, and what to do instead."""
    text = f"tterm: {busy}. Two engines on one data dir corrupt its journal and books, so {what} does not start."
    if owner is not None and owner.kind == "hub" and not owner.local:
        return text + f" The hub runs on {owner.host}: attach to it from there, or through ssh -L."
    if owner is not None and owner.kind == "hub":
        return text + f" Attach to the hub instead: tterm attach {owner.hub_url or 'ws://HOST:PORT'}"
    if owner is not None and owner.kind == "terminal":
        return text + " Use that terminal (its palette and kill switch), or quit it first."
    return text + " Wait for it to finish, or give this command another data dir (TTERM_DATA_DIR)."
