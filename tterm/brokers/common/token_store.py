"""Renewed tokens of one broker instance, kept in the data dir so a restart (or a second tterm
process sharing the data dir, e.g. ``tterm hub`` and ``tterm login``) goes on with them.

Why a lock and not just a file: a renewal often spends the credential it renews with (an OAuth
refresh token rotates; Tradovate budgets renewals and logins). Two processes that each renew the
same token, or that write back a token older than the one on disk, lock each other out or lose a
renewal. So every change is a read-modify-write under an OS file lock:

- :meth:`TokenStore.locked` takes an exclusive lock (``flock``; ``msvcrt.locking`` on Windows)
  on a lock file beside the token file, reads the token as it is on disk *now*, lets the caller
  decide (adopt the newer token another process stored, or renew and store), and writes with an
  atomic replace (temp file, fsync, rename), so a reader never sees half a file;
- the OS drops the lock when its holder dies, so a crashed process never blocks the others;
- in-process callers are serialised by an asyncio lock first; the blocking wait for the file
  lock runs in a worker thread, never on the event loop.

The file is mode 0600 in a 0700 directory. It names its ``owner`` (the login it belongs to: a
user name and an API host); a token stored for another owner is ignored, never sent. Token
values are registered with the redactor as they are read, so they never reach a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tterm.brokers.common.tokens import Token
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TOKENS_DIR = "tokens"


def token_path(data_dir: Path, broker: str) -> Path:
    """Where broker instance ``broker`` keeps its tokens: ``<data dir>/tokens/<broker>.json``."""
    return Path(data_dir) / TOKENS_DIR / f"{broker}.json"


class TokenStoreError(OSError):
    """The token file or its lock cannot be used (permissions, a full disk)."""


# --------------------------------------------------------------------------- the OS lock


def _acquire(path: Path) -> int:
    """Open ``path`` (created 0600) and wait for an exclusive lock on it; returns the descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for about 10 s, then raises
                    return fd
                except OSError:
                    continue
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _release(fd: int) -> None:
    try:
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- (de)serialising


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _encode(token: Token) -> dict[str, Any]:
    extra = dict(token.extra)
    try:
        json.dumps(extra)
    except (TypeError, ValueError):
        raise TypeError("a stored token's extra values must be JSON (str, int, float, bool, None)") from None
    return {"value": token.value, "expires_at": _iso(token.expires_at), "issued_at": _iso(token.issued_at),
            "extra": extra}  # fmt: skip


def _decode(data: Any) -> Token:
    if not isinstance(data, dict):
        raise ValueError("not an object")
    value = data.get("value")
    if not isinstance(value, str) or not value:
        raise ValueError("no token value")
    expires = datetime.fromisoformat(str(data.get("expires_at")))
    issued = datetime.fromisoformat(str(data.get("issued_at")))
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError("extra is not an object")
    return Token(value=value, expires_at=expires, issued_at=issued, extra=extra)


class TokenSlot:
    """The stored token as read under the lock; :meth:`put` / :meth:`clear` change it on exit."""

    def __init__(self, token: Token | None) -> None:
        self.token = token
        self._new: Token | None = None
        self._changed = False

    def put(self, token: Token) -> None:
        self._new, self._changed = token, True

    def clear(self) -> None:
        self._new, self._changed = None, True


class TokenStore:
    """One broker instance's tokens in one file, shared safely between processes."""

    def __init__(self, path: Path, *, owner: str, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.owner = owner
        self._redactor = redactor or REDACTOR
        self._local = asyncio.Lock()
        self.writes = 0

    # ------------------------------------------------------------------ reading

    def load(self) -> Token | None:
        """The stored token (no lock needed: files are replaced whole), None if none or not ours."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read the token file {self.path}: {exc.strerror or exc}") from None
        return self._parse(text)

    def _parse(self, text: str) -> Token | None:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
                raise ValueError("unknown format")
            if doc.get("owner") != self.owner:
                log.info("the token file %s belongs to another login; ignoring it", self.path)
                return None
            token = _decode(doc.get("token"))
        except (ValueError, TypeError) as exc:
            # Never echo the content: it holds secrets. A new login replaces the file.
            log.warning("the token file %s is unreadable (%s); it will be replaced", self.path, type(exc).__name__)
            return None
        self._register(token)
        return token

    def _register(self, token: Token) -> None:
        self._redactor.add(token.value, rotating=True)
        for key, value in token.extra.items():
            if isinstance(value, str) and key.endswith("token"):
                self._redactor.add(value, rotating=True)

    # ------------------------------------------------------------------ changing

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[TokenSlot]:
        """Exclusive access across tasks and processes: read now, decide, write on exit."""
        async with self._local:
            self._prepare_dir()
            waiting = asyncio.get_running_loop().run_in_executor(None, _acquire, self.lock_path)
            try:
                fd = await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # The worker thread still gets the lock: give it back the moment it does.
                waiting.add_done_callback(lambda f: None if f.cancelled() or f.exception() else _release(f.result()))
                raise
            except OSError as exc:
                raise TokenStoreError(f"cannot lock {self.lock_path}: {exc.strerror or exc}") from None
            try:
                slot = TokenSlot(self.load())
                yield slot
                if slot._changed:
                    self._write(slot._new)
            finally:
                _release(fd)

    async def save(self, token: Token) -> None:
        async with self.locked() as slot:
            slot.put(token)

    async def clear(self) -> None:
        async with self.locked() as slot:
            slot.clear()

    def _prepare_dir(self) -> None:
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise TokenStoreError(f"cannot create {parent}: {exc.strerror or exc}") from None

    def _write(self, token: Token | None) -> None:
        if token is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.writes += 1
            return
        self._register(token)
        doc = {"version": FORMAT_VERSION, "owner": self.owner, "saved_at": _iso(datetime.now(UTC)),
               "saved_by": os.getpid(), "token": _encode(token)}  # fmt: skip
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            fh: IO[str]
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if os.name != "nt":
            # The rename itself survives a power cut only once the directory is on disk too.
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.writes += 1
